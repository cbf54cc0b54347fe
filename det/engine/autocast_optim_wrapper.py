"""bf16 mixed precision on the device the model is on: mmengine's ``AmpOptimWrapper`` refuses to run
without an accelerator and scales an fp16 loss, so the shipped configs use this wrapper, which runs the
forward pass under bf16 autocast on the CPU or on a GPU, whichever holds the model's parameters. bf16
keeps fp32's exponent range, so no loss scaling is needed.

It is a registered optim wrapper, so a config selects it without ``--amp``::

    optim_wrapper = dict(type='AutocastOptimWrapper', dtype='bfloat16',
                         optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05))
"""
import logging
from contextlib import contextmanager, nullcontext

import torch
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper

from det.registry import OPTIM_WRAPPERS

# Autocast dtypes that need no loss scaling: bf16 has fp32's exponent range (fp16 on CUDA goes through
# mmengine's AmpOptimWrapper, which scales the loss).
DTYPES = ('bfloat16',)
DEVICE_TYPES = ('cpu', 'cuda')


def parameters_device(model: torch.nn.Module) -> torch.device:
    """The device of ``model``'s (possibly DDP-wrapped) parameters; the CPU for a model without any."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device('cpu')


def autocast_dtype(device: torch.device):
    """``(dtype, reason)``: the autocast dtype for a model on ``device``, or None (fp32) with the reason.

    bf16 on the CPU, and on a GPU with native bf16 (``torch.cuda.is_bf16_supported(including_emulation=
    False)``, compute capability 8.0 and up); older GPUs would emulate it slower than fp32, so they run
    fp32 and the reason says to use ``--amp`` (fp16 with loss scaling) there. Other device types raise.
    """
    device = torch.device(device)
    if device.type not in DEVICE_TYPES:
        raise ValueError(f'AutocastOptimWrapper: the model is on {device}; bf16 autocast is supported on '
                         f'{DEVICE_TYPES}')
    if device.type == 'cuda' and not torch.cuda.is_bf16_supported(including_emulation=False):
        return None, (f'{device} has no native bf16 (compute capability < 8.0): training in fp32; for mixed '
                      "precision on this GPU use --amp (fp16 with loss scaling, mmengine's AmpOptimWrapper)")
    return torch.bfloat16, f'bf16 autocast on {device.type}'


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose ``optim_context`` (the forward and loss) runs under
    ``torch.autocast(device_type, bfloat16)`` for the device the model's parameters are on (read at the
    first step, and logged); weights, gradients and optimizer state stay fp32. Where bf16 is not native
    (a GPU older than compute capability 8.0) it trains in fp32 and logs a warning saying so.

    Args:
        device_type: None (default): follow the model's parameters. ``'cpu'`` or ``'cuda'``: the
            device the model must be on; a model elsewhere is a ValueError rather than a silent fp32 run.
        dtype: ``'bfloat16'`` (the only autocast dtype that trains safely without loss scaling).
    """

    def __init__(self, *args, device_type: str = None, dtype: str = 'bfloat16', **kwargs):
        if device_type is not None and device_type not in DEVICE_TYPES:
            raise ValueError(f'AutocastOptimWrapper: device_type must be None (follow the model) or one of '
                             f'{DEVICE_TYPES}, got {device_type!r}')
        if str(dtype).replace('torch.', '') not in DTYPES:
            raise ValueError(f'AutocastOptimWrapper: dtype must be one of {DTYPES}, got {dtype!r} (fp16 '
                             "needs loss scaling: use type='AmpOptimWrapper' on CUDA)")
        super().__init__(*args, **kwargs)
        self.device_type = device_type
        self._choice = None  # (device, dtype or None), settled at the first step

    def autocast_for(self, model: torch.nn.Module):
        """``(device_type, dtype or None)`` for ``model``, decided once per device and logged."""
        device = parameters_device(model)
        if self.device_type is not None and device.type != self.device_type:
            raise ValueError(f"AutocastOptimWrapper: device_type='{self.device_type}' but the model is on "
                             f'{device}; leave device_type out to follow the model')
        if self._choice is None or self._choice[0] != device:
            dtype, reason = autocast_dtype(device)
            print_log(f'AutocastOptimWrapper: {reason}', logger='current',
                      level=logging.WARNING if dtype is None else logging.INFO)
            self._choice = (device, dtype)
        return device.type, self._choice[1]

    @contextmanager
    def optim_context(self, model):
        device_type, dtype = self.autocast_for(model)
        cast = torch.autocast(device_type, dtype=dtype) if dtype is not None else nullcontext()
        with super().optim_context(model), cast:
            yield
