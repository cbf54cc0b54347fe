"""The second stage of a two-stage detector: RoI features of the proposals -> fully connected layers ->
per-class scores (with a background class) and class-specific box deltas (Fast R-CNN, Girshick 2015).
Faster R-CNN's head (two FC 1024, ``RoIAlignExtractor``) and ThunderNet's light head (one FC 1024,
``PSRoIAlignExtractor``) are configs of this one class."""
import torch
from mmengine.model import BaseModule
from torch import nn
from torchvision.ops import clip_boxes_to_image

from det.models.utils.selection import build_selection_cfg, select_detections
from det.registry import MODELS, TASK_UTILS


def proposals_to_rois(bboxes: list) -> torch.Tensor:
    """Per-image ``[K_i, 4]`` xyxy boxes -> ``[sum K_i, 5]`` rows ``(image index, x1, y1, x2, y2)``."""
    return torch.cat([torch.cat([b.new_full((len(b), 1), i), b], dim=1) for i, b in enumerate(bboxes)])


@MODELS.register_module()
class StandardRoIHead(BaseModule):
    """RoI extractor -> ``num_fcs`` x (Linear ``fc_channels`` + ReLU) -> ``fc_cls`` (C + 1 logits, the
    background last) and ``fc_reg`` (4C deltas, 4 per class, none for the background).

    Args:
        num_classes: C (labels ``0..C-1``; index C of the logits is the background).
        in_channels / strides: of every level the detector passes (filled in from the neck, or SAM).
        roi_extractor: MODELS config of ``RoIAlignExtractor`` / ``PSRoIAlignExtractor``.
        assigner / sampler / bbox_coder: TASK_UTILS configs; torchvision's defaults: IoU 0.5 / 0.5 without
            low-quality matches, 512 RoIs at 0.25 positives, deltas with weights (10, 10, 5, 5).
        add_gt_as_proposals: in training, the ground-truth boxes join each image's proposals (so every
            object has a perfect RoI from the first step).
        loss_cls: softmax cross entropy over C + 1 classes, mean over the sampled RoIs; loss_bbox:
            smooth L1 (beta 1/9) on the positives' deltas of their class, divided by the number of
            sampled RoIs (torchvision's normalisation).
        test_cfg: ``score_thr`` 0.05 (softmax score, kept when >), class-wise ``nms`` 0.5,
            ``max_per_img`` 100, ``topk`` (None: all) candidates (RoI, class) by score before NMS.
        min_bbox_size: detections narrower or lower than this (input pixels) are dropped.
    """

    default_test_cfg = dict(score_thr=0.05, nms=dict(iou_thr=0.5), max_per_img=100, topk=None)

    def __init__(self, num_classes: int, in_channels, strides, roi_extractor: dict, num_fcs: int = 2,
                 fc_channels: int = 1024, assigner: dict = None, sampler: dict = None,
                 bbox_coder: dict = None, add_gt_as_proposals: bool = True, loss_cls: dict = None,
                 loss_bbox: dict = None,
                 test_cfg: dict = None, min_bbox_size: float = 1e-2, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if num_fcs < 1:
            raise ValueError(f'num_fcs must be >= 1, got {num_fcs}')
        self.num_classes = num_classes
        self.roi_extractor = MODELS.build(dict(roi_extractor, in_channels=in_channels, strides=strides))
        fcs, channels = [], self.roi_extractor.out_channels
        for _ in range(num_fcs):
            fcs.append(nn.Linear(channels, fc_channels))
            channels = fc_channels
        self.fcs = nn.ModuleList(fcs)
        self.fc_cls = nn.Linear(fc_channels, num_classes + 1)
        self.fc_reg = nn.Linear(fc_channels, 4 * num_classes)
        nn.init.normal_(self.fc_cls.weight, std=0.01)
        nn.init.normal_(self.fc_reg.weight, std=0.001)
        nn.init.zeros_(self.fc_cls.bias)
        nn.init.zeros_(self.fc_reg.bias)
        self.assigner = TASK_UTILS.build(assigner or dict(
            type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, match_low_quality=False))
        self.sampler = TASK_UTILS.build(sampler or dict(type='RandomSampler', num=512, pos_fraction=0.25))
        self.bbox_coder = TASK_UTILS.build(
            bbox_coder or dict(type='DeltaXYWHBBoxCoder', weights=(10.0, 10.0, 5.0, 5.0)))
        self.add_gt_as_proposals = add_gt_as_proposals
        self.loss_cls = MODELS.build(loss_cls or dict(type='CrossEntropyLoss', loss_weight=1.0))
        self.loss_bbox = MODELS.build(loss_bbox or dict(type='SmoothL1Loss', beta=1 / 9, loss_weight=1.0))
        self.test_cfg = build_selection_cfg(test_cfg, self.default_test_cfg)
        self.min_bbox_size = min_bbox_size

    def forward(self, feats, rois: torch.Tensor) -> tuple:
        """``feats``: tuple of maps; ``rois`` ``[K, 5]`` (image index, xyxy input pixels) ->
        ``(cls_score [K, C + 1] logits, bbox_pred [K, 4C] deltas)``."""
        x = self.roi_extractor(feats, rois).flatten(1)
        for fc in self.fcs:
            x = torch.relu(fc(x))
        return self.fc_cls(x), self.fc_reg(x)

    def sample(self, proposals: list, batch_gt_instances: list) -> tuple:
        """Training RoIs: per image the proposals (plus the ground truth), assigned and sampled.

        Returns ``rois [K, 5]``, ``labels`` long ``[K]`` (C for background) and, for the P positives,
        their indices into the K RoIs ``[P]`` and encoded targets ``[P, 4]``. RoIs keep their order
        within an image (proposals first, then ground truth), as torchvision's."""
        boxes, labels, pos_inds, targets, offset = [], [], [], [], 0
        for props, gt in zip(proposals, batch_gt_instances):
            gt_bboxes = gt.bboxes.to(props.bboxes).float()
            priors = props.bboxes.float()
            if self.add_gt_as_proposals:
                priors = torch.cat([priors, gt_bboxes])
            assign = self.assigner.assign(priors, gt_bboxes, gt.labels)
            keep = torch.where(self.sampler.sample(assign).mask)[0]
            gt_inds = assign.gt_inds[keep]
            pos = torch.where(gt_inds > 0)[0]
            boxes.append(priors[keep])
            labels.append(torch.where(gt_inds > 0, assign.labels[keep], self.num_classes))
            pos_inds.append(pos + offset)
            targets.append(self.bbox_coder.encode(gt_bboxes[gt_inds[pos] - 1], priors[keep][pos]))
            offset += len(keep)
        return proposals_to_rois(boxes), torch.cat(labels), torch.cat(pos_inds), torch.cat(targets)

    def loss(self, feats, proposals: list, batch_gt_instances: list) -> dict:
        """``proposals``: per image ``InstanceData(bboxes [P_i, 4])`` xyxy input pixels (no gradient);
        ``batch_gt_instances``: xyxy input-pixel boxes and labels. Returns ``loss_cls`` and ``loss_bbox``;
        without ground truth every RoI is background and ``loss_bbox`` is exactly 0."""
        rois, labels, pos_inds, targets = self.sample(proposals, batch_gt_instances)
        cls_score, bbox_pred = self(feats, rois)
        cls_score, bbox_pred = cls_score.float(), bbox_pred.float()
        num_rois = max(1, rois.shape[0])
        pos_labels = labels[pos_inds]
        pos_deltas = bbox_pred.view(-1, self.num_classes, 4)[pos_inds, pos_labels]
        return dict(loss_cls=self.loss_cls(cls_score, labels, avg_factor=num_rois),
                    loss_bbox=self.loss_bbox(pos_deltas, targets, avg_factor=num_rois))

    @torch.no_grad()
    def predict(self, feats, proposals: list, batch_img_metas: list) -> list:
        """One ``InstanceData(bboxes [K, 4] xyxy input pixels, scores [K], labels [K])`` per image, best
        first: every (proposal, class) pair is a candidate with the class's softmax score and the box
        its deltas decode to (clipped to ``img_shape``), filtered by ``test_cfg``."""
        cls_score, bbox_pred = self(feats, proposals_to_rois([p.bboxes for p in proposals]))
        return self.predict_by_feat(cls_score, bbox_pred, proposals, batch_img_metas)

    def predict_by_feat(self, cls_score, bbox_pred, proposals: list, batch_img_metas: list) -> list:
        """Raw outputs of the concatenated proposals of the batch -> detections per image."""
        cfg, num_classes = self.test_cfg, self.num_classes
        scores = torch.softmax(cls_score.float(), dim=-1)[:, :num_classes]
        counts = [len(p.bboxes) for p in proposals]
        prop_boxes = torch.cat([p.bboxes for p in proposals]).float()
        boxes = self.bbox_coder.decode(bbox_pred.view(-1, num_classes, 4), prop_boxes[:, None])
        results = []
        for score, box, meta in zip(scores.split(counts), boxes.split(counts), batch_img_metas):
            box = clip_boxes_to_image(box, tuple(meta['img_shape'][:2]))                # [K, C, 4]
            results.append(select_detections(box, score, min_bbox_size=self.min_bbox_size, **cfg))
        return results
