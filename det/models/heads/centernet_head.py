"""CenterNet's head: objects as centre points on a stride-4 heatmap, with size and sub-pixel offset
regressed at each centre (Zhou et al., "Objects as Points", 2019). Anchor-free and NMS-free: peaks are
the 3x3 local maxima of the heatmap."""
import torch

from det.registry import MODELS

from ..task_modules.centernet_targets import CenterNetTargetGenerator
from .heatmap_head import HeatmapHead, conv_branch


@MODELS.register_module()
class CenterNetHead(HeatmapHead):
    """Heatmap / size / offset branches at output stride 4 (the heatmap part: :class:`HeatmapHead`).

    - ``wh`` ``[B, 2, H/4, W/4]``: box (w, h) in output-stride cells (input pixels / 4), as the
      reference, so the paper's size-loss weight 0.1 applies unchanged;
    - ``offset`` ``[B, 2, H/4, W/4]``: sub-pixel centre offset ``c/4 - floor(c/4)`` in cells.

    Losses: ``loss_heatmap`` (penalty-reduced focal, over positive pixels), ``loss_wh`` and
    ``loss_offset`` (L1 at centre pixels only, per object, averaged over the two coordinates), with
    targets from a :class:`CenterNetTargetGenerator`. TTFNet's GIoU box regression is another head,
    :class:`~det.models.heads.ttfnet_head.TTFNetHead`.
    """

    target_generator_type = CenterNetTargetGenerator

    def __init__(self, num_classes: int, in_channels, strides, in_index: int = 0, feat_channels: int = 64,
                 deconv_channels=256, target_generator: dict = None, loss_heatmap: dict = None,
                 loss_wh: dict = None, loss_offset: dict = None, test_cfg: dict = None, init_cfg=None):
        super().__init__(num_classes, in_channels, strides,
                         target_generator or dict(type='CenterNetTargetGenerator'), in_index, feat_channels,
                         deconv_channels, loss_heatmap, test_cfg, init_cfg)
        self.loss_wh = MODELS.build(loss_wh or dict(type='L1Loss', loss_weight=0.1))
        self.loss_offset = MODELS.build(loss_offset or dict(type='L1Loss', loss_weight=1.0))

    def _build_box_branches(self, in_channels: int, feat_channels: int):
        self.wh_branch = conv_branch(in_channels, feat_channels, 2)
        self.offset_branch = conv_branch(in_channels, feat_channels, 2)

    def box_maps(self, x: torch.Tensor) -> tuple:
        return self.wh_branch(x), self.offset_branch(x)

    def box_losses(self, wh: torch.Tensor, offset: torch.Tensor, targets: list) -> dict:
        """``loss_wh`` and ``loss_offset``: L1 at each object's centre pixel, divided by twice the number
        of objects in the batch."""
        batch, _, height, width = wh.shape
        inds = torch.cat([t.inds + b * height * width for b, t in enumerate(targets)]).to(wh.device)
        wh_target = torch.cat([t.wh for t in targets]).to(wh.device)
        offset_target = torch.cat([t.offset for t in targets]).to(offset.device)
        num_coords = 2 * max(1, inds.numel())
        return dict(loss_wh=self.loss_wh(self._gather(wh, inds), wh_target, avg_factor=num_coords),
                    loss_offset=self.loss_offset(self._gather(offset, inds), offset_target,
                                                 avg_factor=num_coords))

    @staticmethod
    def _gather(maps: torch.Tensor, inds: torch.Tensor) -> torch.Tensor:
        """``[B, 2, H, W]`` maps at flat batch indices ``b * H * W + y * W + x`` -> ``[M, 2]``."""
        return maps.permute(0, 2, 3, 1).reshape(-1, maps.shape[1])[inds]
