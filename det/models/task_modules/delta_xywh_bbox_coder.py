"""Faster R-CNN's box coding (Girshick et al. 2014, appendix C): a box relative to a reference box
(anchor or proposal) as centre shifts in units of the reference's size and log size ratios."""
import math

import torch

from det.registry import TASK_UTILS


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
        gt_bboxes, ref_bboxes = gt_bboxes.float(), ref_bboxes.float()
        wx, wy, ww, wh = self.weights
        ref_w = ref_bboxes[..., 2] - ref_bboxes[..., 0]
        ref_h = ref_bboxes[..., 3] - ref_bboxes[..., 1]
        ref_x = ref_bboxes[..., 0] + 0.5 * ref_w
        ref_y = ref_bboxes[..., 1] + 0.5 * ref_h
        gt_w = gt_bboxes[..., 2] - gt_bboxes[..., 0]
        gt_h = gt_bboxes[..., 3] - gt_bboxes[..., 1]
        gt_x = gt_bboxes[..., 0] + 0.5 * gt_w
        gt_y = gt_bboxes[..., 1] + 0.5 * gt_h
        return torch.stack([wx * (gt_x - ref_x) / ref_w, wy * (gt_y - ref_y) / ref_h,
                            ww * torch.log(gt_w / ref_w), wh * torch.log(gt_h / ref_h)], dim=-1)

    def decode(self, deltas: torch.Tensor, ref_bboxes: torch.Tensor) -> torch.Tensor:
        """``deltas`` ``[..., 4]`` and ``ref_bboxes`` broadcastable to them (e.g. ``[K, C, 4]`` class
        deltas with ``[K, 1, 4]`` proposals) -> xyxy boxes of the broadcast shape (not clipped)."""
        deltas, ref_bboxes = deltas.float(), ref_bboxes.float()
        wx, wy, ww, wh = self.weights
        widths = ref_bboxes[..., 2] - ref_bboxes[..., 0]
        heights = ref_bboxes[..., 3] - ref_bboxes[..., 1]
        ctr_x = ref_bboxes[..., 0] + 0.5 * widths
        ctr_y = ref_bboxes[..., 1] + 0.5 * heights
        dx, dy = deltas[..., 0] / wx, deltas[..., 1] / wy
        dw = torch.clamp(deltas[..., 2] / ww, max=self.clip)
        dh = torch.clamp(deltas[..., 3] / wh, max=self.clip)
        pred_x, pred_y = dx * widths + ctr_x, dy * heights + ctr_y
        half_w, half_h = 0.5 * (torch.exp(dw) * widths), 0.5 * (torch.exp(dh) * heights)
        return torch.stack([pred_x - half_w, pred_y - half_h, pred_x + half_w, pred_y + half_h], dim=-1)
