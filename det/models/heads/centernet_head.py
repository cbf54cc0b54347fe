"""CenterNet's head: objects as centre points on a stride-4 heatmap, with size and sub-pixel offset
regressed at each centre (Zhou et al., "Objects as Points", 2019). Anchor-free and NMS-free: peaks are
the 3x3 local maxima of the heatmap."""
import math

import torch
import torch.nn.functional as F
from torch import nn

from det.registry import MODELS, TASK_UTILS

from ..task_modules.centernet_targets import CenterNetTargetGenerator, TTFNetTargetGenerator
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

    TTFNet box regression (Liu et al. 2020), switched on by ``loss_bbox=dict(type='GIoULoss',
    loss_weight=5.0)`` (then ``loss_wh`` / ``loss_offset`` must be left unset): the size branch predicts
    the distances ``(l, t, r, b)`` from each pixel's anchor ``(x, y) * 4`` to the box's four sides, in
    input pixels, as ``relu(conv) * wh_base``; no offset branch is built. ``forward`` re-expresses them
    as the same ``(wh, offset)`` maps, ``wh = (l + r, t + b) / 4`` and ``offset = (r - l, b - t) / 8``,
    so decoding ``(cell + offset -+ wh / 2) * 4`` gives exactly ``(4x - l, 4y - t, 4x + r, 4y + b)`` and
    prediction, export and test-time augmentation stay one path. The loss is ``loss_bbox`` (GIoU) on
    the decoded boxes of every pixel in a Gaussian area around each centre, weighted by
    :class:`TTFNetTargetGenerator` (the default target generator in this mode) and normalised by the
    batch's total weight; many supervised pixels per object and a scale-free loss converge faster than
    L1 on one centre pixel, and the boxes are tighter (AP75).

    ``ignored_instances`` of the samples (crowd / difficult boxes): heatmap negatives at pixels inside
    them (:func:`~det.models.task_modules.ignore_mask`) get zero weight, so the detector is neither
    rewarded nor punished for firing on a crowd; positives there are trained as usual.
    ``predict``: heatmap peaks (pixels equal to their 3x3 max-pool) are the candidates; ``test_cfg``
    keeps the ``topk`` best (100, as the reference) and applies no NMS unless ``nms=dict(iou_thr=...)``.
    """

    default_test_cfg = dict(score_thr=0.0, nms=None, max_per_img=100, topk=100)

    def __init__(self, num_classes: int, in_channels, strides, in_index: int = 0, feat_channels: int = 64,
                 deconv_channels=256, target_generator: dict = None, loss_heatmap: dict = None,
                 loss_wh: dict = None, loss_offset: dict = None, loss_bbox: dict = None,
                 wh_base: float = 16.0, test_cfg: dict = None, init_cfg=None):
        super().__init__(num_classes, in_channels, strides, in_index, test_cfg, init_cfg)
        num_up = math.log2(self.stride / OUTPUT_STRIDE) if self.stride >= OUTPUT_STRIDE else -1
        if num_up < 0 or num_up != int(num_up):
            raise ValueError(f'CenterNetHead needs a feature of stride 4 * 2**k (k >= 0) to reach output '
                             f'stride 4; strides[{in_index}] = {self.stride} (strides: {list(strides)})')
        self.with_giou = loss_bbox is not None
        if self.with_giou and (loss_wh is not None or loss_offset is not None):
            raise ValueError('CenterNetHead: loss_bbox (TTFNet box regression) replaces loss_wh and '
                             'loss_offset; set either loss_bbox or loss_wh / loss_offset, not both')
        self.wh_base = wh_base
        self.deconv, channels = self._deconv_layers(self.in_channels, deconv_channels, int(num_up))
        self.heatmap_branch = _branch(channels, feat_channels, num_classes)
        # TTFNet: 4 side distances and no offset branch (every built parameter is trained).
        self.wh_branch = _branch(channels, feat_channels, 4 if self.with_giou else 2)
        self.offset_branch = None if self.with_giou else _branch(channels, feat_channels, 2)
        self._init_branches()
        default_generator = 'TTFNetTargetGenerator' if self.with_giou else 'CenterNetTargetGenerator'
        self.target_generator = TASK_UTILS.build(target_generator or dict(type=default_generator))
        expected = TTFNetTargetGenerator if self.with_giou else CenterNetTargetGenerator
        if not isinstance(self.target_generator, expected):
            raise TypeError(f'CenterNetHead with loss_{"bbox" if self.with_giou else "wh"} needs a '
                            f'{expected.__name__}, got {type(self.target_generator).__name__}')
        self.loss_heatmap = MODELS.build(
            loss_heatmap or dict(type='GaussianFocalLoss', alpha=2.0, beta=4.0, loss_weight=1.0))
        if self.with_giou:
            self.loss_bbox = MODELS.build(loss_bbox)
        else:
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
        many background pixels do not dominate the focal loss at the start. TTFNet mode: side-distance
        bias 1, i.e. every pixel starts with a ``2 wh_base`` square box, so no distance starts at the
        ReLU's dead zero."""
        for branch in (self.heatmap_branch, self.wh_branch, self.offset_branch):
            if branch is None:
                continue
            for conv in branch[0::2]:
                nn.init.normal_(conv.weight, std=0.001)
                nn.init.zeros_(conv.bias)
        nn.init.constant_(self.heatmap_branch[-1].bias, -2.19)
        if self.with_giou:
            nn.init.constant_(self.wh_branch[-1].bias, 1.0)

    def forward(self, feats) -> tuple:
        """``feats``: tuple of maps; returns ``(heatmap, wh, offset)`` at stride 4 (see class doc; in
        TTFNet mode ``wh`` and ``offset`` are the side distances re-expressed)."""
        x = self.deconv(feats[self.in_index])
        if not self.with_giou:
            return self.heatmap_branch(x), self.wh_branch(x), self.offset_branch(x)
        ltrb = F.relu(self.wh_branch(x)) * (self.wh_base / OUTPUT_STRIDE)      # [B, 4, H, W] in cells
        wh = ltrb[:, :2] + ltrb[:, 2:]
        offset = (ltrb[:, 2:] - ltrb[:, :2]) / 2
        return self.heatmap_branch(x), wh, offset

    def loss_by_feat(self, heatmap, wh, offset, batch_gt_instances: list, batch_img_metas: list,
                     batch_gt_instances_ignore: list = None) -> dict:
        """Targets from ``batch_gt_instances`` (xyxy input pixels) and the optional
        ``batch_gt_instances_ignore`` (one ``InstanceData`` with ``bboxes`` or None per image);
        normalisers are over the batch; losses in fp32, also under autocast.

        Returns ``loss_heatmap`` with ``loss_wh`` and ``loss_offset`` (L1 mode) or ``loss_bbox`` (TTFNet)."""
        heatmap, wh, offset = heatmap.float(), wh.float(), offset.float()
        batch, num_classes, height, width = heatmap.shape
        ignores = batch_gt_instances_ignore or [None] * batch
        targets = [self.target_generator(gt.bboxes, gt.labels, num_classes, (height, width), OUTPUT_STRIDE,
                                         ignored_bboxes=None if ign is None else ign.bboxes)
                   for gt, ign in zip(batch_gt_instances, ignores)]
        heatmap_target = torch.stack([t.heatmap for t in targets]).to(heatmap.device)
        losses = dict(loss_heatmap=self._heatmap_loss(heatmap, heatmap_target,
                                                      torch.stack([t.ignore for t in targets])))
        if self.with_giou:
            losses['loss_bbox'] = self._giou_loss(wh, offset, targets)
            return losses
        inds = torch.cat([t.inds + b * height * width for b, t in enumerate(targets)]).to(heatmap.device)
        wh_target = torch.cat([t.wh for t in targets]).to(wh.device)
        offset_target = torch.cat([t.offset for t in targets]).to(offset.device)
        num_coords = 2 * max(1, inds.numel())
        losses['loss_wh'] = self.loss_wh(self._gather(wh, inds), wh_target, avg_factor=num_coords)
        losses['loss_offset'] = self.loss_offset(self._gather(offset, inds), offset_target,
                                                 avg_factor=num_coords)
        return losses

    def _heatmap_loss(self, heatmap: torch.Tensor, target: torch.Tensor, ignore: torch.Tensor):
        """Focal loss of logits ``heatmap`` against ``target`` ``[B, C, H, W]``, divided by the number of
        objects; negatives (target < 1) at ``ignore`` pixels ``[B, H, W]`` are left out of the sum."""
        num_pos = target.eq(1).sum().clamp(min=1)
        ignore = ignore.to(heatmap.device)
        if not ignore.any():
            return self.loss_heatmap(heatmap.sigmoid(), target, avg_factor=num_pos)
        keep = ~(ignore[:, None] & target.lt(1))
        return self.loss_heatmap(heatmap.sigmoid()[keep], target[keep], avg_factor=num_pos)

    def _giou_loss(self, wh: torch.Tensor, offset: torch.Tensor, targets: list) -> torch.Tensor:
        """TTFNet's GIoU term: every pixel with a regression weight decodes its box like ``predict``
        (``(cell + offset -+ wh / 2) * 4``, xyxy input pixels) and is compared with its target box;
        normalised by the total weight of the batch (+1e-4, so no object gives an exact 0)."""
        batch, _, height, width = wh.shape
        rows, cols = torch.meshgrid(torch.arange(height, device=wh.device),
                                    torch.arange(width, device=wh.device), indexing='ij')
        cells = torch.stack([cols.flatten(), rows.flatten()], dim=1).float()         # [H*W, 2] (x, y)
        centers = cells + offset.flatten(2).transpose(1, 2)                          # [B, H*W, 2]
        sizes = wh.flatten(2).transpose(1, 2)
        boxes = (torch.cat([centers - sizes / 2, centers + sizes / 2], dim=-1) * OUTPUT_STRIDE).flatten(0, 1)
        bbox_target = torch.cat([t.bbox_target for t in targets]).to(wh.device)       # [B*H*W, 4]
        bbox_weight = torch.cat([t.bbox_weight for t in targets]).to(wh.device)       # [B*H*W]
        pos = bbox_weight > 0
        return self.loss_bbox(boxes[pos], bbox_target[pos], weight=bbox_weight[pos],
                              avg_factor=bbox_weight.sum() + 1e-4)

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
