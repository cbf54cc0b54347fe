"""MobileNetV1 (Howard et al., 2017): a 3x3 stem conv followed by 13 depthwise-separable blocks, each a
3x3 depthwise conv and a 1x1 pointwise conv with BN + ReLU after both (the paper's Table 1)."""
from torch import nn
from torchvision.ops import Conv2dNormActivation

from det.registry import MODELS

from .base import KAIMING_INIT, BaseBackbone


class DepthwiseSeparable(nn.Sequential):
    """3x3 depthwise conv-BN-ReLU (carries the stride) then 1x1 pointwise conv-BN-ReLU.
    [B, C_in, H, W] -> [B, C_out, H / stride, W / stride]."""

    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.dw = Conv2dNormActivation(in_channels, in_channels, 3, stride, groups=in_channels)
        self.pw = Conv2dNormActivation(in_channels, out_channels, 1)


@MODELS.register_module()
class MobileNetV1(BaseBackbone):
    """MobileNetV1 split into stride stages (channels for ``widen_factor`` = alpha = 1.0):

    =========  ===========================================  ========  ========
    out_index  layers (paper Table 1)                       stride    channels
    =========  ===========================================  ========  ========
    0          stem conv 32, dw-sep 64                      2         64
    1          dw-sep 128 (s2), dw-sep 128                  4         128
    2          dw-sep 256 (s2), dw-sep 256                  8         256
    3          dw-sep 512 (s2), 5 x dw-sep 512              16        512
    4          dw-sep 1024 (s2), dw-sep 1024                32        1024
    =========  ===========================================  ========  ========

    ``widen_factor`` is the paper's width multiplier alpha: every layer has ``int(alpha * c)`` channels.
    With global pooling and a 1000-way FC on top this is the paper's classifier (4.23 M parameters,
    569 M multiply-adds at 224x224 for alpha=1). torchvision has no MobileNetV1, so there is no
    ``convert_torchvision``.
    """

    # (output channels, stride) of the depthwise-separable blocks after the stride-2, 32-channel stem.
    arch = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1),
            (512, 1), (512, 1), (1024, 2), (1024, 1)]

    def __init__(self, widen_factor=1.0, out_indices=(2, 3, 4), frozen_stages=-1, norm_eval=False,
                 with_cp=False, init_cfg=KAIMING_INIT):
        super().__init__(out_indices, frozen_stages, norm_eval, with_cp, init_cfg)
        in_channels = int(32 * widen_factor)
        blocks = [(Conv2dNormActivation(3, in_channels, 3, 2), in_channels, 2)]
        for channels, stride in self.arch:
            out_channels = int(channels * widen_factor)
            blocks.append((DepthwiseSeparable(in_channels, out_channels, stride), out_channels, stride))
            in_channels = out_channels
        self._setup_stages(blocks)
