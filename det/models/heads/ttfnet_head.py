"""TTFNet's head (Liu et al., "Training-Time-Friendly Network for Real-Time Object Detection", AAAI
2020): CenterNet's heatmap with a GIoU-trained box at every pixel near an object's centre, which
converges faster than L1 on one centre pixel and gives tighter boxes (AP75)."""
import torch
import torch.nn.functional as F
from torch import nn

from det.registry import MODELS

from ..task_modules.centernet_targets import TTFNetTargetGenerator
from .heatmap_head import OUTPUT_STRIDE, HeatmapHead, conv_branch


@MODELS.register_module()
class TTFNetHead(HeatmapHead):
    """Heatmap and side-distance branches at output stride 4 (the heatmap part: :class:`HeatmapHead`).

    The box branch predicts the distances ``(l, t, r, b)`` from each pixel's anchor ``(x, y) * 4`` to the
    box's four sides, in input pixels, as ``relu(conv) * wh_base``; there is no offset branch.
    ``forward`` re-expresses them as CenterNet's ``(wh, offset)`` maps, ``wh = (l + r, t + b) / 4`` and
    ``offset = (r - l, b - t) / 8``, so decoding ``(cell + offset -+ wh / 2) * 4`` gives exactly
    ``(4x - l, 4y - t, 4x + r, 4y + b)`` and prediction, export and test-time augmentation are
    CenterNet's.

    Losses: ``loss_heatmap`` (penalty-reduced focal on elliptical Gaussians) and ``loss_bbox`` (GIoU,
    weight 5 in the paper) on the decoded boxes of every pixel in a Gaussian area around each centre,
    weighted by the :class:`TTFNetTargetGenerator` and normalised by the batch's total weight.
    """

    target_generator_type = TTFNetTargetGenerator

    def __init__(self, num_classes: int, in_channels, strides, in_index: int = 0, feat_channels: int = 64,
                 deconv_channels=256, target_generator: dict = None, loss_heatmap: dict = None,
                 loss_bbox: dict = None, wh_base: float = 16.0, test_cfg: dict = None, init_cfg=None):
        super().__init__(num_classes, in_channels, strides,
                         target_generator or dict(type='TTFNetTargetGenerator'), in_index, feat_channels,
                         deconv_channels, loss_heatmap, test_cfg, init_cfg)
        self.wh_base = wh_base
        self.loss_bbox = MODELS.build(loss_bbox or dict(type='GIoULoss', loss_weight=5.0))

    def _build_box_branches(self, in_channels: int, feat_channels: int):
        self.wh_branch = conv_branch(in_channels, feat_channels, 4)

    def _init_branches(self):
        """As CenterNet's, and side-distance bias 1: every pixel starts with a ``2 wh_base`` square box,
        so no distance starts at the ReLU's dead zero."""
        super()._init_branches()
        nn.init.constant_(self.wh_branch[-1].bias, 1.0)

    def box_maps(self, x: torch.Tensor) -> tuple:
        ltrb = F.relu(self.wh_branch(x)) * (self.wh_base / OUTPUT_STRIDE)      # [B, 4, H, W] in cells
        return ltrb[:, :2] + ltrb[:, 2:], (ltrb[:, 2:] - ltrb[:, :2]) / 2

    def box_losses(self, wh: torch.Tensor, offset: torch.Tensor, targets: list) -> dict:
        """``loss_bbox``: every pixel with a regression weight decodes its box like ``predict`` (xyxy
        input pixels) and is compared with its target box; normalised by the total weight of the batch
        (+1e-4, so no object gives an exact 0)."""
        boxes = self.decode(wh, offset).flatten(0, 1)                                # [B*H*W, 4]
        bbox_target = torch.cat([t.bbox_target for t in targets]).to(wh.device)       # [B*H*W, 4]
        bbox_weight = torch.cat([t.bbox_weight for t in targets]).to(wh.device)       # [B*H*W]
        pos = bbox_weight > 0
        return dict(loss_bbox=self.loss_bbox(boxes[pos], bbox_target[pos], weight=bbox_weight[pos],
                                             avg_factor=bbox_weight.sum() + 1e-4))
