"""EfficientNet-B0..B7 (Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML 2019): one B0 stage table scaled by a (width, depth) compound-scaling pair, with
torchvision's rounding, so parameter counts and (after ``EfficientNet.convert_torchvision``) weights
match ``torchvision.models.efficientnet_bX`` exactly."""
import math
from collections import OrderedDict
from functools import partial

from torch import nn
from torchvision.ops import Conv2dNormActivation, SqueezeExcitation

from det.registry import MODELS

from .base import KAIMING_INIT, BaseBackbone, lookup_arch
from .layers import InvertedResidual, make_divisible

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

    torchvision_classifier = 'classifier.'

    def __init__(self, arch='b0', with_head_conv=True, drop_path_rate=0.2, out_indices=(2, 3, 4),
                 frozen_stages=-1, norm_eval=False, with_cp=False, init_cfg=KAIMING_INIT):
        super().__init__(out_indices, frozen_stages, norm_eval, with_cp, init_cfg,
                         arch_kwargs=dict(arch=arch, with_head_conv=with_head_conv))
        arch = lookup_arch(arch, ARCH_SETTINGS)
        width, depth = arch['width'], arch['depth']
        norm_layer = partial(nn.BatchNorm2d, eps=arch.get('bn_eps', 1e-5),
                             momentum=arch.get('bn_momentum', 0.1))
        conv = partial(Conv2dNormActivation, norm_layer=norm_layer, activation_layer=nn.SiLU)
        stages = [(e, k, s, make_divisible(c * width), math.ceil(n * depth)) for e, k, s, c, n in B0_STAGES]
        total_blocks = sum(stage[-1] for stage in stages)

        in_channels = make_divisible(STEM_CHANNELS * width)
        blocks = [(conv(3, in_channels, 3, 2), in_channels, 2)]
        for expand, kernel, first_stride, out_channels, repeats in stages:
            for i in range(repeats):
                stride = first_stride if i == 0 else 1
                # squeeze-excite to a quarter of the block's input channels, SiLU, sigmoid gate
                se_layer = partial(SqueezeExcitation, squeeze_channels=max(1, in_channels // 4),
                                   activation=partial(nn.SiLU, inplace=True))
                drop_prob = drop_path_rate * (len(blocks) - 1) / total_blocks  # blocks[0] is the stem
                block = InvertedResidual(in_channels, make_divisible(in_channels * expand), out_channels,
                                         kernel, stride, nn.SiLU, norm_layer, se_layer, drop_prob)
                blocks.append((block, out_channels, stride))
                in_channels = out_channels
        if with_head_conv:
            blocks.append((conv(in_channels, 4 * in_channels, 1), 4 * in_channels, 1))
        self._setup_stages(blocks)

    @classmethod
    def convert_torchvision(cls, state_dict: dict, **arch_kwargs) -> OrderedDict:
        """As :meth:`BaseBackbone.convert_torchvision`; for ``with_head_conv=False`` torchvision's
        head conv (its last ``features`` block) is left out too."""
        if not arch_kwargs.get('with_head_conv', True):
            head = f'features.{len(B0_STAGES) + 1}.'
            state_dict = {k: v for k, v in state_dict.items() if not k.startswith(head)}
        return super().convert_torchvision(state_dict, **arch_kwargs)
