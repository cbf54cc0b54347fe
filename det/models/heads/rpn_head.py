"""Region Proposal Network (Ren et al., "Faster R-CNN", NeurIPS 2015): objectness and box deltas for
every anchor of every level, decoded into class-agnostic proposals for the RoI head. Layer for layer and
step for step torchvision's ``RPNHead`` + ``RegionProposalNetwork``; with ``depthwise_kernel`` it is
ThunderNet's light RPN (Qin et al. 2019)."""
import torch
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import nn
from torchvision.ops import clip_boxes_to_image

from det.models.utils.selection import build_selection_cfg, select_detections
from det.registry import MODELS, TASK_UTILS

# Proposal settings, the same keys as every head's test_cfg (det.models.utils.selection): ``topk``
# anchors kept per level by objectness before NMS, ``score_thr`` on the objectness probability (kept when
# >; torchvision keeps >= 0.0, the same proposals unless a sigmoid underflows to exactly 0), ``nms``
# within each level (boxes of different levels never suppress each other), ``max_per_img`` proposals.
RPN_TRAIN_CFG = dict(topk=2000, max_per_img=2000, nms=dict(iou_thr=0.7), score_thr=0.0)
RPN_TEST_CFG = dict(topk=1000, max_per_img=1000, nms=dict(iou_thr=0.7), score_thr=0.0)


