"""CenterNet's head: objects as centre points on a stride-4 heatmap, with size and sub-pixel offset
regressed at each centre (Zhou et al., "Objects as Points", 2019). Anchor-free and NMS-free: peaks are
the 3x3 local maxima of the heatmap."""
import math

import torch
import torch.nn.functional as F
from torch import nn

from det.registry import MODELS, TASK_UTILS

from .base_dense_head import BaseDenseHead

OUTPUT_STRIDE = 4


def _branch(in_channels: int, feat_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 conv + ReLU + 1x1 conv, one per predicted quantity."""
    return nn.Sequential(nn.Conv2d(in_channels, feat_channels, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(feat_channels, out_channels, 1))


@MODELS.register_module()
class CenterNetHead(BaseDenseHead):
    """Heatmap / size / offset head on one feature level, upsampled to output stride 4.

    Takes ``feats[in_index]`` ``[B, in_channels[in_index], H/s, W/s]``; when ``s > 4`` it is first
    upsampled by ``log2(s / 4)`` deconv blocks (ConvTranspose2d 4x4 stride 2 + BN + ReLU, as in the
    paper's ResNet variant) with ``deconv_channels`` (an int for all blocks, or one per block).
    ``forward`` returns raw maps at stride 4:

    - ``heatmap`` ``[B, C, H/4, W/4]`` logits (sigmoid at use; final bias -2.19, i.e. p = 0.1);
    - ``wh`` ``[B, 2, H/4, W/4]`` box (w, h) in output-stride cells (input pixels / 4), as the
      reference, so the paper's size-loss weight 0.1 applies unchanged;
    - ``offset`` ``[B, 2, H/4, W/4]`` sub-pixel centre offset ``c/4 - floor(c/4)`` in cells.

    Losses: ``loss_heatmap`` (penalty-reduced focal, over positive pixels), ``loss_wh`` and
    ``loss_offset`` (L1 at centre pixels only, per object, averaged over the two coordinates).
    ``predict``: heatmap peaks (pixels equal to their 3x3 max-pool) are the candidates; ``test_cfg``
    keeps the ``topk`` best (100, as the reference) and applies no NMS unless ``nms=dict(iou_thr=...)``.
    ``ignored_instances`` are not used (as the reference).
    """

    default_test_cfg = dict(score_thr=0.0, nms=None, max_per_img=100, topk=100)

    def __init__(self, num_classes: int, in_channels, strides, in_index: int = 0, feat_channels: int = 64,
                 deconv_channels=256, target_generator: dict = None, loss_heatmap: dict = None,
                 loss_wh: dict = None, loss_offset: dict = None, test_cfg: dict = None, init_cfg=None):
        super().__init__(num_classes, in_channels, strides, in_index, test_cfg, init_cfg)
        num_up = math.log2(self.stride / OUTPUT_STRIDE) if self.stride >= OUTPUT_STRIDE else -1
        if num_up < 0 or num_up != int(num_up):
            raise ValueError(f'CenterNetHead needs a feature of stride 4 * 2**k (k >= 0) to reach output '
                             f'stride 4; strides[{in_index}] = {self.stride} (strides: {list(strides)})')
        self.deconv, channels = self._deconv_layers(self.in_channels, deconv_channels, int(num_up))
        self.heatmap_branch = _branch(channels, feat_channels, num_classes)
        self.wh_branch = _branch(channels, feat_channels, 2)
        self.offset_branch = _branch(channels, feat_channels, 2)
        self._init_branches()
        self.target_generator = TASK_UTILS.build(
            target_generator or dict(type='CenterNetTargetGenerator', min_overlap=0.7))
        self.loss_heatmap = MODELS.build(
            loss_heatmap or dict(type='GaussianFocalLoss', alpha=2.0, beta=4.0, loss_weight=1.0))
        self.loss_wh = MODELS.build(loss_wh or dict(type='L1Loss', loss_weight=0.1))
        self.loss_offset = MODELS.build(loss_offset or dict(type='L1Loss', loss_weight=1.0))

    @staticmethod
    def _deconv_layers(in_channels: int, deconv_channels, num_up: int) -> tuple:
        """``num_up`` x2 upsampling blocks; returns them and their output channel count."""
        if isinstance(deconv_channels, int):
            deconv_channels = [deconv_channels] * num_up
        if len(deconv_channels) != num_up:
            raise ValueError(f'deconv_channels {list(deconv_channels)} must have one entry per deconv block '
                             f'({num_up} needed to reach stride 4)')
        layers = []
        for out_channels in deconv_channels:
            layers += [nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]
            in_channels = out_channels
        return nn.Sequential(*layers), in_channels

    def _init_branches(self):
        """Reference init: small normal weights, zero biases; heatmap bias -2.19 = logit(0.1) so the
        many background pixels do not dominate the focal loss at the start."""
        for branch in (self.heatmap_branch, self.wh_branch, self.offset_branch):
            for conv in branch[0::2]:
                nn.init.normal_(conv.weight, std=0.001)
                nn.init.zeros_(conv.bias)
        nn.init.constant_(self.heatmap_branch[-1].bias, -2.19)

    def forward(self, feats) -> tuple:
        """``feats``: tuple of maps; returns ``(heatmap, wh, offset)`` at stride 4 (see class doc)."""
        x = self.deconv(feats[self.in_index])
        return self.heatmap_branch(x), self.wh_branch(x), self.offset_branch(x)

    def loss_by_feat(self, heatmap, wh, offset, batch_gt_instances: list, batch_img_metas: list) -> dict:
        """Targets from ``batch_gt_instances`` (xyxy input pixels); normalisers are over the batch; losses
        in fp32, also under autocast."""
        heatmap, wh, offset = heatmap.float(), wh.float(), offset.float()
        batch, num_classes, height, width = heatmap.shape
        targets = [self.target_generator(gt.bboxes, gt.labels, num_classes, (height, width), OUTPUT_STRIDE)
                   for gt in batch_gt_instances]
        heatmap_target = torch.stack([t.heatmap for t in targets]).to(heatmap.device)
        inds = torch.cat([t.inds + b * height * width for b, t in enumerate(targets)]).to(heatmap.device)
        wh_target = torch.cat([t.wh for t in targets]).to(wh.device)
        offset_target = torch.cat([t.offset for t in targets]).to(offset.device)

        num_pos = heatmap_target.eq(1).sum().clamp(min=1)
        num_coords = 2 * max(1, inds.numel())
        return dict(
            loss_heatmap=self.loss_heatmap(heatmap.sigmoid(), heatmap_target, avg_factor=num_pos),
            loss_wh=self.loss_wh(self._gather(wh, inds), wh_target, avg_factor=num_coords),
            loss_offset=self.loss_offset(self._gather(offset, inds), offset_target, avg_factor=num_coords))

    @staticmethod
    def _gather(maps: torch.Tensor, inds: torch.Tensor) -> torch.Tensor:
        """``[B, 2, H, W]`` maps at flat batch indices ``b * H * W + y * W + x`` → ``[M, 2]``."""
        return maps.permute(0, 2, 3, 1).reshape(-1, maps.shape[1])[inds]

    def predict_by_feat(self, heatmap, wh, offset, batch_img_metas: list) -> list:
        """Raw maps -> detections in input pixels. Every pixel is a position with box
        ``(cell + offset ± wh / 2) * 4``; its class scores are the heatmap's where it is a 3x3 peak,
        else 0; ``select_detections`` keeps the best by ``test_cfg``."""
        heatmap, wh, offset = heatmap.float(), wh.float(), offset.float()
        batch, num_classes, height, width = heatmap.shape
        heat = heatmap.sigmoid()
        heat = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat)
        scores = heat.flatten(2).transpose(1, 2)                                      # [B, H*W, C]
        rows, cols = torch.meshgrid(torch.arange(height, device=heat.device),
                                    torch.arange(width, device=heat.device), indexing='ij')
        cells = torch.stack([cols.flatten(), rows.flatten()], dim=1).float()          # [H*W, 2] (x, y)
        centers = cells + offset.flatten(2).transpose(1, 2)                           # [B, H*W, 2]
        sizes = wh.flatten(2).transpose(1, 2)
        bboxes = torch.cat([centers - sizes / 2, centers + sizes / 2], dim=-1) * OUTPUT_STRIDE
        return [self.select_detections(bboxes[b], scores[b]) for b in range(batch)]
