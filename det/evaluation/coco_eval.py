"""COCO bbox evaluation on pycocotools (or faster-coco-eval), with size tiers and per-class AP.

One ``COCOeval`` run does all the matching. Its ``params.areaRng`` holds COCO's four ranges
(all / small / medium / large) followed by the size tiers, so the standard 12 stats, the tier AP/AR and
the per-class AP are all read from the same ``eval['precision']`` ``[T, R, K, A, M]`` and
``eval['recall']`` ``[T, K, A, M]`` arrays, averaging the entries > -1 exactly as
``COCOeval.summarize()`` does (-1 where nothing has ground truth).

Detections are COCO result dicts: ``image_id``, ``category_id``, ``bbox`` xywh in original image pixels,
``score`` (or the same as an ``[N, 7]`` array). They are loaded from arrays in one pass rather than by the
libraries' per-detection ``loadRes`` loop. Tiers are ``(name, lo, hi)`` on sqrt(area) in pixels, i.e.
area range ``[lo**2, hi**2]`` (both ends inclusive, as in pycocotools).
"""
import argparse
import contextlib
import io
import json
import warnings
from dataclasses import dataclass, field

import numpy as np

# Default tiny-object tiers on sqrt(area) in pixels; 1e5 is COCO's "no upper bound".
DEFAULT_TIERS = (('vt', 0, 8), ('t', 8, 16), ('s', 16, 32), ('m', 32, 96), ('l', 96, 1e5))
BACKENDS = ('pycocotools', 'faster_coco_eval')
# faster-coco-eval is the default: tests/evaluation/test_coco_eval.py checks that its 12 stats, tier and
# per-class AP equal pycocotools' within 1e-4 on random cases (crowd boxes, empty images, classes without
# ground truth), and its C++ matching is ~10x faster (1500 images / 11k detections: 0.18 s vs 1.7 s).
DEFAULT_BACKEND = 'faster_coco_eval'

STAT_NAMES = ('AP', 'AP50', 'AP75', 'AP_small', 'AP_medium', 'AP_large',
              'AR1', 'AR10', 'AR100', 'AR_small', 'AR_medium', 'AR_large')
# COCO's area ranges, in the order and with the labels pycocotools uses.
_COCO_AREAS = (('all', [0, 1e5 ** 2]), ('small', [0, 32 ** 2]), ('medium', [32 ** 2, 96 ** 2]),
               ('large', [96 ** 2, 1e5 ** 2]))
# (ap, iouThr, area label, maxDets) of each line of COCOeval.summarize(), in STAT_NAMES order.
_SUMMARY_LINES = ((1, None, 'all', 100), (1, 0.5, 'all', 100), (1, 0.75, 'all', 100),
                  (1, None, 'small', 100), (1, None, 'medium', 100), (1, None, 'large', 100),
                  (0, None, 'all', 1), (0, None, 'all', 10), (0, None, 'all', 100),
                  (0, None, 'small', 100), (0, None, 'medium', 100), (0, None, 'large', 100))


@dataclass
class CocoEvalResult:
    """What :func:`evaluate_coco` returns.

    ``stats``: the 12 numbers of ``COCOeval.summarize()`` keyed by :data:`STAT_NAMES`; ``summary``: its
    12 text lines; ``tiers``: name -> {lo, hi, num_gt, AP, AR} (AR at maxDets=100, num_gt counts
    non-crowd ground truth of the evaluated images/categories); ``per_class``: one
    {category_id, name, AP, AP50} per evaluated category (-1 where it has no ground truth).
    """
    stats: dict
    summary: str
    tiers: dict = field(default_factory=dict)
    per_class: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {'coco': self.stats, 'tiers': self.tiers, 'per_class': self.per_class}


def parse_tier(text: str) -> tuple:
    """A size tier on the command line, 'name:lo:hi' (sqrt(area) in pixels) -> (name, lo, hi)."""
    try:
        name, lo, hi = text.split(':')
        return name, float(lo), float(hi)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f'tier must look like name:lo:hi (e.g. t:8:16), got {text!r}') from e


def _backend(name: str):
    """(COCO class, COCOeval factory) of one backend."""
    if name == 'pycocotools':
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
        return COCO, lambda gt, dt: COCOeval(gt, dt, 'bbox')
    if name == 'faster_coco_eval':
        from faster_coco_eval import COCO, COCOeval_faster
        return COCO, lambda gt, dt: COCOeval_faster(gt, dt, 'bbox', print_function=lambda *args: None)
    raise ValueError(f'backend must be one of {BACKENDS}, got {name!r}')


