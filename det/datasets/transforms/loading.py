"""Reading images and turning dataset records into box arrays."""
import warnings

import cv2
import numpy as np

from det.registry import TRANSFORMS


def to_bgr_uint8(img: np.ndarray) -> np.ndarray:
    """Any OpenCV-decoded image -> ``[H, W, 3]`` uint8 BGR.

    Grayscale is replicated to three channels, an alpha channel is dropped, 16-bit values are mapped
    ``0..65535 -> 0..255`` (divided by 257 and rounded, so both ends map exactly).
    """
    if img.dtype == np.uint16:
        img = np.round(img / 257.0).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise TypeError(f'unsupported image dtype {img.dtype}')
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return img


@TRANSFORMS.register_module()
class LoadImageFromFile:
    """Reads ``results['img_path']`` with OpenCV and sets ``img`` ([H, W, 3] uint8 BGR), ``ori_shape``
    and ``img_shape`` (h, w).

    Args:
        on_error: 'raise' raises ``OSError`` naming the file when it is missing or cannot be decoded;
            'skip' warns naming the file and returns ``None``, so mmengine's ``BaseDataset`` samples
            another index in training (in test mode it raises).
    """

    def __init__(self, on_error: str = 'raise'):
        if on_error not in ('raise', 'skip'):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.on_error = on_error

    def __call__(self, results: dict):
        path = results['img_path']
        img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if img is None:
            message = f'cannot read image {path} (missing or not decodable)'
            if self.on_error == 'raise':
                raise OSError(message)
            warnings.warn(message + '; skipping it', stacklevel=2)
            return None
        img = to_bgr_uint8(img)
        results['img'] = img
        results['ori_shape'] = img.shape[:2]
        results['img_shape'] = img.shape[:2]
        return results

    def __repr__(self):
        return f'{type(self).__name__}(on_error={self.on_error!r})'


@TRANSFORMS.register_module()
class LoadAnnotations:
    """Record ``instances`` -> ``gt_bboxes`` float32 [N, 4] xyxy pixels, ``gt_bboxes_labels`` int64 [N],
    ``gt_ignore_flags`` bool [N] (N may be 0)."""

    def __call__(self, results: dict) -> dict:
        instances = results.get('instances', [])
        results['gt_bboxes'] = np.array([i['bbox'] for i in instances], dtype=np.float32).reshape(-1, 4)
        results['gt_bboxes_labels'] = np.array([i['bbox_label'] for i in instances], dtype=np.int64)
        results['gt_ignore_flags'] = np.array([i['ignore_flag'] for i in instances], dtype=bool)
        return results

    def __repr__(self):
        return f'{type(self).__name__}()'
