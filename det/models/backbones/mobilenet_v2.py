"""MobileNetV2 (Sandler et al., 2018), layer-for-layer the architecture of torchvision's
``mobilenet_v2``."""
from torch import nn
from torchvision.ops import Conv2dNormActivation

from det.registry import MODELS

from .base import KAIMING_INIT, BaseBackbone
from .layers import InvertedResidual, make_divisible


@MODELS.register_module()
class MobileNetV2(BaseBackbone):
    """MobileNetV2 with torchvision's layer layout (``features[0..18]``), split into stride stages:

    =========  =================================================  ========  ==================
    out_index  torchvision ``features``                           stride    channels (w=1.0)
    =========  =================================================  ========  ==================
    0          0-1   (stem conv, 16-ch block)                     2         16
    1          2-3   (24-ch blocks)                               4         24
    2          4-6   (32-ch blocks)                               8         32
    3          7-13  (64- and 96-ch blocks)                       16        96
    4          14-18 (160-, 320-ch blocks, final 1x1 conv)        32        1280
    =========  =================================================  ========  ==================

    ``out_indices=(2, 3, 4)`` gives strides 8/16/32 with 32/96/1280 channels. Channels scale with
    ``widen_factor`` (rounded to multiples of 8); the final conv keeps 1280 for ``widen_factor <= 1``.

    Pretrained weights: ``init_cfg=dict(type='Pretrained', checkpoint=path, convert='torchvision')``
    with ``path`` a saved ``torchvision.models.mobilenet_v2(width_mult=widen_factor).state_dict()``
    (:meth:`convert_torchvision` maps the keys).
    """

    torchvision_classifier = 'classifier.'
    # (expand ratio t, output channels c, repeats n, first stride s): the paper's Table 2.
    arch = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
            (6, 320, 1, 1)]

    def __init__(self, widen_factor=1.0, out_indices=(2, 3, 4), frozen_stages=-1, norm_eval=False,
                 with_cp=False, init_cfg=KAIMING_INIT):
        super().__init__(out_indices, frozen_stages, norm_eval, with_cp, init_cfg,
                         arch_kwargs=dict(widen_factor=widen_factor))
        in_channels = make_divisible(32 * widen_factor)
        blocks = [(Conv2dNormActivation(3, in_channels, 3, 2, activation_layer=nn.ReLU6), in_channels, 2)]
        for t, c, n, s in self.arch:
            out_channels = make_divisible(c * widen_factor)
            for i in range(n):
                stride = s if i == 0 else 1
                block = InvertedResidual(in_channels, round(in_channels * t), out_channels, 3, stride)
                blocks.append((block, out_channels, stride))
                in_channels = out_channels
        last_channels = make_divisible(1280 * max(1.0, widen_factor))
        blocks.append((Conv2dNormActivation(in_channels, last_channels, 1, activation_layer=nn.ReLU6),
                       last_channels, 1))
        self._setup_stages(blocks)
