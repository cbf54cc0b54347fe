"""What every backbone shares: staged forward with ``out_indices``, frozen stages, ``norm_eval`` and
per-block gradient checkpointing (``with_cp``)."""
from contextlib import contextmanager, nullcontext

import torch
from mmengine.model import BaseModule
from torch import nn
from torch.utils.checkpoint import checkpoint


@contextmanager
def batchnorm_stats_frozen(module: nn.Module):
    """Restores the running statistics of the BatchNorms in ``module`` on exit. Wraps the recomputation
    in gradient checkpointing, which would otherwise count every batch twice."""
    norms = [m for m in module.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    saved = [[buf.clone() for buf in (m.running_mean, m.running_var, m.num_batches_tracked)] for m in norms]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, (mean, var, count) in zip(norms, saved):
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
                m.num_batches_tracked.copy_(count)


class BaseBackbone(BaseModule):
    """A backbone is ``self.layers``: an ``nn.ModuleList`` of stages (the stem is stage 0), each an
    ``nn.Sequential`` of blocks, with ``self.layer_channels`` / ``self.layer_strides`` giving each
    stage's output channels and cumulative stride. Subclasses build those, then call
    ``self._setup_outputs()``.

    - ``forward(x [B, 3, H, W])`` returns the outputs of the stages in ``out_indices`` (increasing
      stride) as a tuple; ``out_channels`` and ``strides`` describe them.
    - ``frozen_stages=k`` freezes stages ``0..k`` (parameters and BN statistics); -1 freezes none.
    - ``norm_eval=True`` keeps every BatchNorm in eval mode during training (statistics stay fixed).
    - ``with_cp=True`` recomputes each block's activations in backward (``torch.utils.checkpoint``),
      trading compute for memory; BN running statistics are updated once per step, as without it.
    Stages after the last of ``out_indices`` are dropped, so every parameter gets a gradient (DDP needs
    no ``find_unused_parameters``).
    """

    def __init__(self, out_indices, frozen_stages=-1, norm_eval=False, with_cp=False, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_cp = with_cp

    def _setup_outputs(self):
        num = len(self.layers)
        bad = [i for i in self.out_indices if not -num <= i < num]
        if bad:
            raise ValueError(f'out_indices {bad} out of range for {num} stages '
                             f'(strides {self.layer_strides})')
        self.out_indices = tuple(sorted(i % num for i in self.out_indices))
        del self.layers[self.out_indices[-1] + 1:]
        self.out_channels = [self.layer_channels[i] for i in self.out_indices]
        self.strides = [self.layer_strides[i] for i in self.out_indices]
        self._freeze_stages()

    def forward(self, x: torch.Tensor) -> tuple:
        outs = []
        for i, layer in enumerate(self.layers):
            for block in layer:
                if self.with_cp and self.training and x.requires_grad:
                    x = checkpoint(block, x, use_reentrant=False,
                                   context_fn=lambda b=block: (nullcontext(), batchnorm_stats_frozen(b)))
                else:
                    x = block(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def _freeze_stages(self):
        for layer in self.layers[:self.frozen_stages + 1]:
            layer.eval()
            for param in layer.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self
