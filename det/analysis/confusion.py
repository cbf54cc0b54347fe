"""Confusion matrix of a detector: which ground-truth class each detection was taken for, with a
background row (false positives) and column (missed ground truth).

Per image, the detections scoring at least ``score_thr`` are matched one-to-one to ground-truth boxes
with IoU >= ``iou_thr``, in two greedy passes by descending IoU: first detection and box of the same
class (so a correct detection is never counted as a confusion because a wrong-class duplicate overlaps
more), then the boxes and detections left, across classes. A matched pair adds one to
``[gt class, detected class]``; an unmatched box to ``[gt class, background]``; an unmatched detection
to ``[background, detected class]``, unless it lies in a crowd region (``iscrowd``; the part of the
detection inside it, intersection / detection area, >= ``iou_thr``, as COCO ignores it), where it is
not counted. Crowd boxes are never matched or missed.
"""
from collections import defaultdict

import numpy as np
from pycocotools import mask as mask_utils

from det.evaluation.coco_eval import check_detections, load_coco_gt


def _greedy(iou: np.ndarray, allowed: np.ndarray, iou_thr: float, free_gt: np.ndarray,
            free_det: np.ndarray) -> list:
    """Pairs (det, gt) taken in descending IoU among ``allowed`` ones with IoU >= ``iou_thr`` whose
    detection and box are still free; marks them taken."""
    dets, gts = np.nonzero(allowed & (iou >= iou_thr))
    pairs = []
    for k in np.argsort(-iou[dets, gts], kind='stable'):
        d, g = dets[k], gts[k]
        if free_det[d] and free_gt[g]:
            free_det[d] = free_gt[g] = False
            pairs.append((d, g))
    return pairs


def confusion_matrix(gt, detections: list, score_thr: float = 0.3, iou_thr: float = 0.5) -> dict:
    """Counts ``[K + 1, K + 1]`` (rows: ground truth, columns: detections; index K is background).

    Args:
        gt: COCO annotations (json path, dict or ``COCO``); classes are its categories in id order.
        detections: COCO result dicts (``image_id``, ``category_id``, ``bbox`` xywh pixels, ``score``).

    Returns:
        ``matrix`` int64 [K + 1, K + 1], ``classes`` (K names), ``category_ids`` (K ids).
    """
    if not 0 <= iou_thr <= 1:
        raise ValueError(f'iou_thr must be in [0, 1], got {iou_thr}')
    coco_gt = load_coco_gt(gt, 'pycocotools')
    check_detections(coco_gt, detections)
    cat_ids = sorted(coco_gt.getCatIds())
    index = {c: i for i, c in enumerate(cat_ids)}
    bg = len(cat_ids)
    matrix = np.zeros((bg + 1, bg + 1), dtype=np.int64)
    dets_by_img = defaultdict(list)
    for d in detections:
        if d['score'] >= score_thr:
            dets_by_img[d['image_id']].append(d)
    for img_id in coco_gt.getImgIds():
        anns = coco_gt.loadAnns(coco_gt.getAnnIds(imgIds=[img_id]))
        boxes = [a for a in anns if not a.get('iscrowd', 0)]
        crowd = [a for a in anns if a.get('iscrowd', 0)]
        dets = dets_by_img.get(img_id, [])
        gt_labels = np.array([index[a['category_id']] for a in boxes], dtype=np.int64)
        det_labels = np.array([index[d['category_id']] for d in dets], dtype=np.int64)
        free_gt, free_det = np.ones(len(boxes), bool), np.ones(len(dets), bool)
        pairs = []
        if boxes and dets:
            iou = np.asarray(mask_utils.iou([d['bbox'] for d in dets], [a['bbox'] for a in boxes],
                                            [0] * len(boxes))).reshape(len(dets), len(boxes))
            same = det_labels[:, None] == gt_labels[None, :]
            pairs = _greedy(iou, same, iou_thr, free_gt, free_det)
            pairs += _greedy(iou, ~same, iou_thr, free_gt, free_det)
        for d, g in pairs:
            matrix[gt_labels[g], det_labels[d]] += 1
        for g in np.nonzero(free_gt)[0]:
            matrix[gt_labels[g], bg] += 1
        unmatched = np.nonzero(free_det)[0]
        if crowd and unmatched.size:
            # pycocotools' iscrowd IoU is intersection / detection area.
            inside = np.asarray(mask_utils.iou([dets[d]['bbox'] for d in unmatched],
                                               [a['bbox'] for a in crowd], [1] * len(crowd)))
            unmatched = unmatched[~(inside.reshape(len(unmatched), len(crowd)) >= iou_thr).any(1)]
        for d in unmatched:
            matrix[bg, det_labels[d]] += 1
    names = [str(coco_gt.cats[c].get('name', c)) for c in cat_ids]
    return dict(matrix=matrix, classes=names, category_ids=cat_ids)
