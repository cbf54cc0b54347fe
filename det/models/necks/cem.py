"""ThunderNet's Context Enhancement Module (Qin et al. 2019): a cheap one-level FPN that mixes local
(C4), larger-scale (C5) and global (pooled C5) context into one thin stride-16 map for PSRoI align."""
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from det.registry import MODELS


@MODELS.register_module()
class CEM(BaseModule):
    """``F_CEM = conv1x1(C4) + up2x(conv1x1(C5)) + conv1x1(avgpool(C5))`` (the last broadcast).

    The stride-16 (C4) and stride-32 (C5) inputs are picked from ``strides``. Every branch maps to
    ``out_channels`` = ``alpha * pool_size**2`` (245 = 5 * 7 * 7: PSRoI align with ``alpha`` channels
    per 7x7 bin) unless ``out_channels`` is given. ThunderNet applies the global branch as a linear
    layer on the pooled vector, which is the same as this 1x1 conv on a 1x1 map.

    ``forward(feats)`` -> ``(F_CEM [B, out_channels, H/16, W/16],)``; C5's branch is upsampled
    (``upsample='nearest' | 'bilinear'``) to C4's exact size, so odd sizes work.
    ``self.out_channels == [out_channels]``, ``self.strides == [16]``.
    """

    def __init__(self, in_channels, strides, alpha: int = 5, pool_size: int = 7, out_channels: int = None,
                 upsample: str = 'nearest', init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        strides = list(strides)
        if 16 not in strides or 32 not in strides:
            raise ValueError(f'CEM needs a stride-16 (C4) and a stride-32 (C5) input; got strides {strides}')
        if upsample not in ('nearest', 'bilinear'):
            raise ValueError(f"upsample={upsample!r}; choose 'nearest' or 'bilinear'")
        self.c4_index, self.c5_index = strides.index(16), strides.index(32)
        out_channels = alpha * pool_size * pool_size if out_channels is None else out_channels
        self.upsample = upsample
        self.conv_c4 = nn.Conv2d(in_channels[self.c4_index], out_channels, 1)
        self.conv_c5 = nn.Conv2d(in_channels[self.c5_index], out_channels, 1)
        self.conv_glb = nn.Conv2d(in_channels[self.c5_index], out_channels, 1)
        self.out_channels = [out_channels]
        self.strides = [16]

    def forward(self, feats) -> tuple:
        c4, c5 = feats[self.c4_index], feats[self.c5_index]
        align = {} if self.upsample == 'nearest' else {'align_corners': False}
        up = F.interpolate(self.conv_c5(c5), size=c4.shape[-2:], mode=self.upsample, **align)
        glb = self.conv_glb(F.adaptive_avg_pool2d(c5, 1))
        return (self.conv_c4(c4) + up + glb,)
