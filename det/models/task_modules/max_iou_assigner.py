"""Max-IoU assignment of anchors or proposals to ground truth (Faster R-CNN's RPN and RoI head), with
torchvision's ``Matcher`` semantics."""
from typing import NamedTuple

import torch
from torchvision.ops import box_iou

from det.registry import TASK_UTILS


class AssignResult(NamedTuple):
    """What each of N priors (anchors or proposals) of one image is assigned to.

    - ``gt_inds`` long ``[N]``: ``k + 1`` for a positive matched to ground truth ``k``, ``0`` for a
      negative (background), ``-1`` for ignored (neither, e.g. RPN anchors with IoU in [0.3, 0.7));
    - ``max_overlaps`` float ``[N]``: each prior's best IoU with any ground truth (0 without any);
    - ``labels`` long ``[N]``: the matched ground truth's label ``0..C-1`` for positives, else -1.
    """

    gt_inds: torch.Tensor
    max_overlaps: torch.Tensor
    labels: torch.Tensor


@TASK_UTILS.register_module()
class MaxIoUAssigner:
    """Each prior takes the ground truth it overlaps most; its best IoU ``v`` decides:
    ``v >= pos_iou_thr`` positive, ``v < neg_iou_thr`` negative, otherwise ignored.

    Args:
        pos_iou_thr / neg_iou_thr: 0.7 / 0.3 for the RPN, 0.5 / 0.5 for the RoI head.
        match_low_quality: also make positive, for every ground truth, the priors whose IoU with it
            equals that ground truth's best IoU (ties included), so a box no prior covers at
            ``pos_iou_thr`` still gets one; such a prior is assigned to *its own* best ground truth
            (torchvision's ``Matcher(allow_low_quality_matches=True)``). Ground truths whose best IoU is
            not above ``min_pos_iou`` (at least > 0: a box that overlaps no prior) get no low-quality match.
        min_pos_iou: see ``match_low_quality``.

    Ground truths with no area (``x2 <= x1`` or ``y2 <= y1``) overlap nothing and are never matched.
    """

    def __init__(self, pos_iou_thr: float, neg_iou_thr: float, match_low_quality: bool = True,
                 min_pos_iou: float = 0.0):
        if neg_iou_thr > pos_iou_thr:
            raise ValueError(f'neg_iou_thr={neg_iou_thr} must not exceed pos_iou_thr={pos_iou_thr}')
        self.pos_iou_thr = pos_iou_thr
        self.neg_iou_thr = neg_iou_thr
        self.match_low_quality = match_low_quality
        self.min_pos_iou = min_pos_iou

    def assign(self, priors: torch.Tensor, gt_bboxes: torch.Tensor, gt_labels: torch.Tensor) -> AssignResult:
        """Args:
            priors: ``[N, 4]`` xyxy input pixels; gt_bboxes ``[M, 4]`` xyxy input pixels (M may be 0);
            gt_labels: long ``[M]`` in ``0..C-1``.
        """
        num_priors, device = priors.shape[0], priors.device
        labels = torch.full((num_priors,), -1, dtype=torch.long, device=device)
        if gt_bboxes.numel() == 0:
            return AssignResult(torch.zeros(num_priors, dtype=torch.long, device=device),
                                priors.new_zeros(num_priors, dtype=torch.float32), labels)
        gt_bboxes = gt_bboxes.to(device=device, dtype=torch.float32)
        overlaps = box_iou(gt_bboxes, priors.float())                         # [M, N]
        max_overlaps, argmax = overlaps.max(dim=0)                            # best ground truth per prior
        gt_inds = argmax + 1
        gt_inds[max_overlaps < self.pos_iou_thr] = -1
        gt_inds[max_overlaps < self.neg_iou_thr] = 0
        if self.match_low_quality:
            best_per_gt = overlaps.max(dim=1).values                          # [M]
            eligible = (best_per_gt > self.min_pos_iou) & (best_per_gt > 0)
            _, prior_inds = torch.where((overlaps == best_per_gt[:, None]) & eligible[:, None])
            gt_inds[prior_inds] = argmax[prior_inds] + 1
        positive = gt_inds > 0
        labels[positive] = gt_labels.to(device).long()[gt_inds[positive] - 1]
        return AssignResult(gt_inds, max_overlaps, labels)
