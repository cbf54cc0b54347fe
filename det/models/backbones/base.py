"""What every backbone shares: stride stages with ``out_indices``, frozen stages, ``norm_eval``,
per-block gradient checkpointing (``with_cp``) and pretrained weights converted from another model's
state dict (``convert_torchvision`` and ``init_cfg=dict(type='Pretrained', checkpoint=path,
convert='torchvision')`` or ``checkpoint='torchvision://NAME'``)."""
from collections import OrderedDict
from contextlib import contextmanager, nullcontext

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule, update_init_info
from torch import nn
from torch.utils.checkpoint import checkpoint

from .layers import use_fast_cpu_layers
from .pretrained import PretrainedWeights, describe, needs_conversion

# Kaiming fan-out for convs, as torchvision initialises its CNNs (BN defaults to weight 1, bias 0).
KAIMING_INIT = [dict(type='Kaiming', layer='Conv2d', mode='fan_out')]


def lookup_arch(arch, settings: dict):
    """``settings[arch]`` for a named architecture, ``arch`` itself otherwise (a custom setting)."""
    if isinstance(arch, str):
        if arch not in settings:
            raise KeyError(f'arch {arch!r} not in {sorted(settings)}')
        return settings[arch]
    return arch


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
    """A backbone is ``self.layers``: an ``nn.ModuleList`` of stride stages, each an ``nn.Sequential``
    of blocks. Subclasses list their blocks and call ``self._setup_stages(blocks)``.

    **Stride rule, the same for every family:** stage (and ``out_indices`` entry) ``i`` ends at stride
    ``2 ** (i + 1)``: 0 -> 2, 1 -> 4, 2 -> 8, 3 -> 16, 4 -> 32. So ``out_indices=(2, 3, 4)`` means
    strides 8/16/32 on any backbone, and ``frozen_stages=k`` freezes everything up to stride
    ``2 ** (k + 1)``.

    - ``forward(x [B, 3, H, W])`` returns the outputs of the stages in ``out_indices`` (increasing
      stride) as a tuple of ``[B, C_i, H / s_i, W / s_i]``; ``out_channels`` and ``strides`` list C_i, s_i.
    - ``frozen_stages=k`` freezes stages ``0..k`` (parameters and BN statistics); -1 freezes none.
    - ``norm_eval=True`` keeps every BatchNorm in eval mode during training (statistics stay fixed).
    - ``with_cp=True`` recomputes each block's activations in backward (``torch.utils.checkpoint``),
      trading compute for memory; BN running statistics are updated once per step, as without it.
    - Stages after the last of ``out_indices`` are not kept, so every parameter gets a gradient (DDP
      needs no ``find_unused_parameters``).
    - A backbone that mirrors a torchvision model sets ``torchvision_classifier`` and so has
      :meth:`convert_torchvision`; ``init_cfg=dict(type='Pretrained', checkpoint=path,
      convert='torchvision')`` then loads a torchvision state dict file, and
      ``checkpoint='torchvision://NAME'`` torchvision's ImageNet weights (see :meth:`init_weights`).
      ``arch_kwargs`` are the constructor arguments that fix the architecture (and so the keys).
    """

    # Prefix of the torchvision keys with no counterpart here (the classifier); None: no torchvision twin.
    torchvision_classifier = None

    def __init__(self, out_indices, frozen_stages=-1, norm_eval=False, with_cp=False, init_cfg=None,
                 arch_kwargs=None):
        super().__init__(init_cfg=init_cfg)
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.arch_kwargs = dict(arch_kwargs or {})

    def _setup_stages(self, blocks: list):
        """Build ``self.layers`` from ``[(block, out_channels, stride)]`` in forward order (strides 1 or
        2, the first 2): a new stage starts at every stride-2 block, which gives the stride rule. Then
        keep the stages up to the last of ``out_indices`` and freeze ``frozen_stages``."""
        if blocks[0][2] != 2 or any(stride not in (1, 2) for _, _, stride in blocks):
            raise ValueError(f'block strides {[s for _, _, s in blocks]}: need 1 or 2, the first 2')
        stages, self.layer_channels = [], []
        for block, channels, stride in blocks:
            if stride == 2:
                stages.append([])
                self.layer_channels.append(channels)
            stages[-1].append(block)
            self.layer_channels[-1] = channels
        self.layers = nn.ModuleList(nn.Sequential(*stage) for stage in stages)
        use_fast_cpu_layers(self.layers)
        self.layer_strides = [2 ** (i + 1) for i in range(len(stages))]

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

    @classmethod
    def convert_torchvision(cls, state_dict: dict, **arch_kwargs) -> OrderedDict:
        """A torchvision ``state_dict`` -> the keys of ``cls(**arch_kwargs)`` with all its stages.

        torchvision's model and this class register the same tensors in the same order (blocks in
        forward order; inside a block expand, depthwise, squeeze-excite, project; conv before BN), so
        tensors are paired in order (:meth:`pair_in_order`), torchvision's classifier (keys under
        ``torchvision_classifier``) left out."""
        if cls.torchvision_classifier is None:
            raise NotImplementedError(f'{cls.__name__} mirrors no torchvision model')
        skipped = cls.torchvision_classifier
        theirs = OrderedDict((k, v) for k, v in state_dict.items() if not k.startswith(skipped))
        return cls.pair_in_order(theirs, 'torchvision', f' (without {skipped!r})', **arch_kwargs)

    @classmethod
    def pair_in_order(cls, theirs: dict, source: str, note: str = '', **arch_kwargs) -> OrderedDict:
        """The tensors of ``theirs`` (a state dict of the ``source`` model, its unpaired keys already
        left out, ``note`` saying which) under the keys of ``cls(**arch_kwargs)`` with all its stages,
        paired in registration order. Raises ValueError naming the first pair whose shapes differ, or
        the first unpaired key when the counts differ (a state dict of another model or width)."""
        with torch.device('meta'):
            own = cls(out_indices=(-1,), **arch_kwargs).state_dict()
        name = f"{cls.__name__}({', '.join(f'{k}={v!r}' for k, v in arch_kwargs.items())})"
        theirs = list(theirs.items())
        for key, (their_key, value) in zip(own, theirs):
            if own[key].shape != value.shape:
                raise ValueError(f'{name}: {key} has shape {tuple(own[key].shape)}, '
                                 f'its {source} counterpart {their_key} {tuple(value.shape)}')
        if len(own) != len(theirs):
            unpaired = list(own)[len(theirs):] or [k for k, _ in theirs[len(own):]]
            raise ValueError(f'{name} has {len(own)} tensors, the {source} state dict {len(theirs)}{note}; '
                             f'first unpaired key: {unpaired[0]}')
        return OrderedDict((key, value) for key, (_, value) in zip(own, theirs))

    def init_weights(self):
        """mmengine's ``init_weights``, where an ``init_cfg`` entry that needs a conversion (which
        mmengine's ``PretrainedInit`` does not do) is applied here, after the other entries:
        ``dict(type='Pretrained', checkpoint=..., convert=SOURCE)`` with ``checkpoint`` a file path or
        a name that :func:`det.models.backbones.pretrained.describe` knows (``'torchvision://NAME'``,
        ``'efficientnet_lite://liteN'``, whose ``convert`` is implied). The file is read with
        ``torch.load(weights_only=True)``, converted by ``convert_<SOURCE>(state, **self.arch_kwargs)``
        and loaded. Keys of stages this instance does not hold (after the last of ``out_indices``) are
        skipped; a key it needs that is missing, or a shape that differs, is a ValueError naming the keys."""
        cfgs = self.init_cfg if isinstance(self.init_cfg, list) else [self.init_cfg] if self.init_cfg else []
        converted = [cfg for cfg in cfgs if needs_conversion(cfg)]
        if not converted or self._is_init:
            return super().init_weights()
        init_cfg, self.init_cfg = self.init_cfg, [cfg for cfg in cfgs if not needs_conversion(cfg)] or None
        try:
            super().init_weights()  # the other entries; marks the module initialised
        finally:
            self.init_cfg = init_cfg
        for cfg in converted:
            self._load_converted(describe(cfg))

    def _load_converted(self, weights: PretrainedWeights):
        converter = getattr(type(self), f'convert_{weights.convert}', None)
        if converter is None:
            known = sorted(n[len('convert_'):] for n in dir(type(self)) if n.startswith('convert_'))
            raise ValueError(f"{weights.checkpoint}: {type(self).__name__} cannot convert "
                             f"{weights.convert!r} weights (it converts {known})")
        path = weights.file()
        state = converter(torch.load(path, map_location='cpu', weights_only=True), **self.arch_kwargs)
        own = self.state_dict()
        missing = [key for key in own if key not in state]
        if missing:
            raise ValueError(f'{path}: no weights for {len(missing)} keys of {type(self).__name__}, '
                             f'e.g. {missing[:5]}')
        wrong = [f'{key} {tuple(state[key].shape)} vs {tuple(value.shape)}'
                 for key, value in own.items() if state[key].shape != value.shape]
        if wrong:
            raise ValueError(f'{path}: shapes differ from {type(self).__name__}: {wrong[:5]}')
        self.load_state_dict(OrderedDict((key, state[key]) for key in own))
        print_log(f'{type(self).__name__}: pretrained weights from {path} ({len(state) - len(own)} '
                  'tensors of stages not built skipped)', logger='current')
        if hasattr(self, '_params_init_info'):  # set while a parent module runs init_weights
            update_init_info(self, init_info=f'pretrained weights from {path}')

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
