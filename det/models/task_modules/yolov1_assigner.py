"""YOLO v1's responsible-predictor assignment (Redmon et al. 2016, sec. 2.2).

The grid cell that contains a ground-truth box's centre is responsible for it, and among that cell's ``B``
predictors the one whose current box has the highest IoU with the ground truth predicts it.
"""
from typing import NamedTuple

import torch
from torchvision.ops import box_iou

from det.registry import TASK_UTILS

from .centernet_targets import ignore_mask


class YOLOV1AssignResult(NamedTuple):
    """Targets of one image. Predictors are ordered cell-major: ``index = (row * S_w + col) * B + b``.

    - ``gt_inds`` long ``[S_h*S_w*B]``: index of the ground truth a predictor is responsible for, or -1;
    - ``ious`` float ``[S_h*S_w*B]``: IoU of a responsible predictor's box with its ground truth, else 0;
    - ``cls_targets`` float ``[S_h*S_w, C]``: per-cell class distribution (the mean one-hot of the ground
      truths assigned in the cell; all zero for cells without an object);
    - ``ignored`` bool ``[S_h*S_w*B]``: predictors of cells whose centre lies inside an ignored box (crowd
      / difficult), which get no no-object loss.
    """

    gt_inds: torch.Tensor
    ious: torch.Tensor
    cls_targets: torch.Tensor
    ignored: torch.Tensor


@TASK_UTILS.register_module()
class YOLOV1Assigner:
    """Assign each ground truth to one predictor of the cell holding its centre.

    Several ground truths in one cell are matched greedily by IoU: the (ground truth, predictor) pair with
    the highest IoU is taken first, then the best among the remaining free ones, and so on (ties go to the
    lower predictor index, then to the lower ground-truth index). Each of the cell's ``B`` predictors thus
    serves at most one ground truth; ground truths beyond ``B`` in one cell are left unassigned (neither
    box nor class target). The matching runs ``B`` vectorised rounds, with no per-box Python loop.

    Ignored boxes mark the predictors of every cell whose centre lies inside one (and of the cell holding
    the box's centre), by :func:`~det.models.task_modules.ignore_mask`. The region is fixed by the
    grid, not by the current predictions (an IoU rule would move it as the boxes train), so whatever
    the network predicts there costs no no-object loss; responsible predictors there train as usual.
    """

    def assign(self, pred_bboxes: torch.Tensor, gt_bboxes: torch.Tensor, gt_labels: torch.Tensor,
               grid_size: tuple, stride: int, num_classes: int, ignored_bboxes=None) -> YOLOV1AssignResult:
        """Args:
            pred_bboxes: ``[S_h*S_w*B, 4]`` xyxy input pixels, cell-major (see ``YOLOV1AssignResult``).
            gt_bboxes: ``[N, 4]`` xyxy input pixels; ``gt_labels``: long ``[N]`` in ``0..C-1``.
            grid_size: ``(S_h, S_w)``; stride: input pixels per cell; num_classes: ``C``.
            ignored_bboxes: ``[K, 4]`` xyxy input pixels of ignored regions, or None.
        """
        s_h, s_w = grid_size
        num_preds = pred_bboxes.shape[0]
        num_boxes = num_preds // (s_h * s_w)
        device = pred_bboxes.device
        gt_inds = torch.full((num_preds,), -1, dtype=torch.long, device=device)
        ious = pred_bboxes.new_zeros(num_preds)
        cls_targets = pred_bboxes.new_zeros(s_h * s_w, num_classes)
        ignored = ignore_mask(ignored_bboxes, grid_size, stride, device).flatten()
        ignored = ignored.repeat_interleave(num_boxes)                                 # [S_h*S_w*B]
        num_gts = gt_bboxes.shape[0]
        if num_gts == 0:
            return YOLOV1AssignResult(gt_inds, ious, cls_targets, ignored)

        gt_bboxes = gt_bboxes.to(pred_bboxes)
        centres = (gt_bboxes[:, :2] + gt_bboxes[:, 2:]) / 2
        col = (centres[:, 0] / stride).floor().long().clamp(0, s_w - 1)
        row = (centres[:, 1] / stride).floor().long().clamp(0, s_h - 1)
        cell = row * s_w + col                                                    # [N]
        cand = cell[:, None] * num_boxes + torch.arange(num_boxes, device=device)  # [N, B]
        # IoU of each ground truth with the B predictors of its own cell: the diagonal blocks of the
        # pairwise matrix [N, N*B].
        pair_iou = box_iou(gt_bboxes, pred_bboxes[cand.reshape(-1)]).view(num_gts, num_gts, num_boxes)
        gt_range = torch.arange(num_gts, device=device)
        pair_iou = pair_iou[gt_range, gt_range]                                   # [N, B]

        taken = torch.zeros(num_preds, dtype=torch.bool, device=device)
        done = torch.zeros(num_gts, dtype=torch.bool, device=device)
        for _ in range(num_boxes):
            free = ~taken[cand] & ~done[:, None]
            best_iou, best_b = torch.where(free, pair_iou, pair_iou.new_tensor(-1.0)).max(dim=1)
            active = best_iou >= 0
            if not active.any():
                break
            pred_idx = cand[gt_range, best_b]
            # Each predictor keeps, among the ground truths that chose it, the highest IoU (lowest index).
            top = pair_iou.new_full((num_preds,), -1.0).scatter_reduce(
                0, pred_idx[active], best_iou[active], reduce='amax')
            is_top = active & (best_iou == top[pred_idx])
            first = torch.full((num_preds,), num_gts, dtype=torch.long, device=device).scatter_reduce(
                0, pred_idx[is_top], gt_range[is_top], reduce='amin')
            won = is_top & (first[pred_idx] == gt_range)
            gt_inds[pred_idx[won]] = gt_range[won]
            ious[pred_idx[won]] = best_iou[won]
            taken[pred_idx[won]] = True
            done |= won

        labels = gt_labels.to(device).long()
        cls_targets.index_put_((cell[done], labels[done]), pair_iou.new_ones(int(done.sum())),
                               accumulate=True)
        cls_targets /= cls_targets.sum(dim=1, keepdim=True).clamp(min=1)
        return YOLOV1AssignResult(gt_inds, ious, cls_targets, ignored)
