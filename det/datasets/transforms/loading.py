"""Reading images and turning dataset records into box arrays."""
import os
import warnings

import numpy as np

from det.registry import TRANSFORMS

from .image_decoding import Decoded, decode

# Unreadable files already reported in this process, so each is warned about once, not once per epoch.
# The start-up data check (``det.datasets.checks``), which names them in its table, adds the files it
# found here before the data loader's worker processes fork, so the workers (re-created every epoch
# unless persistent) stay quiet about them: once per run in all.
REPORTED_UNREADABLE = set()


def read_file(path: str) -> Decoded:
    """Decode the image file at ``path`` (see :func:`~.image_decoding.decode`); a missing file is
    ``Decoded(None, reason='missing')``."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return Decoded(None, reason='missing' if not os.path.exists(path) else 'cannot be opened')
    return decode(data)


def read_image(path: str):
    """Decode the image file at ``path`` as ``[H, W, 3]`` uint8 BGR in its upright orientation (EXIF
    orientation applied; a file cut short is read as a viewer reads it), or return None when the file
    is missing or cannot be decoded (:func:`read_file` says why)."""
    return read_file(path).img


def decode_image(data: np.ndarray):
    """Decode encoded image bytes (uint8 ``[N]``) as :func:`read_image` does; None if undecodable."""
    return decode(data).img


@TRANSFORMS.register_module()
class LoadImageFromFile:
    """Reads ``results['img_path']`` (OpenCV; a file cut short as a viewer reads it, see
    :mod:`.image_decoding`) and sets ``img`` ([H, W, 3] uint8 BGR, upright: the EXIF orientation is
    applied), ``ori_shape`` and ``img_shape`` (h, w).

    Args:
        on_error: 'raise' raises ``OSError`` naming the file and the reason when it is missing or cannot
            be decoded; 'skip' warns so (once per process; not at all for files the start-up data check
            already reported, see :data:`REPORTED_UNREADABLE`) and returns ``None``, so mmengine's
            ``BaseDataset`` samples another index in training (in test mode it raises).
    """

    def __init__(self, on_error: str = 'raise'):
        if on_error not in ('raise', 'skip'):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.on_error = on_error

    def __call__(self, results: dict):
        path = results['img_path']
        decoded = read_file(path)
        img = decoded.img
        if img is None:
            message = f'cannot read image {path} ({decoded.reason})'
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
