"""What CenterNet and TTFNet share: objects as peaks of a stride-4 class heatmap, with a box regressed at
each pixel (Zhou et al., "Objects as Points", 2019; Liu et al., "Training-Time-Friendly Network", 2020).
The two heads differ only in their box branches, box targets and box loss."""
import math
from abc import abstractmethod

import torch
import torch.nn.functional as F
from torch import nn

from det.registry import MODELS, TASK_UTILS

from .base_dense_head import BaseDenseHead

OUTPUT_STRIDE = 4


def conv_branch(in_channels: int, feat_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 conv + ReLU + 1x1 conv, one per predicted quantity."""
    return nn.Sequential(nn.Conv2d(in_channels, feat_channels, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(feat_channels, out_channels, 1))


class HeatmapHead(BaseDenseHead):
    """Heatmap head on one feature level, upsampled to output stride 4; subclasses add the box part.

    Takes ``feats[in_index]`` ``[B, in_channels[in_index], H/s, W/s]``; when ``s > 4`` it is first
    upsampled by ``log2(s / 4)`` deconv blocks (ConvTranspose2d 4x4 stride 2 + BN + ReLU, as in the
    paper's ResNet variant) with ``deconv_channels`` (an int for all blocks, or one per block).
    ``forward`` returns raw maps at stride 4:

    - ``heatmap`` ``[B, C, H/4, W/4]`` logits (sigmoid at use; final bias -2.19, i.e. p = 0.1);
    - ``wh`` ``[B, 2, H/4, W/4]`` box (w, h) in output-stride cells (input pixels / 4);
    - ``offset`` ``[B, 2, H/4, W/4]`` centre offset from each pixel, in cells;

    so every head decodes ``(cell + offset -+ wh / 2) * 4`` (xyxy input pixels) and prediction, export
    and test-time augmentation are one path.

    ``loss_heatmap``: the penalty-reduced focal loss on the heatmap against the target generator's
    (``target_generator``, a TASK_UTILS config of the subclass's ``target_generator_type``) Gaussian
    bumps, divided by the number of objects. ``ignored_instances`` of the samples (crowd / difficult
    boxes): heatmap negatives at pixels inside them get zero weight, so the detector is neither rewarded
    nor punished for firing on a crowd; positives there are trained as usual.
    ``predict``: heatmap peaks (pixels equal to their 3x3 max-pool) are the candidates; ``test_cfg``
    keeps the ``topk`` best (100, as the reference) and applies no NMS unless ``nms=dict(iou_thr=...)``.

    Subclasses build their box branches in :meth:`_build_box_branches` and implement :meth:`box_maps`
    and :meth:`box_losses`.
    """

    default_test_cfg = dict(score_thr=0.0, nms=None, max_per_img=100, topk=100)
    target_generator_type = None

    def __init__(self, num_classes: int, in_channels, strides, target_generator: dict, in_index: int = 0,
                 feat_channels: int = 64, deconv_channels=256, loss_heatmap: dict = None,
                 test_cfg: dict = None, init_cfg=None):
        super().__init__(num_classes, in_channels, strides, in_index, test_cfg, init_cfg)
        num_up = math.log2(self.stride / OUTPUT_STRIDE) if self.stride >= OUTPUT_STRIDE else -1
        if num_up < 0 or num_up != int(num_up):
            raise ValueError(f'{type(self).__name__} needs a feature of stride 4 * 2**k (k >= 0) to reach '
                             f'output stride 4; strides[{in_index}] = {self.stride} '
                             f'(strides: {list(strides)})')
        self.deconv, channels = self._deconv_layers(self.in_channels, deconv_channels, int(num_up))
        self.heatmap_branch = conv_branch(channels, feat_channels, num_classes)
        self._build_box_branches(channels, feat_channels)
        self._init_branches()
        self.target_generator = TASK_UTILS.build(target_generator)
        if not isinstance(self.target_generator, self.target_generator_type):
            raise TypeError(f'{type(self).__name__} needs a {self.target_generator_type.__name__}, got '
                            f'{type(self.target_generator).__name__} (target_generator={target_generator})')
        self.loss_heatmap = MODELS.build(
            loss_heatmap or dict(type='GaussianFocalLoss', alpha=2.0, beta=4.0, loss_weight=1.0))

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

    @abstractmethod
    def _build_box_branches(self, in_channels: int, feat_channels: int):
        """Build the box branches (``conv_branch``es) on the ``in_channels`` upsampled map."""

    def _init_branches(self):
        """Reference init: small normal weights, zero biases for every ``conv_branch``; heatmap bias
        -2.19 = logit(0.1) so the many background pixels do not dominate the focal loss at the start."""
        for branch in self.children():
            if branch is not self.deconv and isinstance(branch, nn.Sequential):
                for conv in branch[0::2]:
                    nn.init.normal_(conv.weight, std=0.001)
                    nn.init.zeros_(conv.bias)
        nn.init.constant_(self.heatmap_branch[-1].bias, -2.19)

    @abstractmethod
    def box_maps(self, x: torch.Tensor) -> tuple:
        """The upsampled map ``[B, D, H/4, W/4]`` -> ``(wh, offset)`` (see the class doc)."""

    @abstractmethod
    def box_losses(self, wh: torch.Tensor, offset: torch.Tensor, targets: list) -> dict:
        """fp32 ``wh``, ``offset`` ``[B, 2, H, W]`` and the per-image targets -> the box ``loss_*``."""

    def forward(self, feats) -> tuple:
        """``feats``: tuple of maps; returns ``(heatmap, wh, offset)`` at stride 4 (see class doc)."""
        x = self.deconv(feats[self.in_index])
        return (self.heatmap_branch(x), *self.box_maps(x))

    def loss_by_feat(self, heatmap, wh, offset, batch_gt_instances: list, batch_img_metas: list,
                     batch_gt_instances_ignore: list = None) -> dict:
        """Targets from ``batch_gt_instances`` (xyxy input pixels) and the optional
        ``batch_gt_instances_ignore`` (one ``InstanceData`` with ``bboxes`` or None per image);
        normalisers are over the batch; losses in fp32, also under autocast.

        Returns ``loss_heatmap`` and the subclass's :meth:`box_losses`."""
        heatmap, wh, offset = heatmap.float(), wh.float(), offset.float()
        batch, num_classes, height, width = heatmap.shape
        ignores = batch_gt_instances_ignore or [None] * batch
        targets = [self.target_generator(gt.bboxes, gt.labels, num_classes, (height, width), OUTPUT_STRIDE,
                                         ignored_bboxes=None if ign is None else ign.bboxes)
                   for gt, ign in zip(batch_gt_instances, ignores)]
        heatmap_target = torch.stack([t.heatmap for t in targets]).to(heatmap.device)
        loss_heatmap = self._heatmap_loss(heatmap, heatmap_target, torch.stack([t.ignore for t in targets]))
        return dict(loss_heatmap=loss_heatmap, **self.box_losses(wh, offset, targets))

    def _heatmap_loss(self, heatmap: torch.Tensor, target: torch.Tensor, ignore: torch.Tensor):
        """Focal loss of logits ``heatmap`` against ``target`` ``[B, C, H, W]``, divided by the number of
        objects; negatives (target < 1) at ``ignore`` pixels ``[B, H, W]`` are left out of the sum."""
        num_pos = target.eq(1).sum().clamp(min=1)
        ignore = ignore.to(heatmap.device)
        if not ignore.any():
            return self.loss_heatmap(heatmap.sigmoid(), target, avg_factor=num_pos)
        keep = ~(ignore[:, None] & target.lt(1))
        return self.loss_heatmap(heatmap.sigmoid()[keep], target[keep], avg_factor=num_pos)

    @staticmethod
    def decode(wh: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        """``wh``, ``offset`` ``[B, 2, H, W]`` -> every pixel's box ``[B, H*W, 4]``, xyxy input pixels
        ``(cell + offset -+ wh / 2) * 4``, pixels in row-major order."""
        height, width = wh.shape[-2:]
        rows, cols = torch.meshgrid(torch.arange(height, device=wh.device),
                                    torch.arange(width, device=wh.device), indexing='ij')
        cells = torch.stack([cols.flatten(), rows.flatten()], dim=1).float()         # [H*W, 2] (x, y)
        centers = cells + offset.flatten(2).transpose(1, 2)                          # [B, H*W, 2]
        sizes = wh.flatten(2).transpose(1, 2)
        return torch.cat([centers - sizes / 2, centers + sizes / 2], dim=-1) * OUTPUT_STRIDE

    def predict_by_feat(self, heatmap, wh, offset, batch_img_metas: list) -> list:
        """Raw maps -> detections in input pixels. Every pixel is a position with its :meth:`decode`d
        box; its class scores are the heatmap's where it is a 3x3 peak, else 0 (which ``score_thr``
        0.0 removes); ``select_detections`` keeps the best by ``test_cfg``."""
        heatmap, wh, offset = heatmap.float(), wh.float(), offset.float()
        heat = heatmap.sigmoid()
        heat = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat)
        scores = heat.flatten(2).transpose(1, 2)                                      # [B, H*W, C]
        bboxes = self.decode(wh, offset)
        return [self.select_detections(bboxes[b], scores[b]) for b in range(len(scores))]