def _coco_from_dict(dataset: dict, backend: str):
    coco_cls, _ = _backend(backend)
    coco = coco_cls()
    coco.dataset = dict(dataset)
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def complete_coco_gt(dataset: dict) -> tuple:
    """A COCO ground-truth dict in which every annotation has what pycocotools and faster-coco-eval read,
    as labelling tools' exports often leave some out: ``area`` (bbox w*h where missing: the box area, so
    the size tiers are by box), ``iscrowd`` (0 where missing) and a unique ``id`` (all annotations
    renumbered 1..N when ids are missing or repeated: both libraries look annotations up by id, so a
    repeated id would make one box stand for another).

    Returns:
        (the dict, a shallow copy with new annotation dicts where anything was filled in; a list of
        notes saying what was filled in, empty when nothing was).
    """
    anns = dataset.get('annotations') or []
    no_area = sum('area' not in a for a in anns)
    no_crowd = sum('iscrowd' not in a for a in anns)
    ids = [a.get('id') for a in anns]
    renumber = None in ids or len(set(ids)) != len(ids)
    if not (no_area or no_crowd or renumber):
        return dataset, []
    notes = [note for found, note in (
        (no_area, f'{no_area} of {len(anns)} annotations have no area: bbox w*h is used (size tiers)'),
        (no_crowd, f'{no_crowd} of {len(anns)} annotations have no iscrowd: 0 is used'),
        (renumber, f'annotation ids are missing or repeated: renumbered 1..{len(anns)}')) if found]
    filled = []
    for index, ann in enumerate(anns):
        ann = dict(ann)
        if 'area' not in ann:
            ann['area'] = float(ann['bbox'][2]) * float(ann['bbox'][3])
        ann.setdefault('iscrowd', 0)
        if renumber:
            ann['id'] = index + 1
        filled.append(ann)
    return {**dataset, 'annotations': filled}, notes


def load_coco_gt(gt, backend: str = DEFAULT_BACKEND):
    """The backend's ``COCO`` ground truth from a json path, a COCO-format dict or a ``COCO`` object,
    completed by :func:`complete_coco_gt` (with a warning saying what was filled in)."""
    coco_cls, _ = _backend(backend)
    source = gt if isinstance(gt, str) else 'the COCO ground truth'
    if hasattr(gt, 'dataset'):  # a COCO object
        if isinstance(gt, coco_cls) and not complete_coco_gt(gt.dataset)[1]:
            return gt
        gt = gt.dataset
    elif not isinstance(gt, dict):
        with open(gt) as f:
            gt = json.load(f)
    gt, notes = complete_coco_gt(gt)
    if notes:
        warnings.warn(f'{source}: ' + '; '.join(notes), stacklevel=2)
    return _coco_from_dict(gt, backend)


def detection_columns(detections) -> tuple:
    """Detections as columns: ``(image_ids [N], category_ids [N], boxes float64 [N, 4] xywh, scores
    float64 [N])``, the ids as lists of the values given (ints, or whatever ids the annotations use).

    ``detections`` is a list of COCO result dicts, or an array ``[N, 7]`` of rows
    ``(image_id, x, y, w, h, score, category_id)`` (the COCO API's numpy result format).
    """
    if isinstance(detections, np.ndarray):
        if detections.ndim != 2 or detections.shape[1] != 7:
            raise ValueError('an array of detections must be [N, 7] rows of (image_id, x, y, w, h, score, '
                             f'category_id), got shape {detections.shape}')
        rows = detections.astype(np.float64, copy=False)
        return (rows[:, 0].astype(np.int64).tolist(), rows[:, 6].astype(np.int64).tolist(), rows[:, 1:5],
                rows[:, 5])
    if not isinstance(detections, (list, tuple)):
        raise TypeError(f'detections must be a list of COCO result dicts or an [N, 7] array, got '
                        f'{type(detections).__name__}')
    try:
        image_ids = [d['image_id'] for d in detections]
        category_ids = [d['category_id'] for d in detections]
        boxes = np.array([d['bbox'] for d in detections], dtype=np.float64).reshape(len(detections), 4)
        scores = np.array([d['score'] for d in detections], dtype=np.float64)
    except KeyError as e:
        raise KeyError(f'a detection has no {e} (COCO result dicts hold image_id, category_id, bbox, '
                       'score)') from None
    except ValueError as e:
        raise ValueError(f'detection boxes must be 4 numbers [x, y, w, h] and scores numbers: {e}') from None
    return image_ids, category_ids, boxes, scores


