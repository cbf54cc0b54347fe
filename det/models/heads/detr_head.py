"""DETR's prediction head and set loss (Carion et al., ECCV 2020): a class branch (C + 1 with "no object")
and a 3-layer box MLP on every decoder layer's output, one-to-one targets from the Hungarian matcher
(a TASK_UTILS module), cross-entropy + L1 + GIoU losses on the last layer and, as auxiliary losses, on
every earlier one. Denoising queries (DN-DETR), when the detector adds them, are scored against their
own ground truth without matching. With ``encoder_proposals`` the head also scores every encoder token as
a proposal (two-stage query selection, Deformable DETR / RT-DETR): its own class and box branches, and
the same set loss on all tokens, which gives the encoder and backbone a signal of where objects are.
One-to-many queries (H-DETR's hybrid matching), when the detector appends them, get the same set loss
against each image's ground truth repeated K times, so each object is matched to up to K of them.
With a sigmoid class loss (``loss_cls=dict(type='VarifocalLoss')``, RT-DETR's IoU-aware classification)
the class branches have C outputs scored by the sigmoid, no "no object" class, and each matched query's
class target is the IoU of its box with its ground truth.

Boxes inside the head are normalised (cx, cy, w, h) relative to each image's unpadded size
(``img_shape``); they enter and leave it as xyxy network-input pixels.
"""
import math

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.model import BaseModule
from torchvision.ops import box_convert

from det.models.detr import MLP, inverse_sigmoid
from det.models.utils.selection import build_selection_cfg, select_detections
from det.registry import MODELS, TASK_UTILS


def normalised_cxcywh(bboxes: torch.Tensor, img_shape) -> torch.Tensor:
    """xyxy input pixels ``[N, 4]`` -> (cx, cy, w, h) divided by the image's (w, h, w, h)."""
    h, w = img_shape[:2]
    return box_convert(bboxes.float(), 'xyxy', 'cxcywh') / bboxes.new_tensor([w, h, w, h]).float()


