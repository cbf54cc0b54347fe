"""ThunderNet's Spatial Attention Module (Qin et al. 2019): re-weights the CEM map with the RPN's
foreground knowledge before PSRoI align."""
import torch
from mmengine.model import BaseModule
from torch import nn

from det.registry import MODELS


@MODELS.register_module()
class SAM(BaseModule):
    """``F_SAM = F_CEM * sigmoid(BN(conv1x1(F_RPN)))``.

    Not a tuple-in/tuple-out neck: a two-stage detector calls it between its RPN and RoI head with
    ``forward(cem_feat [B, cem_channels, H, W], rpn_feat [B, rpn_channels, H, W])`` and gets a map of
    ``cem_feat``'s shape. The RoI head's gradient flows into ``rpn_feat`` too, which is how the
    paper lets the RoI loss shape the RPN. ``self.out_channels == [cem_channels]``.
    """

    def __init__(self, rpn_channels: int = 256, cem_channels: int = 245, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.conv = nn.Conv2d(rpn_channels, cem_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(cem_channels)
        self.out_channels = [cem_channels]

    def forward(self, cem_feat: torch.Tensor, rpn_feat: torch.Tensor) -> torch.Tensor:
        return cem_feat * torch.sigmoid(self.bn(self.conv(rpn_feat)))
