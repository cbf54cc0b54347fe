"""Box helpers shared by heads, transforms and tools. Boxes are xyxy absolute pixels unless named."""
import torch


def rescale_to_original(bboxes: torch.Tensor, scale_factor, ori_shape) -> torch.Tensor:
    """Map ``[N, 4]`` xyxy boxes from the resized input back to original pixels and clip them.

    ``scale_factor`` is (sx, sy) = resized / original; padding sits at the bottom-right, so no offset.
    ``ori_shape`` is (h, w).
    """
    sx, sy = float(scale_factor[0]), float(scale_factor[1])
    boxes = bboxes / bboxes.new_tensor([sx, sy, sx, sy])
    h, w = ori_shape[:2]
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
    return boxes
