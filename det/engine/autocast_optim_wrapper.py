"""Mixed precision on the CPU: mmengine's ``AmpOptimWrapper`` refuses to run without an accelerator,
so ``--amp`` on CPU uses this wrapper, which runs the forward pass under bf16 autocast. bf16 keeps
fp32's exponent range, so no loss scaling is needed.

It is a registered optim wrapper, so a config selects it without ``--amp``::

    optim_wrapper = dict(type='AutocastOptimWrapper', dtype='bfloat16',
                         optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05))
"""
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper

from det.registry import OPTIM_WRAPPERS

# Autocast dtypes that need no loss scaling: bf16 has fp32's exponent range (fp16 on CUDA goes through
# mmengine's AmpOptimWrapper, which scales the loss).
DTYPES = ('bfloat16',)
DEVICE_TYPES = ('cpu', 'cuda')


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose ``optim_context`` (the forward and loss) runs under
    ``torch.autocast(device_type, dtype)``; weights, gradients and optimizer state stay fp32.

    Args:
        device_type: ``'cpu'`` or ``'cuda'``, the device the model runs on.
        dtype: ``'bfloat16'`` (the only autocast dtype that trains safely without loss scaling).
    """

    def __init__(self, *args, device_type: str = 'cpu', dtype: str = 'bfloat16', **kwargs):
        if device_type not in DEVICE_TYPES:
            raise ValueError(f'AutocastOptimWrapper: device_type must be one of {DEVICE_TYPES}, '
                             f'got {device_type!r}')
        if str(dtype).replace('torch.', '') not in DTYPES:
            raise ValueError(f'AutocastOptimWrapper: dtype must be one of {DTYPES}, got {dtype!r} (fp16 '
                             "needs loss scaling: use type='AmpOptimWrapper' on CUDA)")
        super().__init__(*args, **kwargs)
        self.device_type = device_type
        self.cast_dtype = torch.bfloat16

    @contextmanager
    def optim_context(self, model):
        with super().optim_context(model), torch.autocast(self.device_type, dtype=self.cast_dtype):
            yield
