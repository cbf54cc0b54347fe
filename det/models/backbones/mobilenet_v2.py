"""MobileNetV2 (Sandler et al., 2018), layer-for-layer the architecture of torchvision's ``mobilenet_v2``,
plus the building blocks MobileNetV1/V3 share (``ConvNormAct``, ``InvertedResidual``) and the
torchvision state-dict conversion they share (``convert_by_block_order``)."""
from collections import OrderedDict

import torch
from torch import nn

from det.registry import MODELS

from .base import BaseBackbone

# Kaiming fan-out for convs, as torchvision initialises its MobileNets (BN defaults to weight 1, bias 0).
KAIMING_INIT = [dict(type='Kaiming', layer='Conv2d', mode='fan_out')]


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a (width-multiplied) channel count to the nearest multiple of ``divisor``, never below
    ``divisor`` and never more than 10% below ``value`` (the TF-slim rule torchvision also uses)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class ConvNormAct(nn.Module):
    """``conv (no bias) -> BatchNorm -> activation`` with 'same' padding; ``groups=in_channels`` makes it
    depthwise. ``act=None`` leaves the activation out (linear bottleneck projections)."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, groups=1, act=nn.ReLU,
                 norm_kwargs=None):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2,
                              groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, **(norm_kwargs or {}))
        self.act = act(inplace=True) if act is not None else nn.Identity()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class SqueezeExcite(nn.Module):
    """Channel attention of MobileNetV3: ``x * hardsigmoid(fc2(relu(fc1(avgpool(x)))))`` with 1x1 convs
    (with bias) as the two FC layers. [B, C, H, W] -> [B, C, H, W]."""

    def __init__(self, channels, squeeze_channels):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)

    def forward(self, x):
        scale = x.mean((2, 3), keepdim=True)
        scale = nn.functional.hardsigmoid(self.fc2(nn.functional.relu(self.fc1(scale))))
        return x * scale


class InvertedResidual(nn.Module):
    """MobileNetV2/V3 block: 1x1 expand (skipped when ``hidden == in``) -> kxk depthwise (carries the
    stride) -> optional squeeze-excite -> linear 1x1 projection, plus an identity shortcut when the shape
    is kept (stride 1 and ``in == out``)."""

    def __init__(self, in_channels, hidden, out_channels, kernel_size=3, stride=1, act=nn.ReLU6,
                 se_channels=None, norm_kwargs=None):
        super().__init__()
        self.use_shortcut = stride == 1 and in_channels == out_channels
        self.expand = (ConvNormAct(in_channels, hidden, 1, act=act, norm_kwargs=norm_kwargs)
                       if hidden != in_channels else nn.Identity())
        self.dw = ConvNormAct(hidden, hidden, kernel_size, stride, groups=hidden, act=act,
                              norm_kwargs=norm_kwargs)
        self.se = SqueezeExcite(hidden, se_channels) if se_channels else nn.Identity()
        self.project = ConvNormAct(hidden, out_channels, 1, act=None, norm_kwargs=norm_kwargs)

    def forward(self, x):
        out = self.project(self.se(self.dw(self.expand(x))))
        return x + out if self.use_shortcut else out


def split_stages(blocks):
    """Group ``[(block, out_channels, stride)]`` into stages: a new stage starts at every stride-2 block,
    so stage ``i`` ends at cumulative stride ``2**(i+1)`` when the first block is the stride-2 stem.
    Returns ``(nn.ModuleList of nn.Sequential, channels per stage, cumulative stride per stage)``."""
    stages, channels, strides, total = [], [], [], 1
    for block, out_channels, stride in blocks:
        total *= stride
        if stride > 1 or not stages:
            stages.append([])
            strides.append(total)
            channels.append(out_channels)
        stages[-1].append(block)
        channels[-1] = out_channels
    return nn.ModuleList(nn.Sequential(*s) for s in stages), channels, strides


def convert_by_block_order(tv_state: dict, own_model: BaseBackbone, prefix: str = 'features.') -> OrderedDict:
    """Map a torchvision MobileNet ``state_dict`` onto ``own_model``'s keys.

    torchvision's ``features[j]`` is our ``j``-th block counted across ``own_model.layers`` (stage by
    stage), and inside each block both register their tensors in the same order (expand, depthwise,
    squeeze-excite, projection; conv then BN), so keys are paired block by block in order, with every
    shape checked. Keys outside ``features`` (the classifier) are dropped."""
    tv_blocks = OrderedDict()
    for key, value in tv_state.items():
        if key.startswith(prefix):
            index = int(key[len(prefix):].split('.')[0])
            tv_blocks.setdefault(index, []).append(value)
    own_blocks = [f'layers.{i}.{j}.' for i, stage in enumerate(own_model.layers) for j in range(len(stage))]
    if len(own_blocks) != len(tv_blocks):
        raise ValueError(f'{len(tv_blocks)} torchvision blocks vs {len(own_blocks)} in '
                         f'{type(own_model).__name__}')
    own_state = own_model.state_dict()
    converted = OrderedDict()
    for own_prefix, tv_values in zip(own_blocks, tv_blocks.values()):
        own_keys = [k for k in own_state if k.startswith(own_prefix)]
        if len(own_keys) != len(tv_values):
            raise ValueError(f'{own_prefix}: {len(own_keys)} tensors vs {len(tv_values)} in torchvision')
        for key, value in zip(own_keys, tv_values):
            if own_state[key].shape != value.shape:
                raise ValueError(f'{key}: shape {tuple(own_state[key].shape)} vs torchvision '
                                 f'{tuple(value.shape)}')
            converted[key] = value
    return converted


@MODELS.register_module()
class MobileNetV2(BaseBackbone):
    """MobileNetV2 with torchvision's layer layout (``features[0..18]``), split into stride stages:

    ======  =================================================  ========  ==================
    stage   torchvision ``features``                           stride    channels (w=1.0)
    ======  =================================================  ========  ==================
    0       0-1   (stem conv, 16-ch block)                     2         16
    1       2-3   (24-ch blocks)                               4         24
    2       4-6   (32-ch blocks)                               8         32
    3       7-13  (64- and 96-ch blocks)                       16        96
    4       14-18 (160-, 320-ch blocks, final 1x1 conv)        32        1280
    ======  =================================================  ========  ==================

    ``out_indices=(2, 3, 4)`` gives strides 8/16/32 with 32/96/1280 channels. Channels scale with
    ``widen_factor`` (rounded to multiples of 8); the final conv keeps 1280 for ``widen_factor <= 1``.

    Pretrained weights: convert a torchvision ``state_dict`` with :meth:`convert_torchvision`,
    ``torch.save`` it and pass ``init_cfg=dict(type='Pretrained', checkpoint=path)``; torchvision keys
    are not accepted directly.
    """

    # (expand ratio t, output channels c, repeats n, first stride s): the paper's Table 2.
    arch = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
            (6, 320, 1, 1)]

    def __init__(self, widen_factor=1.0, out_indices=(2, 3, 4), frozen_stages=-1, norm_eval=False,
                 with_cp=False, init_cfg=KAIMING_INIT):
        super().__init__(out_indices, frozen_stages, norm_eval, with_cp, init_cfg)
        in_channels = make_divisible(32 * widen_factor)
        blocks = [(ConvNormAct(3, in_channels, 3, 2, act=nn.ReLU6), in_channels, 2)]
        for t, c, n, s in self.arch:
            out_channels = make_divisible(c * widen_factor)
            for i in range(n):
                stride = s if i == 0 else 1
                block = InvertedResidual(in_channels, round(in_channels * t), out_channels, 3, stride)
                blocks.append((block, out_channels, stride))
                in_channels = out_channels
        last_channels = make_divisible(1280 * max(1.0, widen_factor))
        blocks.append((ConvNormAct(in_channels, last_channels, 1, act=nn.ReLU6), last_channels, 1))
        self.layers, self.layer_channels, self.layer_strides = split_stages(blocks)
        self._setup_outputs()

    @classmethod
    def convert_torchvision(cls, tv_state: dict, **kwargs) -> OrderedDict:
        """torchvision ``mobilenet_v2(width_mult=w).state_dict()`` -> this class's keys (pass
        ``widen_factor=w`` in ``kwargs``); the classifier is dropped."""
        with torch.device('meta'):
            template = cls(**kwargs)
        return convert_by_block_order(tv_state, template)
