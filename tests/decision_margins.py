"""How far a test's discrete decisions (top-k, thresholds, NMS, a cut, an assignment) are from flipping.

A test that compares det with a reference after such a decision is only as robust as these margins: two
float32 implementations of the same network differ by a few rounding errors, and where a score or an IoU
sits closer than that to a boundary, another CPU's kernels can decide it the other way (issue 25: a
different box survived NMS on an AMD EPYC). Tests assert their margins against a bound that they
justify, so a comparison that is a matter of ties fails as such rather than on one machine only.
"""
import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torchvision.ops import box_iou


def cut_margin(values: torch.Tensor, n: int) -> float:
    """Gap between the ``n``-th and the ``n + 1``-th largest of ``values`` [N]: how far keeping the top
    ``n`` is from keeping another set. ``inf`` when there are at most ``n`` values (nothing is cut)."""
    if values.numel() <= n:
        return float('inf')
    top = values.flatten().topk(n + 1).values
    return (top[n - 1] - top[n]).item()


def threshold_margin(values: torch.Tensor, threshold: float) -> float:
    """Smallest distance of ``values`` to ``threshold`` (``inf`` for no values)."""
    return (values - threshold).abs().min().item() if values.numel() else float('inf')


def nms_margins(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor,
                iou_thr: float) -> tuple:
    """Margins of ``torchvision.ops.batched_nms(boxes, scores, groups, iou_thr)``: the smallest
    ``|IoU - iou_thr|`` over pairs of one group (whether a pair overlaps), and the smallest score gap
    over pairs of one group that overlap (``IoU > iou_thr``: which of the two suppresses the other).
    Pairs with exactly equal scores are left out of the gap: such ties come from identical computations
    (e.g. RoIAlign pools every RoI under one cell from the same corner alike), and NMS breaks them by
    the candidates' order; the caller argues that the compared side ties them too, in the same order.
    ``boxes`` [N, 4] xyxy, ``scores`` [N], ``groups`` [N] int. ``inf`` where there is no such pair."""
    iou = box_iou(boxes, boxes)
    pairs = torch.triu(groups[:, None] == groups[None], diagonal=1)
    overlapping = pairs & (iou > iou_thr) & (scores[:, None] != scores[None])
    iou_margin = (iou[pairs] - iou_thr).abs().min().item() if pairs.any() else float('inf')
    gaps = (scores[:, None] - scores[None]).abs()[overlapping]
    return iou_margin, (gaps.min().item() if gaps.numel() else float('inf'))


def min_side_margin(boxes: torch.Tensor, min_size: float) -> float:
    """Smallest distance of a box's shorter side to ``remove_small_boxes``' ``min_size``, over boxes
    [N, 4] xyxy with a side above 0 (a box clipped to nothing has sides of exactly 0 on any CPU)."""
    side = torch.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    return threshold_margin(side[side > 0], min_size)


def assignment_margin(cost: torch.Tensor) -> float:
    """How much more than the optimal assignment (scipy's ``linear_sum_assignment`` on ``cost`` [Q, G],
    Q >= G) the cheapest different one costs: any other assignment lacks one of the optimal pairs, so
    this is the least increase over forbidding each optimal pair in turn. ``inf`` without an
    alternative (no pair, or one query for one target)."""
    cost = cost.detach().double().cpu().numpy()
    if cost.shape[1] == 0 or cost.shape == (1, 1):
        return float('inf')
    rows, cols = linear_sum_assignment(cost)
    best, margin = cost[rows, cols].sum(), float('inf')
    for row, col in zip(rows, cols):
        forbidden = cost.copy()
        forbidden[row, col] = cost.max() + cost.shape[1] * (np.ptp(cost) + 1)
        other_rows, other_cols = linear_sum_assignment(forbidden)
        margin = min(margin, forbidden[other_rows, other_cols].sum() - best)
    return margin