@MODELS.register_module()
class DETRHead(BaseModule):
    """Class and box branches over decoder outputs, with DETR's set loss.

    Args:
        num_classes: C; labels ``0..C-1``, index C is "no object" (softmax class losses only).
        embed_dims: the transformer's width D.
        num_reg_layers: layers of the box MLP (3 in the paper).
        bg_cls_weight: cross-entropy weight of the "no object" class (0.1 in the paper).
        matcher: TASK_UTILS config of the matcher (``HungarianMatcher`` with costs 1 / 5 / 2; its
            ``class_cost_type='focal'`` with a sigmoid class loss).
        loss_cls / loss_bbox / loss_iou: cross-entropy (or a loss with ``use_sigmoid``, such as
            ``VarifocalLoss``), L1 on normalised (cx, cy, w, h) and GIoU on normalised xyxy boxes; the
            box losses and a sigmoid class loss are normalised by the number of ground-truth boxes in the
            batch (averaged over processes), the cross-entropy by the sum of its weights.
        test_cfg: ``score_thr``, ``max_per_img``, ``topk`` (candidate (query, class) pairs kept by score);
            ``nms`` stays None (set prediction needs none).
        encoder_proposals: build the class and box branches that score encoder tokens
            (:meth:`encoder_forward`); the detector sets it for its two-stage ``query_type='encoder'``.

    ``forward(hidden [L, B, Q, D], references [L, B, Q, 4] or None)`` returns ``cls_logits
    [L, B, Q, K]`` (K = C + 1, or C with a sigmoid class loss) and ``boxes [L, B, Q, 4]`` normalised
    (cx, cy, w, h): ``sigmoid(MLP(hidden))``, or,
    with reference boxes (anchor queries), ``sigmoid(inverse_sigmoid(reference) + MLP(hidden))``.
    """

    default_test_cfg = dict(score_thr=0.0, nms=None, max_per_img=100, topk=100)

    def __init__(self, num_classes: int, embed_dims: int = 256, num_reg_layers: int = 3,
                 bg_cls_weight: float = 0.1, matcher: dict = None, loss_cls: dict = None,
                 loss_bbox: dict = None, loss_iou: dict = None, test_cfg: dict = None,
                 encoder_proposals: bool = False, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.num_classes, self.bg_cls_weight = num_classes, bg_cls_weight
        self.loss_cls = MODELS.build(loss_cls or dict(type='CrossEntropyLoss', loss_weight=1.0))
        self.use_sigmoid = getattr(self.loss_cls, 'use_sigmoid', False)
        self.matcher = TASK_UTILS.build(
            matcher or dict(type='HungarianMatcher', class_cost=1.0, bbox_cost=5.0, giou_cost=2.0))
        cost_type = getattr(self.matcher, 'class_cost_type', None)
        if cost_type is not None and (cost_type == 'focal') != self.use_sigmoid:
            raise ValueError(f"the matcher's class_cost_type={cost_type!r} does not fit "
                             f"{type(self.loss_cls).__name__}: use 'focal' with a sigmoid class loss "
                             "(VarifocalLoss) and 'probability' with CrossEntropyLoss")
        num_outputs = num_classes if self.use_sigmoid else num_classes + 1
        self.cls_branch = torch.nn.Linear(embed_dims, num_outputs)
        self.reg_branch = MLP(embed_dims, embed_dims, 4, num_reg_layers)
        self.enc_cls_branch = self.enc_reg_branch = None
        if encoder_proposals:
            self.enc_cls_branch = torch.nn.Linear(embed_dims, num_outputs)
            self.enc_reg_branch = MLP(embed_dims, embed_dims, 4, num_reg_layers)
        self.loss_bbox = MODELS.build(loss_bbox or dict(type='L1Loss', loss_weight=5.0))
        self.loss_iou = MODELS.build(loss_iou or dict(type='GIoULoss', loss_weight=2.0))
        self.test_cfg = build_selection_cfg(test_cfg, self.default_test_cfg)
        if self.test_cfg['nms'] is not None:
            raise ValueError('DETRHead predicts a set and runs no NMS; leave test_cfg nms=None')

    def init_weights(self):
        super().init_weights()
        if self.use_sigmoid:
            # Every class starts at probability 0.01 (RetinaNet's prior), so the many negatives do not
            # swamp the first steps' loss.
            for branch in (self.cls_branch, self.enc_cls_branch):
                if branch is not None:
                    torch.nn.init.constant_(branch.bias, -math.log(99.0))

    def class_scores(self, cls_logits: torch.Tensor) -> torch.Tensor:
        """Logits ``[..., K]`` -> per-class probabilities ``[..., C]`` (sigmoid, or softmax without the
        "no object" column)."""
        return cls_logits.float().sigmoid() if self.use_sigmoid else cls_logits.float().softmax(-1)[..., :-1]

    def box_delta(self, hidden: torch.Tensor, branch: torch.nn.Module = None) -> torch.Tensor:
        """The box MLP (``reg_branch`` unless another is given) in fp32, also under bf16 autocast: bf16's
        8-bit mantissa would round normalised coordinates (and each layer's refinement of them) by up to
        1/256 of the image."""
        with torch.autocast(hidden.device.type, enabled=False):
            return (branch or self.reg_branch)(hidden.float())

    def encoder_forward(self, memory: torch.Tensor, anchors: torch.Tensor) -> tuple:
        """Encoder tokens as proposals: ``memory [B, HW, D]`` and each token's anchor ``[B, HW, 4]``
        (normalised cx, cy, w, h) -> ``cls_logits [B, HW, K]`` and ``boxes [B, HW, 4]``, the anchor
        moved by the predicted delta in inverse-sigmoid space."""
        if self.enc_cls_branch is None:
            raise RuntimeError('this DETRHead was built without encoder_proposals=True')
        delta = self.box_delta(memory, self.enc_reg_branch)
        return self.enc_cls_branch(memory), (inverse_sigmoid(anchors.float()) + delta).sigmoid()

    def forward(self, hidden: torch.Tensor, references: torch.Tensor = None) -> tuple:
        delta = self.box_delta(hidden)
        boxes = delta.sigmoid() if references is None else (inverse_sigmoid(references) + delta).sigmoid()
        return self.cls_branch(hidden), boxes

    def loss(self, hidden, references, data_samples: list, denoising=None, proposals: tuple = None,
             one_to_many=None) -> dict:
        """Losses of the batch; ``data_samples[i].gt_instances`` are xyxy input pixels; ``denoising`` is the
        detector's ``DenoisingQueriesOutput`` when its queries sit before the matching ones;
        ``proposals`` the encoder tokens' ``det.models.detr.Proposals`` in two-stage mode;
        ``one_to_many`` the detector's ``det.models.detr.OneToMany`` when its queries sit last."""
        cls_logits, boxes = self(hidden, references)
        return self.loss_by_feat(cls_logits, boxes, [s.gt_instances for s in data_samples],
                                 [s.metainfo for s in data_samples], denoising, proposals, one_to_many)

    def loss_by_feat(self, cls_logits, boxes, batch_gt_instances: list, batch_img_metas: list,
                     denoising=None, proposals: tuple = None, one_to_many=None) -> dict:
        """``cls_logits [L, B, Q', K]``, ``boxes [L, B, Q', 4]`` (Q' = P denoising + Q matching + M
        one-to-many) -> ``loss_cls / loss_bbox / loss_iou`` of the last layer, ``d{l}.loss_*`` of layer
        l < L - 1, ``loss_dn_*`` / ``d{l}.loss_dn_*`` for the denoising queries, ``o2m.loss_*`` /
        ``d{l}.o2m.loss_*`` for the M = ``one_to_many.num_queries`` last queries (:meth:`_one_to_many_loss`)
        and ``enc.loss_*`` for the encoder tokens' ``proposals`` (``det.models.detr.Proposals``, matched
        one-to-one like the queries; padded tokens are neither matched nor scored)."""
        cls_logits, boxes = cls_logits.float(), boxes.float()
        gt_labels = [gt.labels.to(cls_logits.device) for gt in batch_gt_instances]
        gt_boxes = [normalised_cxcywh(gt.bboxes.to(boxes.device), meta['img_shape'])
                    for gt, meta in zip(batch_gt_instances, batch_img_metas)]
        num_boxes = self._num_boxes(sum(len(labels) for labels in gt_labels), cls_logits.device)
        num_dn = 0 if denoising is None else denoising.labels.shape[1]
        end = cls_logits.shape[2] - (0 if one_to_many is None else one_to_many.num_queries)
        losses = {}
        num_layers = cls_logits.shape[0]
        for layer in range(num_layers):
            prefix = '' if layer == num_layers - 1 else f'd{layer}.'
            terms = self._matching_loss(cls_logits[layer, :, num_dn:end], boxes[layer, :, num_dn:end],
                                        gt_labels, gt_boxes, num_boxes)
            if denoising is not None:
                terms.update(self._denoising_loss(cls_logits[layer, :, :num_dn], boxes[layer, :, :num_dn],
                                                  denoising, num_boxes))
            if one_to_many is not None:
                terms.update(self._one_to_many_loss(cls_logits[layer, :, end:], boxes[layer, :, end:],
                                                    gt_labels, gt_boxes, num_boxes, one_to_many))
            losses.update({prefix + name: value for name, value in terms.items()})
        if proposals is not None:
            terms = self._matching_loss(proposals.cls_logits.float(), proposals.boxes.float(), gt_labels,
                                        gt_boxes, num_boxes, proposals.valid)
            losses.update({'enc.' + name: value for name, value in terms.items()})
        return losses

    @staticmethod
    def _num_boxes(count: int, device) -> float:
        """Ground-truth boxes per process, averaged over processes, at least 1 (the reference's
        normaliser of the box losses)."""
        count = torch.tensor(float(count), device=device)
        if get_world_size() > 1:
            all_reduce(count, op='mean')
        return max(count.item(), 1.0)

    def _matching_loss(self, cls_logits, boxes, gt_labels, gt_boxes, num_boxes, valid=None) -> dict:
        """One layer's matching queries: ``cls_logits [B, Q, K]``, ``boxes [B, Q, 4]``; ``valid`` bool
        ``[B, Q]`` (None: all) leaves the others out of the matching and the class loss."""
        matches = self._match(cls_logits.detach(), boxes.detach(), gt_labels, gt_boxes, valid)
        batch_idx = torch.cat([torch.full_like(q, b) for b, (q, _) in enumerate(matches)])
        query_idx = torch.cat([q for q, _ in matches])
        matched_labels = torch.cat([gt_labels[b][g] for b, (_, g) in enumerate(matches)])
        matched = boxes[batch_idx, query_idx]
        targets = torch.cat([gt_boxes[b][g] for b, (_, g) in enumerate(matches)]).reshape(-1, 4)
        box_losses = self._box_losses(matched, targets, num_boxes)
        keep = slice(None) if valid is None else valid.flatten()
        if self.use_sigmoid:
            scores = torch.zeros_like(cls_logits)
            scores[batch_idx, query_idx, matched_labels] = self._paired_iou(matched, targets)
            return dict(loss_cls=self.loss_cls(cls_logits.flatten(0, 1)[keep], scores.flatten(0, 1)[keep],
                                               avg_factor=num_boxes), **box_losses)
        labels = torch.full(cls_logits.shape[:2], self.num_classes, dtype=torch.long,
                            device=cls_logits.device)
        labels[batch_idx, query_idx] = matched_labels
        weights = torch.where(labels == self.num_classes, self.bg_cls_weight, 1.0)
        return dict(loss_cls=self.loss_cls(cls_logits.flatten(0, 1)[keep], labels.flatten()[keep],
                                           weight=weights.flatten()[keep]), **box_losses)

    def _match(self, cls_logits, boxes, gt_labels, gt_boxes, valid) -> list:
        """The matcher's ``(query_idx, gt_idx)`` per image, over the ``valid`` queries only (image by
        image, their indices mapped back) when given."""
        if valid is None:
            return self.matcher(cls_logits, boxes, gt_labels, gt_boxes)
        matches = []
        for b, keep in enumerate(valid):
            index = keep.nonzero()[:, 0]
            (query, gt), = self.matcher(cls_logits[b:b + 1, index], boxes[b:b + 1, index], gt_labels[b:b + 1],
                                        gt_boxes[b:b + 1])
            matches.append((index[query], gt))
        return matches

    @staticmethod
    def _paired_iou(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """IoU of each pair of ``[M, 4]`` normalised (cx, cy, w, h) boxes, ``[M]``, without gradient
        (the IoU-aware class target); pair by pair, not torchvision's ``[M, M]`` matrix."""
        with torch.no_grad():
            a, b = (box_convert(boxes.float(), 'cxcywh', 'xyxy') for boxes in (pred, target))
            inter = (torch.min(a[:, 2:], b[:, 2:]) - torch.max(a[:, :2], b[:, :2])).clamp(min=0).prod(-1)
            union = (a[:, 2:] - a[:, :2]).prod(-1) + (b[:, 2:] - b[:, :2]).prod(-1) - inter
            return inter / union.clamp(min=1e-12)

    def _one_to_many_loss(self, cls_logits, boxes, gt_labels, gt_boxes, num_boxes, one_to_many) -> dict:
        """One layer's M one-to-many queries (``cls_logits [B, M, K]``, ``boxes [B, M, 4]``): the matching
        loss against every image's ground truth repeated K = ``one_to_many.repeats`` times (each object
        matched to K queries), normalised by K x the box count, times ``one_to_many.loss_weight``; keys
        ``o2m.loss_*``. An image with more than M / K objects keeps the first M of its K copies (whole
        copies first), so its objects get M // G or one more match each and the matcher sees no more
        targets than queries."""
        repeats, count = one_to_many.repeats, cls_logits.shape[1]
        labels = [labels.repeat(repeats)[:count] for labels in gt_labels]
        targets = [box.repeat(repeats, 1)[:count] for box in gt_boxes]
        terms = self._matching_loss(cls_logits, boxes, labels, targets, num_boxes * repeats)
        return {'o2m.' + name: value * one_to_many.loss_weight for name, value in terms.items()}

    def _denoising_loss(self, cls_logits, boxes, denoising, num_boxes) -> dict:
        """Denoising queries reconstruct their own ground truth (no matching); normalised per group."""
        valid = denoising.valid
        normaliser = num_boxes * denoising.num_groups
        pred, targets, labels = boxes[valid], denoising.targets[valid], denoising.labels[valid]
        losses = self._box_losses(pred, targets, normaliser)
        if self.use_sigmoid:
            scores = torch.zeros_like(cls_logits[valid])
            scores[torch.arange(len(labels), device=labels.device), labels] = self._paired_iou(pred, targets)
            loss_cls = self.loss_cls(cls_logits[valid], scores, avg_factor=normaliser)
        else:
            loss_cls = self.loss_cls(cls_logits[valid], labels)
        return dict(loss_dn_cls=loss_cls,
                    **{name.replace('loss_', 'loss_dn_'): value for name, value in losses.items()})

    def _box_losses(self, pred, target, num_boxes) -> dict:
        """L1 on normalised (cx, cy, w, h) and GIoU on normalised xyxy of paired ``[M, 4]`` boxes."""
        return dict(loss_bbox=self.loss_bbox(pred, target, avg_factor=num_boxes),
                    loss_iou=self.loss_iou(box_convert(pred, 'cxcywh', 'xyxy'),
                                           box_convert(target, 'cxcywh', 'xyxy'), avg_factor=num_boxes))

    @torch.no_grad()
    def predict(self, hidden, references, data_samples: list) -> list:
        """One ``InstanceData(bboxes [K, 4] xyxy input pixels, scores [K], labels [K])`` per image, best
        first, from the last decoder layer."""
        cls_logits, boxes = self(hidden[-1:], None if references is None else references[-1:])
        return self.predict_by_feat(cls_logits[-1], boxes[-1], [s.metainfo for s in data_samples])

    def predict_by_feat(self, cls_logits, boxes, batch_img_metas: list) -> list:
        """``cls_logits [B, Q, K]``, ``boxes [B, Q, 4]`` -> detections. Every (query, class) pair is a
        candidate scored by the class's probability (:meth:`class_scores`); the ``topk`` best above
        ``score_thr`` are kept, at most ``max_per_img``."""
        scores = self.class_scores(cls_logits)
        results = []
        for img_scores, img_boxes, meta in zip(scores, boxes.float(), batch_img_metas):
            h, w = meta['img_shape'][:2]
            xyxy = box_convert(img_boxes, 'cxcywh', 'xyxy') * img_boxes.new_tensor([w, h, w, h])
            results.append(select_detections(xyxy, img_scores, **self.test_cfg))
        return results
