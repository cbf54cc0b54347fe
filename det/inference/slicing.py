"""Sliced inference for images much larger than the network input (SAHI, Akyon et al. 2022): the image
is cut into overlapping square tiles, each tile goes through the config's test pipeline (so it is
resized to the network input like any image), its boxes are shifted back by the tile's corner, and all
tiles (plus, optionally, the whole image at the normal input size) are merged by
:mod:`det.inference.merge`.

Objects cut by a tile border leave partial boxes in that tile; the overlap, the full-image pass and
the merge keep the complete box of every object that lies inside some tile or is large enough for the
full-image pass.
"""
from mmengine.structures import InstanceData

from .tta import merge_views
from .views import View, predict_views


def _starts(length: int, size: int, overlap: int) -> list:
    """Tile starts along one axis: a step of ``size - overlap`` from 0, the last tile moved back to end
    at ``length`` (0 when the image is shorter than a tile)."""
    starts, start = [], 0
    while True:
        if start + size >= length:
            starts.append(max(0, length - size))
            return starts
        starts.append(start)
        start += size - overlap


def slice_grid(height: int, width: int, slice_size: int, overlap_ratio: float = 0.2) -> list:
    """Tiles ``(x1, y1, x2, y2)`` integer pixels covering an ``height x width`` image, row by row.

    SAHI's convention (``sahi.slicing.get_slice_bboxes``): tiles of ``slice_size`` overlapping by
    ``int(overlap_ratio * slice_size)`` pixels; the last tile of a row or column is moved back to end
    at the image border, and tiles are clipped to images smaller than a tile.
    """
    if not 0 <= overlap_ratio < 1:
        raise ValueError(f'overlap_ratio must be in [0, 1), got {overlap_ratio}')
    if slice_size < 1:
        raise ValueError(f'slice_size must be positive, got {slice_size}')
    overlap = int(overlap_ratio * slice_size)
    return [(x, y, min(x + slice_size, width), min(y + slice_size, height))
            for y in _starts(height, slice_size, overlap) for x in _starts(width, slice_size, overlap)]


def sliced_predict(model, image, view_pipeline: list, slice_size: int = 512, overlap_ratio: float = 0.2,
                   full_image: bool = True, merge_cfg: dict = None, max_per_img: int = 100,
                   batch_size: int = 8) -> InstanceData:
    """Detections of one large image from its tiles (and the whole image when ``full_image``).

    Args:
        model: a detector.
        image: ``[H, W, 3]`` uint8 BGR.
        view_pipeline: the config's test transforms after loading (``split_test_pipeline(cfg)[1]``).
        slice_size, overlap_ratio: see :func:`slice_grid`.
        merge_cfg, max_per_img: see :func:`det.inference.tta.merge_views` (class-wise NMS at 0.5 by
            default).

    Returns:
        ``InstanceData(bboxes [K, 4] xyxy original pixels, scores [K], labels [K])``.
    """
    height, width = image.shape[:2]
    views = [View(crop=tile) for tile in slice_grid(height, width, slice_size, overlap_ratio)]
    views += [View()] if full_image else []
    preds = predict_views(model, [image], views, view_pipeline, batch_size)[0]
    return merge_views(preds, [None] * len(views), merge_cfg, max_per_img)