@MODELS.register_module()
class RPNHead(BaseModule):
    """Shared conv + ReLU, then 1x1 objectness (A per position) and 1x1 deltas (4A), on every level.

    Args:
        in_channels / strides: of every level the detector passes (filled in from the neck); the levels
            read (``in_index``: one level or a sequence of them, default all) must have equal channels.
        feat_channels: channels of the shared conv (default ``in_channels``, torchvision's choice).
        depthwise_kernel: None: the shared conv is a 3x3 conv (Faster R-CNN); k: a k x k depthwise conv
            followed by a 1x1 conv to ``feat_channels`` (ThunderNet: k = 5, 256 channels).
        anchor_generator: TASK_UTILS config of an ``AnchorGenerator`` (strides filled in).
        assigner / sampler / bbox_coder: TASK_UTILS configs; torchvision's defaults: IoU 0.7 / 0.3 with
            low-quality matches, 256 anchors at 0.5 positives, deltas with weights (1, 1, 1, 1).
        loss_cls: objectness loss on logits (BCE); loss_bbox: delta loss (smooth L1, beta 1/9). Both are
            normalised by the number of sampled anchors in the batch, as torchvision.
        train_cfg / test_cfg: proposal settings in training (``RPN_TRAIN_CFG``: 2000 / 2000) and at test
            (``RPN_TEST_CFG``: 1000 / 1000), NMS 0.7 for both.
        min_bbox_size: proposals narrower or lower than this (input pixels) are dropped.

    ``forward(feats)`` returns ``(cls_scores, bbox_preds, rpn_feats)``, lists over the levels read of
    ``[B, A, H, W]`` logits, ``[B, 4A, H, W]`` deltas (channel ``4a + k``: coordinate k of anchor a) and
    the shared conv's ``[B, feat_channels, H, W]`` output (ThunderNet's SAM reads it).
    """

    def __init__(self, in_channels, strides, anchor_generator: dict, feat_channels: int = None,
                 depthwise_kernel: int = None, in_index=None, assigner: dict = None, sampler: dict = None,
                 bbox_coder: dict = None, loss_cls: dict = None, loss_bbox: dict = None,
                 train_cfg: dict = None, test_cfg: dict = None, min_bbox_size: float = 1e-3, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if in_index is None:
            in_index = range(len(strides))
        in_index = [in_index] if isinstance(in_index, int) else list(in_index)
        if not in_index or any(not -len(strides) <= i < len(strides) for i in in_index):
            raise IndexError(f'in_index {in_index} must pick levels of the {len(strides)} given')
        self.in_index = [i % len(strides) for i in in_index]
        channels = {int(in_channels[i]) for i in self.in_index}
        if len(channels) != 1:
            raise ValueError(f'the RPN shares one conv across levels; levels {self.in_index} have '
                             f'channels {[in_channels[i] for i in self.in_index]}')
        in_ch = channels.pop()
        self.feat_channels = feat_channels or in_ch
        self.anchor_generator = TASK_UTILS.build(
            dict(anchor_generator, strides=[strides[i] for i in self.in_index]))
        num_anchors = set(self.anchor_generator.num_base_anchors)
        if len(num_anchors) != 1:
            raise ValueError('the RPN shares its 1x1 convs across levels, so every level needs the same '
                             f'number of anchors; got {self.anchor_generator.num_base_anchors}')
        self.num_anchors = num_anchors.pop()
        if depthwise_kernel is None:
            self.rpn_conv = nn.Conv2d(in_ch, self.feat_channels, 3, padding=1)
        else:
            self.rpn_conv = nn.Sequential(
                nn.Conv2d(in_ch, in_ch, depthwise_kernel, padding=depthwise_kernel // 2, groups=in_ch),
                nn.Conv2d(in_ch, self.feat_channels, 1))
        self.rpn_cls = nn.Conv2d(self.feat_channels, self.num_anchors, 1)
        self.rpn_reg = nn.Conv2d(self.feat_channels, 4 * self.num_anchors, 1)
        for conv in self.modules():
            if isinstance(conv, nn.Conv2d):  # torchvision's init
                nn.init.normal_(conv.weight, std=0.01)
                nn.init.zeros_(conv.bias)
        self.assigner = TASK_UTILS.build(assigner or dict(
            type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3, match_low_quality=True))
        self.sampler = TASK_UTILS.build(sampler or dict(type='RandomSampler', num=256, pos_fraction=0.5))
        self.bbox_coder = TASK_UTILS.build(bbox_coder or dict(type='DeltaXYWHBBoxCoder'))
        self.loss_cls = MODELS.build(loss_cls or dict(type='BinaryCrossEntropyLoss', loss_weight=1.0))
        self.loss_bbox = MODELS.build(loss_bbox or dict(type='SmoothL1Loss', beta=1 / 9, loss_weight=1.0))
        self.train_cfg = build_selection_cfg(train_cfg, RPN_TRAIN_CFG, 'train_cfg')
        self.test_cfg = build_selection_cfg(test_cfg, RPN_TEST_CFG)
        if self.train_cfg['nms'] is None or self.test_cfg['nms'] is None:
            raise ValueError('the RPN needs nms=dict(iou_thr=...) in train_cfg and test_cfg')
        self.min_bbox_size = min_bbox_size

    def forward(self, feats) -> tuple:
        """``feats``: the neck's tuple; see the class doc for the outputs."""
        cls_scores, bbox_preds, rpn_feats = [], [], []
        for i in self.in_index:
            x = torch.relu(self.rpn_conv(feats[i]))
            rpn_feats.append(x)
            cls_scores.append(self.rpn_cls(x))
            bbox_preds.append(self.rpn_reg(x))
        return cls_scores, bbox_preds, rpn_feats

    def _flatten(self, cls_scores, bbox_preds) -> tuple:
        """Levels concatenated in anchor order: objectness ``[B, N]`` and deltas ``[B, N, 4]`` (float32)
        with ``N = sum H*W*A``, and the anchors ``[N, 4]`` and per-level counts."""
        batch = cls_scores[0].shape[0]
        objectness = torch.cat([c.float().permute(0, 2, 3, 1).reshape(batch, -1) for c in cls_scores], 1)
        deltas = torch.cat([r.float().view(batch, self.num_anchors, 4, *r.shape[-2:]).permute(0, 3, 4, 1, 2)
                            .reshape(batch, -1, 4) for r in bbox_preds], 1)
        anchors = self.anchor_generator.grid_anchors([c.shape[-2:] for c in cls_scores], cls_scores[0].device)
        return objectness, deltas, torch.cat(anchors).float(), [len(a) for a in anchors]

    def loss_by_feat(self, cls_scores, bbox_preds, batch_gt_instances: list, batch_img_metas: list) -> dict:
        """``loss_rpn_cls`` (BCE over the sampled anchors) and ``loss_rpn_bbox`` (smooth L1 on the
        positives' deltas), both divided by the number of sampled anchors in the batch. Without ground
        truth every sampled anchor is a negative, so ``loss_rpn_bbox`` is exactly 0."""
        objectness, deltas, anchors, _ = self._flatten(cls_scores, bbox_preds)
        logits, targets, pos_deltas, pos_targets = [], [], [], []
        for b, gt in enumerate(batch_gt_instances):
            assign = self.assigner.assign(anchors, gt.bboxes, gt.labels)
            sampled = self.sampler.sample(assign)
            logits.append(objectness[b][sampled.mask])
            targets.append((assign.gt_inds[sampled.mask] > 0).float())
            pos = torch.where(sampled.mask & (assign.gt_inds > 0))[0]
            pos_deltas.append(deltas[b][pos])
            matched = gt.bboxes.to(anchors)[assign.gt_inds[pos] - 1]
            pos_targets.append(self.bbox_coder.encode(matched, anchors[pos]))
        logits, targets = torch.cat(logits), torch.cat(targets)
        num_sampled = max(1, logits.numel())
        return dict(loss_rpn_cls=self.loss_cls(logits, targets, avg_factor=num_sampled),
                    loss_rpn_bbox=self.loss_bbox(torch.cat(pos_deltas), torch.cat(pos_targets),
                                                 avg_factor=num_sampled))

    @torch.no_grad()
    def predict_by_feat(self, cls_scores, bbox_preds, batch_img_metas: list, cfg: dict = None) -> list:
        """Proposals per image: ``InstanceData(bboxes [P, 4] xyxy input pixels clipped to the image's
        ``img_shape``, scores [P] objectness probabilities)``, best first, ``P <= max_per_img``.

        ``cfg`` is ``self.train_cfg`` or ``self.test_cfg`` (the detector passes the one of its mode)."""
        cfg = cfg or self.test_cfg
        objectness, deltas, anchors, counts = self._flatten(cls_scores, bbox_preds)
        batch = objectness.shape[0]
        # The topk anchors of each level by objectness logits, before decoding (torchvision's order: the
        # logits rank saturated probabilities that the sigmoid would tie).
        top_inds, levels, start = [], [], 0
        for level, count in enumerate(counts):
            k = min(cfg['topk'], count)
            top_inds.append(objectness[:, start:start + count].topk(k, dim=1).indices + start)
            levels.append(torch.full((k,), level, dtype=torch.long, device=objectness.device))
            start += count
        top_inds, levels = torch.cat(top_inds, 1), torch.cat(levels)
        rows = torch.arange(batch, device=objectness.device)[:, None]
        scores = torch.sigmoid(objectness[rows, top_inds])
        boxes = self.bbox_coder.decode(deltas[rows, top_inds], anchors[top_inds])
        results = []
        for b, meta in enumerate(batch_img_metas):
            # The level stands as the label, so NMS runs within a level; ``topk`` was taken above.
            selected = select_detections(
                clip_boxes_to_image(boxes[b], tuple(meta['img_shape'][:2])), scores[b], levels,
                score_thr=cfg['score_thr'], nms=cfg['nms'], max_per_img=cfg['max_per_img'],
                min_bbox_size=self.min_bbox_size)
            results.append(InstanceData(bboxes=selected.bboxes, scores=selected.scores))
        return results
