"""MobileNetV3 (Howard et al., 2019) 'large' and 'small', layer-for-layer the architectures of
torchvision's ``mobilenet_v3_large`` / ``mobilenet_v3_small``."""
from functools import partial

from torch import nn
from torchvision.ops import Conv2dNormActivation, SqueezeExcitation

from det.registry import MODELS

from .base import KAIMING_INIT, BaseBackbone, lookup_arch
from .layers import InvertedResidual, make_divisible

# BatchNorm settings of the TF reference implementation, which torchvision keeps for V3.
V3_NORM = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)


@MODELS.register_module()
class MobileNetV3(BaseBackbone):
    """MobileNetV3 with torchvision's layer layout, split into stride stages:

    =========  =====================================  ==========================  ========
    out_index  torchvision ``features`` large/small   channels large/small (w=1)  stride
    =========  =====================================  ==========================  ========
    0          0-1 / 0     (stem conv [+ block])      16 / 16                     2
    1          2-3 / 1                                24 / 16                     4
    2          4-6 / 2-3                              40 / 24                     8
    3          7-12 / 4-8                             112 / 48                    16
    4          13-16 / 9-12 (incl. final 1x1 conv)    960 / 576                   32
    =========  =====================================  ==========================  ========

    ``out_indices=(2, 3, 4)`` gives strides 8/16/32. Block channels scale with ``widen_factor``
    (rounded to multiples of 8). Pretrained weights: ``init_cfg=dict(type='Pretrained',
    checkpoint=path, convert='torchvision')`` with ``path`` a saved
    ``torchvision.models.mobilenet_v3_{arch}(width_mult=widen_factor).state_dict()``.
    """

    torchvision_classifier = 'classifier.'

    # (kernel, expanded channels, output channels, squeeze-excite, activation, stride): paper Tables 1-2.
    arch_settings = {
        'large': [(3, 16, 16, False, 'RE', 1), (3, 64, 24, False, 'RE', 2), (3, 72, 24, False, 'RE', 1),
                  (5, 72, 40, True, 'RE', 2), (5, 120, 40, True, 'RE', 1), (5, 120, 40, True, 'RE', 1),
                  (3, 240, 80, False, 'HS', 2), (3, 200, 80, False, 'HS', 1), (3, 184, 80, False, 'HS', 1),
                  (3, 184, 80, False, 'HS', 1), (3, 480, 112, True, 'HS', 1), (3, 672, 112, True, 'HS', 1),
                  (5, 672, 160, True, 'HS', 2), (5, 960, 160, True, 'HS', 1), (5, 960, 160, True, 'HS', 1)],
        'small': [(3, 16, 16, True, 'RE', 2), (3, 72, 24, False, 'RE', 2), (3, 88, 24, False, 'RE', 1),
                  (5, 96, 40, True, 'HS', 2), (5, 240, 40, True, 'HS', 1), (5, 240, 40, True, 'HS', 1),
                  (5, 120, 48, True, 'HS', 1), (5, 144, 48, True, 'HS', 1), (5, 288, 96, True, 'HS', 2),
                  (5, 576, 96, True, 'HS', 1), (5, 576, 96, True, 'HS', 1)],
    }
    acts = {'RE': nn.ReLU, 'HS': nn.Hardswish}

    def __init__(self, arch='large', widen_factor=1.0, out_indices=(2, 3, 4), frozen_stages=-1,
                 norm_eval=False, with_cp=False, init_cfg=KAIMING_INIT):
        super().__init__(out_indices, frozen_stages, norm_eval, with_cp, init_cfg,
                         arch_kwargs=dict(arch=arch, widen_factor=widen_factor))
        conv = partial(Conv2dNormActivation, norm_layer=V3_NORM, activation_layer=nn.Hardswish)
        in_channels = make_divisible(16 * widen_factor)
        blocks = [(conv(3, in_channels, 3, 2), in_channels, 2)]
        for kernel, expanded, out_channels, se, act, stride in lookup_arch(arch, self.arch_settings):
            hidden = make_divisible(expanded * widen_factor)
            out_channels = make_divisible(out_channels * widen_factor)
            se_layer = partial(SqueezeExcitation, squeeze_channels=make_divisible(hidden // 4),
                               scale_activation=nn.Hardsigmoid) if se else None
            block = InvertedResidual(in_channels, hidden, out_channels, kernel, stride, self.acts[act],
                                     V3_NORM, se_layer)
            blocks.append((block, out_channels, stride))
            in_channels = out_channels
        blocks.append((conv(in_channels, 6 * in_channels, 1), 6 * in_channels, 1))
        self._setup_stages(blocks)
