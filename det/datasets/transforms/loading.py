"""Reading images and turning dataset records into box arrays."""
import os
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


# OpenCV's flag for "any bit depth, any channel count, EXIF orientation applied". IMREAD_UNCHANGED would
# keep 16 bits and alpha too, but it also skips the EXIF rotation, so a phone photo stored sideways with
# an orientation tag would come out rotated against its annotations (which are made on the upright view).
_IMREAD_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR

# Unreadable files already reported in this process, so each is warned about once, not once per epoch.
# The start-up data check (``det.datasets.checks``), which names them in its table, adds the files it
# found here before the data loader's worker processes fork, so the workers (re-created every epoch
# unless persistent) stay quiet about them: once per run in all.
REPORTED_UNREADABLE = set()


def read_image(path: str):
    """Decode the image file at ``path`` as ``[H, W, 3]`` uint8 BGR in its upright orientation (EXIF
    orientation applied), or return None when the file is missing or cannot be decoded."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    return decode_image(data)


def decode_image(data: np.ndarray):
    """Decode encoded image bytes (uint8 ``[N]``) as :func:`read_image` does; None if undecodable."""
    if data.size == 0:
        return None
    img = cv2.imdecode(data, _IMREAD_FLAGS)
    return None if img is None else to_bgr_uint8(img)


@TRANSFORMS.register_module()
class LoadImageFromFile:
    """Reads ``results['img_path']`` with OpenCV and sets ``img`` ([H, W, 3] uint8 BGR, upright: a JPEG's
    EXIF orientation is applied), ``ori_shape`` and ``img_shape`` (h, w).

    Args:
        on_error: 'raise' raises ``OSError`` naming the file when it is missing or cannot be decoded;
            'skip' warns naming the file (once per process; not at all for files the start-up data
            check already reported, see :data:`REPORTED_UNREADABLE`) and returns ``None``, so
            mmengine's ``BaseDataset`` samples another index in training (in test mode it raises).
    """

    def __init__(self, on_error: str = 'raise'):
        if on_error not in ('raise', 'skip'):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.on_error = on_error

    def __call__(self, results: dict):
        path = results['img_path']
        img = read_image(path)
        if img is None:
            reason = 'missing' if not os.path.exists(path) else 'not decodable'
            message = f'cannot read image {path} ({reason})'
            if self.on_error == 'raise':
                raise OSError(message)
            if path not in REPORTED_UNREADABLE:
                REPORTED_UNREADABLE.add(path)
                warnings.warn(message + '; skipping it (not warned again by this process)', stacklevel=2)
            return None
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