def check_detections(coco_gt, detections) -> None:
    """Raise ``ValueError`` if detections (result dicts, an ``[N, 7]`` array, or the output of
    :func:`detection_columns`) name image or category ids the annotations do not have."""
    image_ids, category_ids = (detections[:2] if isinstance(detections, tuple)
                               else detection_columns(detections)[:2])
    bad_imgs = sorted(set(image_ids) - set(coco_gt.getImgIds()), key=str)
    bad_cats = sorted(set(category_ids) - set(coco_gt.getCatIds()), key=str)
    problems = [f'{len(bad)} {kind} id(s) not in the annotations, e.g. {bad[:10]}'
                for kind, bad in (('image', bad_imgs), ('category', bad_cats)) if bad]
    if problems:
        raise ValueError('detections do not match the annotations: ' + '; '.join(problems))


def _load_detections(coco_gt, columns: tuple, backend: str):
    """Detections (:func:`detection_columns`) as a result ``COCO`` of the backend.

    Builds what both libraries' ``loadRes`` build for boxes (annotation ``id`` = position + 1 in input
    order, ``area`` = w * h, ``iscrowd`` = 0, the ground truth's images and categories) from arrays in
    one pass, instead of their per-detection Python loop; the box polygon ``loadRes`` also adds is read
    only for segmentation and is left out. Works for an empty result too (pycocotools' ``loadRes``
    fails on one). The caller's detections are not modified.
    """
    image_ids, category_ids, boxes, scores = columns
    areas = (boxes[:, 2] * boxes[:, 3]).tolist()
    anns = [{'id': k, 'image_id': img, 'category_id': cat, 'bbox': box, 'score': score, 'area': area,
             'iscrowd': 0}
            for k, img, cat, box, score, area in zip(range(1, len(image_ids) + 1), image_ids, category_ids,
                                                     boxes.tolist(), scores.tolist(), areas)]
    return _coco_from_dict({'images': coco_gt.dataset['images'], 'annotations': anns,
                            'categories': coco_gt.dataset['categories']}, backend)


def _mean_valid(coco_eval, ap: int, area_idx: int, max_dets: int = 100, iou_thr=None, cat_idx=None) -> float:
    """Mean of the precision (ap=1) or recall (ap=0) entries > -1 at one area range and maxDets, over
    IoU thresholds (or the one ``iou_thr``), recall thresholds and categories (or the one ``cat_idx``);
    -1 if none: the reading ``COCOeval.summarize()`` does."""
    p = coco_eval.params
    s = coco_eval.eval['precision' if ap else 'recall']
    if iou_thr is not None:
        s = s[np.where(iou_thr == p.iouThrs)[0]]
    s = s[..., area_idx, list(p.maxDets).index(max_dets)]  # [T, R, K] or [T, K]
    if cat_idx is not None:
        s = s[..., cat_idx]
    valid = s[s > -1]
    return float(np.mean(valid)) if valid.size else -1.0


def _summary_line(ap, iou_thr, area, max_dets, value, iou_thrs) -> str:
    """One line formatted like pycocotools' ``summarize()`` prints it."""
    title, kind = ('Average Precision', '(AP)') if ap else ('Average Recall', '(AR)')
    iou = f'{iou_thrs[0]:0.2f}:{iou_thrs[-1]:0.2f}' if iou_thr is None else f'{iou_thr:0.2f}'
    return f' {title:<18} {kind} @[ IoU={iou:<9} | area={area:>6s} | maxDets={max_dets:>3d} ] = {value:0.3f}'


