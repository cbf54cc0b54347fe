"""Mixed precision on the CPU: mmengine's ``AmpOptimWrapper`` refuses to run without an accelerator,
so ``--amp`` on CPU uses this wrapper, which runs the forward pass under bf16 autocast. bf16 keeps
fp32's exponent range, so no loss scaling is needed."""
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper

from det.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose ``optim_context`` (the forward and loss) runs under
    ``torch.autocast(device_type, dtype)``; weights, gradients and optimizer state stay fp32."""

    def __init__(self, *args, device_type: str = 'cpu', dtype: str = 'bfloat16', **kwargs):
        super().__init__(*args, **kwargs)
        self.device_type = device_type
        self.cast_dtype = getattr(torch, dtype)

    @contextmanager
    def optim_context(self, model):
        with super().optim_context(model), torch.autocast(self.device_type, dtype=self.cast_dtype):
            yield
