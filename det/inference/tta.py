"""Test-time augmentation: an image pyramid (the config's input size times each scale) and horizontal
flips, every view mapped back to original pixels, optionally filtered by object size per scale
(SNIP's valid ranges), then merged by :mod:`det.inference.merge`.

Three ways in:

- :func:`multi_view_predict` on original images (``tools/demo.py``);
- :class:`TTADetector`, an mmengine model wrapping a detector, whose ``test_step`` does the same on a
  test batch, so ``tools/test.py`` evaluates TTA through the Runner unchanged;
- :func:`tta_config`, which turns an experiment config into one that tests with :class:`TTADetector`
  (and :func:`parse_tta_options` for ``--tta scales=0.5,1,2 flip=1 merge=wbf``).
"""
import math

import numpy as np
from mmengine.model import BaseTTAModel
from mmengine.structures import InstanceData

from det.registry import MODELS

from .merge import METHODS, merge_detections
from .views import View, predict_views, split_test_pipeline


def pyramid_views(scales=(1.0,), flip: bool = False, size_ranges=None) -> tuple:
    """The views of every scale (unflipped, then flipped when ``flip``) and the valid size range of
    each: ``size_ranges[i]`` = (min, max) of sqrt(box area) in original pixels kept from scale i, either
    end None for no limit; None keeps every size."""
    if size_ranges is not None and len(size_ranges) != len(scales):
        raise ValueError(f'{len(size_ranges)} size ranges for {len(scales)} scales; give one per scale')
    views, ranges = [], []
    for i, scale in enumerate(scales):
        if not scale > 0:
            raise ValueError(f'scales must be positive, got {scale}')
        for flipped in ((False, True) if flip else (False,)):
            views.append(View(scale=float(scale), flip=flipped))
            ranges.append(None if size_ranges is None else size_ranges[i])
    return views, ranges


def in_size_range(pred: InstanceData, size_range) -> InstanceData:
    """The detections whose sqrt(area) lies in ``size_range`` = (min, max), ends inclusive, None for
    no limit (all of them when ``size_range`` is None)."""
    if size_range is None:
        return pred
    low, high = size_range
    wh = (pred.bboxes[:, 2:] - pred.bboxes[:, :2]).clamp(min=0)
    size = (wh[:, 0] * wh[:, 1]).sqrt()
    keep = (size >= (-math.inf if low is None else low)) & (size <= (math.inf if high is None else high))
    return pred[keep]


def merge_views(preds: list, ranges: list, merge_cfg: dict = None, max_per_img: int = 100) -> InstanceData:
    """One image's per-view predictions (original pixels) -> one ``InstanceData``: each view filtered
    by its size range, then merged by ``merge_cfg`` (``dict(method='nms' | 'soft_nms' | 'wbf',
    iou_thr=..., ...)``, see :func:`merge_detections`; default class-wise NMS at 0.5) and cut to the
    ``max_per_img`` best. A single view is not merged: it is the model's own output."""
    preds = [in_size_range(p, r) for p, r in zip(preds, ranges)]
    if len(preds) == 1:
        return preds[0][:max_per_img]
    boxes, scores, labels = merge_detections([p.bboxes for p in preds], [p.scores for p in preds],
                                             [p.labels for p in preds],
                                             **(merge_cfg or dict(method='nms', iou_thr=0.5)))
    device = preds[0].bboxes.device
    return InstanceData(bboxes=boxes[:max_per_img].to(device), scores=scores[:max_per_img].to(device),
                        labels=labels[:max_per_img].to(device))


def multi_view_predict(model, images: list, view_pipeline: list, scales=(1.0,), flip: bool = False,
                       merge_cfg: dict = None, size_ranges=None, max_per_img: int = 100,
                       batch_size: int = 8) -> list:
    """Predictions of each image from all its pyramid / flip views, merged.

    Args:
        model: a detector.
        images: original images, each ``[H, W, 3]`` uint8 BGR.
        view_pipeline: the config's test transforms after loading (``split_test_pipeline(cfg)[1]``);
            at scale s its ``Resize.scale`` and ``Pad.size`` are multiplied by s.
        scales, flip, size_ranges: see :func:`pyramid_views`; merge_cfg, max_per_img: see
            :func:`merge_views`.

    Returns:
        One ``InstanceData(bboxes [K, 4] xyxy original pixels, scores [K], labels [K])`` per image.
    """
    views, ranges = pyramid_views(scales, flip, size_ranges)
    per_image = predict_views(model, images, views, view_pipeline, batch_size)
    return [merge_views(preds, ranges, merge_cfg, max_per_img) for preds in per_image]


