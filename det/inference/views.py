"""Views of an image (a crop, a horizontal flip, a rescaled input) run through the model, with every
view's boxes mapped back to the original image's pixels.

A view is made from the original image ``[H, W, 3]`` uint8 BGR by cropping, then flipping, then the
config's test pipeline after loading (Resize, Pad, PackDetInputs), whose ``Resize.scale`` and
``Pad.size`` are multiplied by the view's ``scale``. At scale 1 with no crop and no flip, a view is
exactly what the test dataloader feeds the model.
"""
import copy
from typing import NamedTuple, Optional

import numpy as np
import torch

from det.datasets.transforms import build_pipeline

LOADING = ('LoadImageFromFile', 'LoadAnnotations')


class View(NamedTuple):
    """``crop`` (x1, y1, x2, y2) integer original pixels or None (whole image), then a horizontal
    ``flip``, then the pipeline's input size times ``scale``."""

    scale: float = 1.0
    flip: bool = False
    crop: Optional[tuple] = None


def split_test_pipeline(cfg) -> tuple:
    """The config's test pipeline (``test_dataloader.dataset.pipeline``) as (loading transforms,
    view transforms): the first are ``LoadImageFromFile`` / ``LoadAnnotations``, the second the rest.
    The loading reads images at their full size (no ``decode_size``): views crop and rescale the
    original image and map their boxes back to its pixels."""
    pipeline = [dict(t) for t in cfg.test_dataloader.dataset.pipeline]
    loading = [t for t in pipeline if t['type'] in LOADING]
    for t in loading:
        t.pop('decode_size', None)
    return loading, [t for t in pipeline if t['type'] not in LOADING]


def scaled_pipeline(view_pipeline: list, scale: float) -> list:
    """Transform configs with ``Resize.scale`` and ``Pad.size`` (w, h) multiplied by ``scale``."""
    out = copy.deepcopy(view_pipeline)
    for t in out:
        key = dict(Resize='scale', Pad='size').get(t['type'])
        if key is not None:
            t[key] = tuple(max(1, round(v * scale)) for v in t[key])
    return out


def image_results(img: np.ndarray) -> dict:
    """A loaded image as the pipeline's results dict (what ``LoadImageFromFile`` produces)."""
    return dict(img=img, ori_shape=img.shape[:2], img_shape=img.shape[:2])


def view_image(img: np.ndarray, view: View) -> np.ndarray:
    """The crop and flip of ``view`` applied to ``img`` [H, W, 3]."""
    if view.crop is not None:
        x1, y1, x2, y2 = view.crop
        img = img[y1:y2, x1:x2]
    return np.ascontiguousarray(img[:, ::-1]) if view.flip else img


def to_original(bboxes: torch.Tensor, view: View, view_width: int) -> torch.Tensor:
    """``[N, 4]`` xyxy boxes in the pixels of the view's image (``view_width`` wide) -> original pixels:
    un-flip, then shift by the crop's corner."""
    boxes = bboxes.clone()
    if view.flip:
        boxes[:, 0], boxes[:, 2] = view_width - bboxes[:, 2], view_width - bboxes[:, 0]
    if view.crop is not None:
        x1, y1 = view.crop[:2]
        boxes += boxes.new_tensor([x1, y1, x1, y1])
    return boxes


def run_packed(model, packed: list, batch_size: int = 8) -> list:
    """``model.test_step`` on packed inputs (``{'inputs': uint8 [3, H, W], 'data_samples': sample}``)
    in batches of equal input shape, so no view is padded to another's size. Returns the predicted
    samples in the order given (``pred_instances`` in the pixels of each sample's ``ori_shape``)."""
    out = [None] * len(packed)
    groups = {}
    for i, p in enumerate(packed):
        groups.setdefault(tuple(p['inputs'].shape), []).append(i)
    with torch.no_grad():
        for indices in groups.values():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start:start + batch_size]
                data = dict(inputs=[packed[i]['inputs'] for i in chunk],
                            data_samples=[packed[i]['data_samples'] for i in chunk])
                for i, sample in zip(chunk, model.test_step(data)):
                    out[i] = sample
    return out


def predict_views(model, images: list, views: list, view_pipeline: list, batch_size: int = 8) -> list:
    """Predictions of every view of every image, in original pixels.

    Args:
        model: a detector (``test_step`` gives ``pred_instances`` in its input image's pixels).
        images: original images, each ``[H, W, 3]`` uint8 BGR.
        views: :class:`View` s, the same for every image.
        view_pipeline: transform configs after loading (see :func:`split_test_pipeline`).

    Returns:
        ``out[i][v]``: ``InstanceData(bboxes [K, 4] xyxy original pixels of image i, scores, labels)``.
    """
    pipelines = {s: build_pipeline(scaled_pipeline(view_pipeline, s)) for s in {v.scale for v in views}}
    packed, widths = [], []
    for img in images:
        for view in views:
            results = image_results(view_image(img, view))
            widths.append(results['img'].shape[1])
            for transform in pipelines[view.scale]:
                results = transform(results)
            packed.append(results)
    samples = run_packed(model, packed, batch_size)
    out = []
    for i in range(len(images)):
        per_view = []
        for v, view in enumerate(views):
            k = i * len(views) + v
            pred = samples[k].pred_instances
            pred.bboxes = to_original(pred.bboxes, view, widths[k])
            per_view.append(pred)
        out.append(per_view)
    return out
