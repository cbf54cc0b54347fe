"""Reading images and turning dataset records into box arrays."""
import os
import warnings

import numpy as np

from det.registry import TRANSFORMS

from .image_decoding import REDUCE_FLAGS, Decoded, decode, header_size

# Unreadable files already reported in this process, so each is warned about once, not once per epoch.
# The start-up data check (``det.datasets.checks``), which names them in its table, adds the files it
# found here before the data loader's worker processes fork, so the workers (re-created every epoch
# unless persistent) stay quiet about them: once per run in all.
REPORTED_UNREADABLE = set()


def read_file(path: str, decode_size=None) -> tuple:
    """Decode the image file at ``path`` (see :func:`~.image_decoding.decode`): ``(Decoded, (h, w))``,
    the second the file's full upright size. A missing file is ``Decoded(None, reason='missing')``.

    With ``decode_size=(w, h)`` the image is decoded at the smallest of 1, 1/2, 1/4, 1/8 of its size
    that still covers what a resize fitting it into ``(w, h)`` with its aspect ratio kept makes of it
    (the full size, from the header, is then returned beside it; a file whose header does not parse is
    decoded in full)."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return Decoded(None, reason='missing' if not os.path.exists(path) else 'cannot be opened'), None
    full = header_size(data) if decode_size is not None else None
    if full is not None:
        fit = min(decode_size[0] / full[1], decode_size[1] / full[0])  # the resize's scale
        reduce = max(r for r in REDUCE_FLAGS if r == 1 or r * fit <= 1)
        if reduce > 1:
            decoded = decode(data, reduce)
            expected = tuple(-(-side // reduce) for side in full)  # OpenCV rounds up
            if decoded.img is None or decoded.img.shape[:2] == expected:
                return decoded, full
            # The header's orientation disagrees with the decoder's (rare: a late PNG eXIf chunk), or a
            # fallback decoder ignored the reduction: decode in full below and trust its size.
    decoded = decode(data)
    return decoded, None if decoded.img is None else decoded.img.shape[:2]


def read_image(path: str):
    """Decode the image file at ``path`` as ``[H, W, 3]`` uint8 BGR in its upright orientation (EXIF
    orientation applied; a file cut short is read as a viewer reads it), or return None when the file
    is missing or cannot be decoded (:func:`read_file` says why)."""
    return read_file(path)[0].img


def decode_image(data: np.ndarray):
    """Decode encoded image bytes (uint8 ``[N]``) as :func:`read_image` does; None if undecodable."""
    return decode(data).img


@TRANSFORMS.register_module()
class LoadImageFromFile:
    """Reads ``results['img_path']`` (OpenCV; a file cut short as a viewer reads it, see
    :mod:`.image_decoding`) and sets ``img`` ([H, W, 3] uint8 BGR, upright: the EXIF orientation is
    applied), ``ori_shape`` and ``img_shape`` (h, w).

    Args:
        decode_size: ``(w, h)`` the pipeline fits the image into (a letterbox's scale; larger by the
            zoom of any scaling augmentation), or None. A larger image is decoded at 1/2, 1/4 or 1/8 of
            its size as long as it still covers that fit (a 12-megapixel JPEG through the own-data
            config's training pipeline in 0.13x the time, ``benchmarks/decode_size.py``); ``ori_shape``
            stays the file's size and ``scale_factor`` = decoded / original (w, h), which
            :class:`LoadAnnotations` applies to the boxes and the detector's outputs undo, so boxes stay
            in the file's pixels.
        on_error: 'raise' raises ``OSError`` naming the file and the reason when it is missing or cannot
            be decoded; 'skip' warns so (once per process; not at all for files the start-up data check
            already reported, see :data:`REPORTED_UNREADABLE`) and returns ``None``, so mmengine's
            ``BaseDataset`` samples another index in training (in test mode it raises).
    """

    def __init__(self, on_error: str = 'raise', decode_size=None):
        if on_error not in ('raise', 'skip'):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.on_error = on_error
        self.decode_size = None if decode_size is None else tuple(int(v) for v in decode_size)

    def __call__(self, results: dict):
        path = results['img_path']
        decoded, full = read_file(path, self.decode_size)
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
        results['ori_shape'] = full
        results['img_shape'] = img.shape[:2]
        if img.shape[:2] != full:
            results['scale_factor'] = (img.shape[1] / full[1], img.shape[0] / full[0])
        return results

    def __repr__(self):
        return f'{type(self).__name__}(on_error={self.on_error!r}, decode_size={self.decode_size})'


@TRANSFORMS.register_module()
class LoadAnnotations:
    """Record ``instances`` -> ``gt_bboxes`` float32 [N, 4] xyxy pixels of the loaded image (the file's
    pixels times a ``scale_factor`` the loading set), ``gt_bboxes_labels`` int64 [N], ``gt_ignore_flags``
    bool [N] (N may be 0)."""

    def __call__(self, results: dict) -> dict:
        instances = results.get('instances', [])
        boxes = np.array([i['bbox'] for i in instances], dtype=np.float32).reshape(-1, 4)
        if 'scale_factor' in results:
            sx, sy = results['scale_factor']
            boxes *= np.array([sx, sy, sx, sy], dtype=np.float32)
        results['gt_bboxes'] = boxes
        results['gt_bboxes_labels'] = np.array([i['bbox_label'] for i in instances], dtype=np.int64)
        results['gt_ignore_flags'] = np.array([i['ignore_flag'] for i in instances], dtype=bool)
        return results

    def __repr__(self):
        return f'{type(self).__name__}()'