def evaluate_coco(gt, detections, tiers=DEFAULT_TIERS, backend: str = DEFAULT_BACKEND,
                  img_ids=None, cat_ids=None) -> CocoEvalResult:
    """Evaluate bbox ``detections`` against ``gt`` (json path, dict or COCO object).

    ``detections``: a list of COCO result dicts (``image_id``, ``category_id``, ``bbox`` xywh, ``score``)
    or an ``[N, 7]`` array of rows ``(image_id, x, y, w, h, score, category_id)``; the array skips the
    per-detection dict reading (the fastest input for large result sets).

    ``tiers``: ``(name, lo, hi)`` sqrt(area) ranges in pixels. ``img_ids`` / ``cat_ids`` restrict the
    evaluation (default: all images and categories of ``gt``), e.g. to the images a run predicted on.
    """
    tiers = [(str(name), float(lo), float(hi)) for name, lo, hi in tiers]
    if len({t[0] for t in tiers}) != len(tiers):
        raise ValueError(f'tier names must be unique, got {[t[0] for t in tiers]}')
    coco_gt = load_coco_gt(gt, backend)
    columns = detection_columns(detections)
    check_detections(coco_gt, columns)
    coco_eval = _backend(backend)[1](coco_gt, _load_detections(coco_gt, columns, backend))

    # One evaluation over COCO's ranges plus the tiers; equal ranges are evaluated once.
    ranges, labels = [], []
    for label, rng in list(_COCO_AREAS) + [(f'tier_{n}', [lo ** 2, hi ** 2]) for n, lo, hi in tiers]:
        if rng not in ranges:
            ranges.append(rng)
            labels.append(label)
    area_idx = {label: ranges.index(rng) for label, rng in _COCO_AREAS}
    p = coco_eval.params
    p.areaRng, p.areaRngLbl = ranges, labels
    if img_ids is not None:
        p.imgIds = list(img_ids)
    if cat_ids is not None:
        p.catIds = list(cat_ids)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval.evaluate()
        coco_eval.accumulate()
    p = coco_eval.params  # evaluate() sorts and de-duplicates imgIds / catIds

    stats, lines = {}, []
    for name, (ap, iou_thr, area, max_dets) in zip(STAT_NAMES, _SUMMARY_LINES):
        stats[name] = _mean_valid(coco_eval, ap, area_idx[area], max_dets, iou_thr)
        lines.append(_summary_line(ap, iou_thr, area, max_dets, stats[name], p.iouThrs))

    gt_areas = np.array([a['area'] for a in coco_gt.loadAnns(coco_gt.getAnnIds(imgIds=p.imgIds,
                                                                               catIds=p.catIds))
                         if not a.get('iscrowd', 0)], dtype=np.float64)
    tier_stats = {}
    for name, lo, hi in tiers:
        a = ranges.index([lo ** 2, hi ** 2])
        tier_stats[name] = {'lo': lo, 'hi': hi,
                            'num_gt': int(((gt_areas >= lo ** 2) & (gt_areas <= hi ** 2)).sum()),
                            'AP': _mean_valid(coco_eval, 1, a), 'AR': _mean_valid(coco_eval, 0, a)}

    per_class = []
    for k, cat_id in enumerate(p.catIds):
        cat_id = int(cat_id)
        per_class.append({'category_id': cat_id, 'name': str(coco_gt.cats[cat_id].get('name', cat_id)),
                          'AP': _mean_valid(coco_eval, 1, 0, cat_idx=k),
                          'AP50': _mean_valid(coco_eval, 1, 0, iou_thr=0.5, cat_idx=k)})
    return CocoEvalResult(stats, '\n'.join(lines), tier_stats, per_class)


def _table(header: list, rows: list) -> str:
    """Left-aligned first column, right-aligned others, widths fitted to the content."""
    cells = [header] + rows
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def fmt(row):
        return '  '.join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    return '\n'.join([fmt(header), '  '.join('-' * w for w in widths)] + [fmt(r) for r in rows])


def format_tier_table(result: CocoEvalResult) -> str:
    """Text table of AP (IoU 0.50:0.95) and AR (maxDets=100) per size tier; -1 means no ground truth."""
    rows = [[name, f"{t['lo']:g}-" + ('inf' if t['hi'] >= 1e5 else f"{t['hi']:g}"), str(t['num_gt']),
             f"{t['AP']:.3f}", f"{t['AR']:.3f}"] for name, t in result.tiers.items()]
    return _table(['tier', 'sqrt(area) px', 'num_gt', 'AP', 'AR100'], rows)


def format_per_class_table(result: CocoEvalResult) -> str:
    """Text table of AP (IoU 0.50:0.95) and AP50 per category; -1 means no ground truth."""
    rows = [[c['name'], str(c['category_id']), f"{c['AP']:.3f}", f"{c['AP50']:.3f}"]
            for c in result.per_class]
    return _table(['class', 'id', 'AP', 'AP50'], rows)


def format_report(result: CocoEvalResult, pixels: str = 'pixels') -> str:
    """The whole text report of one evaluation: pycocotools' 12-line summary, then the size-tier and the
    per-class tables under their headings (``pixels`` says which pixels the tiers' sizes are in)."""
    return (f'{result.summary}\n\nAP / AR100 by size tier (sqrt(area) in {pixels}):\n'
            f'{format_tier_table(result)}\n\nPer-class AP:\n{format_per_class_table(result)}')

