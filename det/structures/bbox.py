"""Box helpers shared by the detectors, transforms and tools. Boxes are xyxy absolute pixels."""
import torch
from mmengine.structures import InstanceData


def rescale_to_original(bboxes: torch.Tensor, scale_factor, ori_shape) -> torch.Tensor:
    """Map ``[N, 4]`` xyxy boxes from the resized network input back to original pixels and clip them.

    ``scale_factor`` is (sx, sy) = resized / original and may differ per axis; padding sits at the
    bottom-right (``Pad``, the preprocessor's batch padding), so it adds no offset. ``ori_shape`` is (h, w).
    """
    sx, sy = float(scale_factor[0]), float(scale_factor[1])
    boxes = bboxes / bboxes.new_tensor([sx, sy, sx, sy])
    h, w = ori_shape[:2]
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
    return boxes


def instances_to_original(instances: InstanceData, metainfo: dict) -> InstanceData:
    """A copy of ``instances`` whose ``bboxes`` (network-input pixels) are in original pixels, by the
    sample's ``scale_factor`` (default (1, 1)) and ``ori_shape``."""
    out = instances.clone()
    out.bboxes = rescale_to_original(instances.bboxes, metainfo.get('scale_factor', (1.0, 1.0)),
                                     metainfo['ori_shape'])
    return out
