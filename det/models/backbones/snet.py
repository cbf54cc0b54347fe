"""SNet, ThunderNet's backbone (Qin et al., "ThunderNet: Towards Real-time Generic Object Detection on
Mobile Devices", ICCV 2019): ShuffleNetV2 with every depthwise conv widened from 3x3 to 5x5, for a
larger receptive field at small input sizes (320x320)."""
import torch
from torch import nn
from torchvision.ops import Conv2dNormActivation

from det.registry import MODELS

from .base import KAIMING_INIT, BaseBackbone, lookup_arch

# stem: conv1 channels; widths: stage2-4 output channels; conv5: 1x1 conv after stage4 (SNet49 only).
# Paper Table 1; multiply-adds at 224x224 with the ImageNet classifier: 49 / 146 / 535 M.
ARCH_SETTINGS = {
    'snet49': dict(stem=24, widths=(60, 120, 240), conv5=512),
    'snet146': dict(stem=24, widths=(132, 264, 528), conv5=None),
    'snet535': dict(stem=48, widths=(248, 496, 992), conv5=None),
}
STAGE_REPEATS = (4, 8, 4)


def _depthwise(channels: int, stride: int, kernel: int) -> nn.Module:
    """Depthwise kxk conv + BN, no activation (as in ShuffleNetV2)."""
    return Conv2dNormActivation(channels, channels, kernel, stride, groups=channels, activation_layer=None)


class ShuffleBlock(nn.Module):
    """ShuffleNetV2 unit with a ``kernel`` x ``kernel`` depthwise conv.

    stride 1: split the channels in half, transform one half (1x1 → dw → 1x1), concat, shuffle.
    stride 2: both branches see the whole input and downsample (branch1: dw → 1x1; branch2: 1x1 → dw →
    1x1), each giving ``out_channels / 2``; concat and shuffle (``nn.ChannelShuffle(2)``: channel
    ``2 * k + g`` of the output is channel ``g * C / 2 + k`` of the concat, so the halves interleave).
    [B, in, H, W] → [B, out, H/s, W/s].
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, kernel: int = 5):
        super().__init__()
        if out_channels % 2:
            raise ValueError(f'out_channels must be even, got {out_channels}')
        if stride == 1 and in_channels != out_channels:
            raise ValueError('a stride-1 ShuffleBlock keeps its channel count')
        self.stride = stride
        half = out_channels // 2
        if stride == 2:
            self.branch1 = nn.Sequential(
                _depthwise(in_channels, stride, kernel),
                Conv2dNormActivation(in_channels, half, 1))
        branch2_in = in_channels if stride == 2 else half
        self.branch2 = nn.Sequential(
            Conv2dNormActivation(branch2_in, half, 1),
            _depthwise(half, stride, kernel),
            Conv2dNormActivation(half, half, 1))
        self.shuffle = nn.ChannelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return self.shuffle(out)


@MODELS.register_module()
class SNet(BaseBackbone):
    """SNet49 / SNet146 / SNet535 as five stride stages (``layers``):

    =========  ===================================  ======  ===========================
    out_index  stage                                stride  channels (49 / 146 / 535)
    =========  ===================================  ======  ===========================
    0          conv1 3x3 s2                         2       24 / 24 / 48
    1          max-pool 3x3 s2                      4       24 / 24 / 48
    2          stage2: 4 ShuffleBlocks              8       60 / 132 / 248
    3          stage3: 8 ShuffleBlocks              16      120 / 264 / 496
    4          stage4: 4 ShuffleBlocks (+ conv5)    32      512 / 528 / 992
    =========  ===================================  ======  ===========================

    SNet49's 1x1 conv5 (512 channels) is the last block of stage 4, so its C5 has 512 channels.
    The default ``out_indices=(3, 4)`` gives the stride-16 and stride-32 maps ThunderNet's CEM fuses.

    With ``kernel=3`` and ``arch=dict(stem=24, widths=(116, 232, 464), conv5=1024)`` this is torchvision's
    ``shufflenet_v2_x1_0`` without its FC (x0_5: widths (48, 96, 192); x1_5: (176, 352, 704);
    x2_0: (244, 488, 976) and conv5 2048), whose weights load with ``init_cfg=dict(type='Pretrained',
    checkpoint=path, convert='torchvision')``.

    Args:
        arch: 'snet49' | 'snet146' | 'snet535', or a dict with the keys of ``ARCH_SETTINGS`` values.
        kernel: depthwise kernel size (5 in SNet; 3 gives ShuffleNetV2).
    """

    torchvision_classifier = 'fc.'

    def __init__(self, arch='snet146', kernel: int = 5, out_indices=(3, 4), frozen_stages=-1,
                 norm_eval=False, with_cp=False, init_cfg=KAIMING_INIT):
        super().__init__(out_indices, frozen_stages, norm_eval, with_cp, init_cfg,
                         arch_kwargs=dict(arch=arch, kernel=kernel))
        arch = lookup_arch(arch, ARCH_SETTINGS)
        in_channels = arch['stem']
        blocks = [(Conv2dNormActivation(3, in_channels, 3, stride=2), in_channels, 2),
                  (nn.MaxPool2d(kernel_size=3, stride=2, padding=1), in_channels, 2)]
        for width, repeats in zip(arch['widths'], STAGE_REPEATS):
            for i in range(repeats):
                stride = 2 if i == 0 else 1
                blocks.append((ShuffleBlock(in_channels, width, stride, kernel), width, stride))
                in_channels = width
        if arch.get('conv5'):
            blocks.append((Conv2dNormActivation(in_channels, arch['conv5'], 1), arch['conv5'], 1))
        self._setup_stages(blocks)
