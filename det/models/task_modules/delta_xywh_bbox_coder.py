"""Faster R-CNN's box coding (Girshick et al. 2014, appendix C): a box relative to a reference box
(anchor or proposal) as centre shifts in units of the reference's size and log size ratios."""
import math

import torch

from det.registry import TASK_UTILS


def _centres_sizes(bboxes: torch.Tensor) -> tuple:
    """xyxy ``[..., 4]`` -> float32 centre x, centre y, width, height ``[...]`` each, computed as
    torchvision's ``BoxCoder`` does (``x1 + 0.5 * w``), so encodings match it to the last bit."""
    bboxes = bboxes.float()
    widths = bboxes[..., 2] - bboxes[..., 0]
    heights = bboxes[..., 3] - bboxes[..., 1]
    return bboxes[..., 0] + 0.5 * widths, bboxes[..., 1] + 0.5 * heights, widths, heights


@TASK_UTILS.register_module()
class DeltaXYWHBBoxCoder:
    """``encode(gt, ref) -> (dx, dy, dw, dh)`` and its inverse ``decode(deltas, ref) -> boxes``:

    ``dx = wx * (gx - rx) / rw``, ``dy = wy * (gy - ry) / rh``, ``dw = ww * log(gw / rw)``,
    ``dh = wh * log(gh / rh)`` with ``(x, y)`` box centres and ``(w, h)`` sizes (``x2 - x1``, no +1).

    Args:
        weights: ``(wx, wy, ww, wh)``; torchvision's RPN uses (1, 1, 1, 1) and its RoI head
            (10, 10, 5, 5), which scale the targets to unit-ish variance.
        clip: ``dw`` and ``dh`` are clamped to at most this (``log(1000 / 16)``) before ``exp`` in
            decoding, so one wild prediction cannot overflow.

    Boxes are xyxy input pixels; computed in float32 whatever the input dtype (the arithmetic and
    operation order are torchvision's ``BoxCoder``).
    """

    def __init__(self, weights=(1.0, 1.0, 1.0, 1.0), clip: float = math.log(1000.0 / 16)):
        if len(weights) != 4:
            raise ValueError(f'weights must be (wx, wy, ww, wh), got {weights}')
        self.weights = tuple(float(w) for w in weights)
        self.clip = clip

    def encode(self, gt_bboxes: torch.Tensor, ref_bboxes: torch.Tensor) -> torch.Tensor:
        """``gt_bboxes`` and ``ref_bboxes`` ``[..., 4]`` xyxy (same shape) -> deltas ``[..., 4]``.
        Reference boxes need positive width and height."""
        ref_x, ref_y, ref_w, ref_h = _centres_sizes(ref_bboxes)
        gt_x, gt_y, gt_w, gt_h = _centres_sizes(gt_bboxes)
        wx, wy, ww, wh = self.weights
        return torch.stack([wx * (gt_x - ref_x) / ref_w, wy * (gt_y - ref_y) / ref_h,
                            ww * torch.log(gt_w / ref_w), wh * torch.log(gt_h / ref_h)], dim=-1)

    def decode(self, deltas: torch.Tensor, ref_bboxes: torch.Tensor) -> torch.Tensor:
        """``deltas`` ``[..., 4]`` and ``ref_bboxes`` broadcastable to them (e.g. ``[K, C, 4]`` class
        deltas with ``[K, 1, 4]`` proposals) -> xyxy boxes of the broadcast shape (not clipped)."""
        deltas = deltas.float()
        ctr_x, ctr_y, widths, heights = _centres_sizes(ref_bboxes)
        wx, wy, ww, wh = self.weights
        dx, dy = deltas[..., 0] / wx, deltas[..., 1] / wy
        dw = torch.clamp(deltas[..., 2] / ww, max=self.clip)
        dh = torch.clamp(deltas[..., 3] / wh, max=self.clip)
        pred_x, pred_y = dx * widths + ctr_x, dy * heights + ctr_y
        half_w, half_h = 0.5 * (torch.exp(dw) * widths), 0.5 * (torch.exp(dh) * heights)
        return torch.stack([pred_x - half_w, pred_y - half_h, pred_x + half_w, pred_y + half_h], dim=-1)
