"""Precision-recall curves per class and per size tier, read from one COCOeval run.

The run is set up as :func:`det.evaluation.coco_eval.evaluate_coco` sets up its own (same backends, same
loading and checks of the detections, tiers as ``(name, lo, hi)`` on sqrt(area) with area range
``[lo**2, hi**2]``), with area ranges 'all' + the tiers. ``eval['precision']`` ``[T, R, K, A, M]`` at
one IoU threshold and maxDets=100 then holds, for every class k and area range a, the interpolated
precision at COCO's 101 recall thresholds: the curve whose mean is AP. A tier's curve is the mean over
the classes that have ground truth in that tier, so its mean is the tier's AP, as
``COCOeval.summarize()`` averages it. -1 entries (no ground truth) are left out.
"""
import contextlib
import io

import numpy as np

from det.evaluation.coco_eval import (
    DEFAULT_BACKEND,
    DEFAULT_TIERS,
    _backend,
    _load_detections,
    check_detections,
    detection_columns,
    load_coco_gt,
)

_ALL = [0, 1e5 ** 2]


def precision_recall(gt, detections: list, iou_thr: float = 0.5, tiers=DEFAULT_TIERS,
                     backend: str = DEFAULT_BACKEND) -> dict:
    """Precision at COCO's recall thresholds, per class (all sizes) and per size tier (all classes).

    Args:
        gt: COCO annotations (json path, dict or ``COCO``).
        detections: COCO result dicts (``image_id``, ``category_id``, ``bbox`` xywh pixels, ``score``)
            or an ``[N, 7]`` array, as ``evaluate_coco`` takes them.
        iou_thr: one of COCOeval's IoU thresholds (0.5, 0.55, ..., 0.95).

    Returns:
        ``recall``: [R] recall thresholds; ``classes``: one dict (``category_id``, ``name``, ``num_gt``,
        ``precision`` [R] or None without ground truth, ``ap``: its mean, -1 without ground truth) per
        category; ``tiers``: one dict (``name``, ``lo``, ``hi``, ``num_gt``, ``precision``, ``ap``) per tier.
    """
    coco_gt = load_coco_gt(gt, backend)
    columns = detection_columns(detections)
    check_detections(coco_gt, columns)
    coco_eval = _backend(backend)[1](coco_gt, _load_detections(coco_gt, columns, backend))
    p = coco_eval.params
    thr_idx = np.nonzero(np.isclose(p.iouThrs, iou_thr))[0]
    if not thr_idx.size:
        raise ValueError(f'iou_thr must be one of COCOeval\'s thresholds {np.round(p.iouThrs, 2).tolist()}, '
                         f'got {iou_thr}')
    tiers = [(str(name), float(lo), float(hi)) for name, lo, hi in tiers]
    p.areaRng = [_ALL] + [[lo ** 2, hi ** 2] for _, lo, hi in tiers]
    p.areaRngLbl = ['all'] + [name for name, _, _ in tiers]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval.evaluate()
        coco_eval.accumulate()
    p = coco_eval.params
    precision = np.asarray(coco_eval.eval['precision'])[thr_idx[0], :, :, :, list(p.maxDets).index(100)]

    anns = [a for a in coco_gt.loadAnns(coco_gt.getAnnIds(imgIds=p.imgIds)) if not a.get('iscrowd', 0)]
    areas = np.array([a['area'] for a in anns], dtype=np.float64)
    cats = np.array([a['category_id'] for a in anns])
    classes = []
    for k, cat_id in enumerate(p.catIds):
        curve = precision[:, k, 0]
        valid = bool((curve > -1).all())
        classes.append(dict(category_id=int(cat_id), name=str(coco_gt.cats[cat_id].get('name', cat_id)),
                            num_gt=int((cats == cat_id).sum()), precision=curve if valid else None,
                            ap=float(curve.mean()) if valid else -1.0))
    tier_curves = []
    for a, (name, lo, hi) in enumerate(tiers, start=1):
        per_class = precision[:, :, a]  # [R, K]
        with_gt = (per_class > -1).all(0)
        curve = per_class[:, with_gt].mean(1) if with_gt.any() else None
        tier_curves.append(dict(name=name, lo=lo, hi=hi,
                                num_gt=int(((areas >= lo ** 2) & (areas <= hi ** 2)).sum()),
                                precision=curve, ap=float(curve.mean()) if curve is not None else -1.0))
    return dict(recall=np.asarray(p.recThrs), iou_thr=float(p.iouThrs[thr_idx[0]]), classes=classes,
                tiers=tier_curves)