@MODELS.register_module()
class TTADetector(BaseTTAModel):
    """Wraps a detector (``module``: config dict or built model) for test-time augmentation in
    mmengine's Runner.

    The test dataloader must give the original images (the config's loading transforms and
    ``PackDetInputs`` only, see :func:`tta_config`); ``test_step`` makes the views with
    ``view_pipeline``, predicts them with the detector and returns the batch's samples with the merged
    ``pred_instances`` in original pixels. As an mmengine ``BaseTTAModel``, its checkpoints load into
    the wrapped detector. Other arguments as :func:`multi_view_predict`.
    """

    def __init__(self, module, view_pipeline: list, scales=(1.0,), flip: bool = False, merge_cfg: dict = None,
                 size_ranges=None, max_per_img: int = 100, batch_size: int = 8, data_preprocessor=None):
        # Built with det's registry, so no default scope is needed.
        super().__init__(MODELS.build(module) if isinstance(module, dict) else module, data_preprocessor)
        self.view_pipeline = [dict(t) for t in view_pipeline]
        self.views, self.ranges = pyramid_views(scales, flip, size_ranges)
        self.merge_cfg = merge_cfg
        self.max_per_img = max_per_img
        self.batch_size = batch_size

    def test_step(self, data: dict) -> list:
        """``data``: ``{'inputs': list of uint8 [3, H, W] original images, 'data_samples': list}``."""
        images = [np.ascontiguousarray(img.permute(1, 2, 0).cpu().numpy()) for img in data['inputs']]
        per_image = predict_views(self.module, images, self.views, self.view_pipeline, self.batch_size)
        samples = data['data_samples']
        for sample, merged in zip(samples, self.merge_preds(per_image)):
            sample.pred_instances = merged
        return samples

    def merge_preds(self, data_samples_list: list) -> list:
        """Per image, the list of its views' ``InstanceData`` (original pixels) -> one merged each."""
        return [merge_views(preds, self.ranges, self.merge_cfg, self.max_per_img)
                for preds in data_samples_list]


def tta_config(cfg, scales=(1.0,), flip: bool = False, merge_cfg: dict = None, size_ranges=None,
               max_per_img: int = 100) -> None:
    """Turn an experiment config (in place) into one that tests with :class:`TTADetector`: the model is
    wrapped, and the test dataloader keeps only its loading transforms and its final ``PackDetInputs``
    so the model receives original images; the rest of the test pipeline makes each view."""
    loading, view_pipeline = split_test_pipeline(cfg)
    if not view_pipeline or view_pipeline[-1]['type'] != 'PackDetInputs':
        raise ValueError('TTA needs a test pipeline that ends with PackDetInputs')
    cfg.model = dict(type='TTADetector', module=cfg.model, view_pipeline=view_pipeline, scales=tuple(scales),
                     flip=flip, merge_cfg=merge_cfg, size_ranges=size_ranges, max_per_img=max_per_img)
    cfg.test_dataloader.dataset.pipeline = loading + view_pipeline[-1:]


def parse_tta_options(items: list) -> dict:
    """``--tta`` words -> keyword arguments of :func:`tta_config`.

    ``scales=0.5,1,2`` (default 1), ``flip=0|1``, ``merge=nms|soft_nms|wbf`` (default nms),
    ``iou_thr=0.55`` (default 0.5 for NMS and soft-NMS, 0.55 for WBF), soft-NMS's ``sigma=0.5``,
    ``min_score=0.001`` and ``decay=gaussian|linear``, ``sizes=0-64,16-128,32-inf`` (one sqrt(area)
    range in original pixels per scale, 'inf' for no upper limit), ``max_per_img=100``.
    """
    options = {}
    for item in items:
        key, sep, value = item.partition('=')
        if not sep or not value:
            raise ValueError(f'--tta expects key=value words, got {item!r}')
        options[key] = value
    known = {'scales', 'flip', 'merge', 'iou_thr', 'sigma', 'min_score', 'decay', 'sizes', 'max_per_img'}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f'unknown --tta options {unknown}; known: {sorted(known)}')
    method = options.get('merge', 'nms')
    if method not in METHODS:
        raise ValueError(f'--tta merge must be one of {METHODS}, got {method!r}')
    merge_cfg = dict(method=method, iou_thr=float(options.get('iou_thr', 0.55 if method == 'wbf' else 0.5)))
    for key in ('sigma', 'min_score', 'decay'):
        if key in options:
            if method != 'soft_nms':
                raise ValueError(f'--tta {key} applies to merge=soft_nms only')
            merge_cfg[key] = options[key] if key == 'decay' else float(options[key])
    scales = tuple(float(s) for s in options.get('scales', '1').split(','))
    size_ranges = None
    if 'sizes' in options:
        size_ranges = [tuple(None if v in ('', 'inf') else float(v) for v in r.split('-'))
                       for r in options['sizes'].split(',')]
        if any(len(r) != 2 for r in size_ranges):
            raise ValueError(f"--tta sizes must be 'min-max' per scale, got {options['sizes']!r}")
    return dict(scales=scales, flip=options.get('flip', '0') not in ('0', 'false', 'False'),
                merge_cfg=merge_cfg, size_ranges=size_ranges,
                max_per_img=int(options.get('max_per_img', 100)))
