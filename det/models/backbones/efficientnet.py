"""EfficientNet-B0..B7 (Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML 2019): one B0 stage table scaled by a (width, depth) compound-scaling pair, with
torchvision's rounding, so parameter counts and (after ``convert_torchvision_efficientnet``) weights
match ``torchvision.models.efficientnet_bX`` exactly."""
import math
from functools import partial

import torch
from torch import nn
from torchvision.ops import Conv2dNormActivation, SqueezeExcitation, StochasticDepth

from det.registry import MODELS

from .base import BaseBackbone

STEM_CHANNELS = 32
# B0 MBConv stages (paper Table 1): expand ratio, depthwise kernel, first stride, out channels, repeats.
B0_STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
# Compound-scaling coefficients; B5-B7 use torchvision's BN eps / momentum (TF port).
ARCH_SETTINGS = {
    'b0': dict(width=1.0, depth=1.0),
    'b1': dict(width=1.0, depth=1.1),
    'b2': dict(width=1.1, depth=1.2),
    'b3': dict(width=1.2, depth=1.4),
    'b4': dict(width=1.4, depth=1.8),
    'b5': dict(width=1.6, depth=2.2, bn_eps=1e-3, bn_momentum=0.01),
    'b6': dict(width=1.8, depth=2.6, bn_eps=1e-3, bn_momentum=0.01),
    'b7': dict(width=2.0, depth=3.1, bn_eps=1e-3, bn_momentum=0.01),
}


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` without going more than 10% below it."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand (skipped when ratio 1) → kxk depthwise → SE → 1x1 project, with a
    stochastically dropped residual when shape is kept. [B, in, H, W] → [B, out, H/stride, W/stride].

    SE squeezes to a quarter of the block's *input* channels; activations are SiLU. Submodule names
    (``block``, ``stochastic_depth``) follow torchvision so its weights load by key.
    """

    def __init__(self, in_channels, out_channels, expand_ratio, kernel, stride, drop_prob, norm_layer):
        super().__init__()
        self.use_residual = stride == 1 and in_channels == out_channels
        mid = make_divisible(in_channels * expand_ratio)
        conv = partial(Conv2dNormActivation, norm_layer=norm_layer, activation_layer=nn.SiLU)
        layers = [conv(in_channels, mid, 1)] if mid != in_channels else []
        layers += [
            conv(mid, mid, kernel, stride, groups=mid),
            SqueezeExcitation(mid, max(1, in_channels // 4), activation=partial(nn.SiLU, inplace=True)),
            conv(mid, out_channels, 1, activation_layer=None),
        ]
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(drop_prob, 'row')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        if self.use_residual:
            out = self.stochastic_depth(out) + x
        return out


@MODELS.register_module()
class EfficientNet(BaseBackbone):
    """EfficientNet as five stages (``layers``), one per output stride; channels at width 1.0 (B0):

    =========  ====================================================  ======  ==============
    out_index  stage (torchvision ``features`` index)                stride  channels (B0)
    =========  ====================================================  ======  ==============
    0          stem 3x3 s2 + MBConv1 k3 (features.0, .1)             2       16
    1          MBConv6 k3 (features.2)                               4       24
    2          MBConv6 k5 (features.3)                               8       40
    3          MBConv6 k3 + MBConv6 k5 (features.4, .5)              16      112
    4          MBConv6 k5 + MBConv6 k3 (+ 1x1 head conv) (.6-.8)     32      320 (1280)
    =========  ====================================================  ======  ==============

    Channels are ``make_divisible(c * width, 8)``, repeats ``ceil(n * depth)``. The 1x1 head conv to
    ``4 * C5`` channels (1280 for B0) is the last block of stage 4 when ``with_head_conv=True`` (the
    default, so the network equals torchvision's ``features``); EfficientDet-style necks use
    ``with_head_conv=False`` and get C5 = 320 * width.

    Args:
        arch: 'b0'..'b7', or ``dict(width=..., depth=..., bn_eps=1e-5, bn_momentum=0.1)``.
        drop_path_rate: stochastic depth; block i of N skips its residual branch with probability
            ``drop_path_rate * i / N`` (torchvision's schedule).
    """

    def __init__(self, arch='b0', with_head_conv=True, drop_path_rate=0.2, out_indices=(2, 3, 4),
                 frozen_stages=-1, norm_eval=False, with_cp=False, init_cfg=None):
        init_cfg = init_cfg or dict(type='Kaiming', layer='Conv2d', mode='fan_out')
        super().__init__(out_indices, frozen_stages, norm_eval, with_cp, init_cfg)
        if isinstance(arch, str):
            if arch not in ARCH_SETTINGS:
                raise KeyError(f'arch {arch!r} not in {sorted(ARCH_SETTINGS)}')
            arch = ARCH_SETTINGS[arch]
        width, depth = arch['width'], arch['depth']
        norm_layer = partial(nn.BatchNorm2d, eps=arch.get('bn_eps', 1e-5),
                             momentum=arch.get('bn_momentum', 0.1))
        stages = [(e, k, s, make_divisible(c * width), math.ceil(n * depth)) for e, k, s, c, n in B0_STAGES]
        total_blocks = sum(stage[-1] for stage in stages)

        in_channels = make_divisible(STEM_CHANNELS * width)
        blocks = [Conv2dNormActivation(3, in_channels, 3, 2, norm_layer=norm_layer, activation_layer=nn.SiLU)]
        self.layers = nn.ModuleList()
        self.layer_channels, self.layer_strides = [], []
        stride, index = 2, 0
        for expand, kernel, first_stride, out_channels, repeats in stages:
            if first_stride == 2:  # a new output stride closes the current stage
                self._add_stage(blocks, in_channels, stride)
                blocks, stride = [], stride * 2
            for i in range(repeats):
                blocks.append(MBConv(in_channels, out_channels, expand, kernel, first_stride if i == 0 else 1,
                                     drop_path_rate * index / total_blocks, norm_layer))
                in_channels, index = out_channels, index + 1
        if with_head_conv:
            blocks.append(Conv2dNormActivation(in_channels, 4 * in_channels, 1, norm_layer=norm_layer,
                                               activation_layer=nn.SiLU))
            in_channels *= 4
        self._add_stage(blocks, in_channels, stride)
        self._setup_outputs()

    def _add_stage(self, blocks, channels, stride):
        self.layers.append(nn.Sequential(*blocks))
        self.layer_channels.append(channels)
        self.layer_strides.append(stride)


def convert_torchvision_efficientnet(state_dict: dict) -> dict:
    """Map a ``torchvision.models.efficientnet_bX`` state dict to ``EfficientNet`` keys.

    ``features.{i}.{j}.*`` (torchvision stage i, block j) becomes ``layers.{stage}.{block}.*`` following
    the grouping in ``EfficientNet``'s table (a new stage at every stride-2 stage); ``features.0`` (stem)
    and ``features.8`` (head conv) are single blocks. The classifier is dropped. Block counts are read
    from the keys, so any width/depth pair converts. A backbone built without the head conv or with
    ``out_indices`` ending before stage 4 (later stages are not built) loads it with ``strict=False``.
    """
    repeats = {}
    for key in state_dict:
        parts = key.split('.')
        if parts[0] == 'features' and 1 <= int(parts[1]) <= len(B0_STAGES):
            repeats[int(parts[1])] = max(repeats.get(int(parts[1]), 0), int(parts[2]) + 1)
    place = {0: (0, 0)}  # torchvision stage -> (our stage, index of its first block)
    stage, position = 0, 1
    for i, (_, _, stride, _, _) in enumerate(B0_STAGES, start=1):
        if stride == 2:
            stage, position = stage + 1, 0
        place[i] = (stage, position)
        position += repeats[i]
    place[len(B0_STAGES) + 1] = (stage, position)

    converted = {}
    for key, value in state_dict.items():
        parts = key.split('.')
        if parts[0] != 'features':
            continue
        tv_stage = int(parts[1])
        stage, position = place[tv_stage]
        if tv_stage in (0, len(B0_STAGES) + 1):
            rest = parts[2:]
        else:
            position, rest = position + int(parts[2]), parts[3:]
        converted['.'.join(['layers', str(stage), str(position), *rest])] = value
    return converted
