"""Resizing and padding; boxes are xyxy pixels and follow the image."""
import cv2
import numpy as np

from det.registry import TRANSFORMS


@TRANSFORMS.register_module()
class Resize:
    """Resizes ``img`` to ``scale=(w, h)`` and scales ``gt_bboxes`` with it.

    With ``keep_ratio`` the image is fitted inside (w, h) keeping its aspect ratio. Sets ``img_shape``
    (h, w) and ``scale_factor`` = (sx, sy) = resized / original, multiplied into any earlier factor so it
    always relates the current image to the original one. Boxes are clipped to the new image.
    """

    def __init__(self, scale, keep_ratio: bool = True, interpolation: int = cv2.INTER_LINEAR):
        self.scale = tuple(int(v) for v in scale)
        self.keep_ratio = keep_ratio
        self.interpolation = interpolation

    def __call__(self, results: dict) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        if self.keep_ratio:
            ratio = min(self.scale[0] / w, self.scale[1] / h)
            new_w, new_h = max(1, round(w * ratio)), max(1, round(h * ratio))
        else:
            new_w, new_h = self.scale
        results['img'] = cv2.resize(img, (new_w, new_h), interpolation=self.interpolation)
        sx, sy = new_w / w, new_h / h
        prev_sx, prev_sy = results.get('scale_factor', (1.0, 1.0))
        results['scale_factor'] = (prev_sx * sx, prev_sy * sy)
        results['img_shape'] = (new_h, new_w)
        if 'gt_bboxes' in results:
            boxes = results['gt_bboxes'] * np.array([sx, sy, sx, sy], dtype=np.float32)
            boxes[:, 0::2] = boxes[:, 0::2].clip(0, new_w)
            boxes[:, 1::2] = boxes[:, 1::2].clip(0, new_h)
            results['gt_bboxes'] = boxes
        return results

    def __repr__(self):
        return f'{type(self).__name__}(scale={self.scale}, keep_ratio={self.keep_ratio})'


@TRANSFORMS.register_module()
class Pad:
    """Pads ``img`` at the bottom and right to ``size=(w, h)`` with ``pad_val``; sets ``pad_shape`` (h, w).

    Boxes do not move. ``img_shape`` keeps the unpadded size (the valid region). Resize with
    ``keep_ratio`` followed by Pad to the same size is a letterbox.
    """

    def __init__(self, size, pad_val: int = 0):
        self.size = tuple(int(v) for v in size)
        self.pad_val = pad_val

    def __call__(self, results: dict) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        pad_w, pad_h = self.size[0] - w, self.size[1] - h
        if pad_w < 0 or pad_h < 0:
            raise ValueError(f'image of size (w={w}, h={h}) is larger than the pad size {self.size}')
        results['img'] = cv2.copyMakeBorder(img, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT,
                                            value=(self.pad_val,) * 3)
        results['pad_shape'] = (self.size[1], self.size[0])
        return results

    def __repr__(self):
        return f'{type(self).__name__}(size={self.size}, pad_val={self.pad_val})'
