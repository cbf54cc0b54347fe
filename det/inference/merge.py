"""One set of detections from several views of an image (pyramid scales, flips, slices, models).

Every multi-view path ends here. Inputs are per-view lists: ``boxes`` ``[N_v, 4]`` xyxy pixels of the
original image, ``scores`` ``[N_v]``, ``labels`` ``[N_v]`` (anything ``torch.as_tensor`` takes), plus
optional per-view ``weights``. The output is one ``(boxes float32 [K, 4], scores float32 [K], labels
int64 [K])``, best score first. Boxes of zero area are dropped first, as ensemble-boxes does.

- ``nms``: class-wise NMS (``torchvision.ops.batched_nms`` through the heads' one selection function)
  over all views; weights multiply the scores.
- ``soft_nms``: class-wise soft-NMS (Bodla et al. 2017): the best box is kept and every other box of
  its class has its score decayed by ``1 - IoU`` where IoU > ``iou_thr`` (``decay='linear'``) or by
  ``exp(-IoU^2 / sigma)`` (``'gaussian'``); boxes whose decayed score falls to ``min_score`` or below
  are dropped. The decayed scores are returned. Weights multiply the scores.
- ``wbf``: weighted boxes fusion (Solovyev et al. 2021), as ensemble-boxes' ``weighted_boxes_fusion``
  with ``conf_type='avg'``: boxes of a class, best weighted score first, join the cluster whose fused
  box overlaps them most if that IoU exceeds ``iou_thr``, else start one; a cluster's box is the
  score-weighted mean of its boxes, its score the mean weighted score times
  ``min(V, cluster size) / sum(weights)`` over V views, so an object found by few views scores low.

ensemble-boxes divides NMS and soft-NMS scores by the sum of the weights; pass ``w / sum(w)`` here for
its numbers (scores are otherwise left as they are, so score thresholds keep their meaning).
"""
import numpy as np
import torch

from det.models.utils.selection import select_detections

METHODS = ('nms', 'soft_nms', 'wbf')


def merge_detections(boxes_list, scores_list, labels_list, method: str = 'nms', **kwargs) -> tuple:
    """Dispatch on ``method`` ('nms' | 'soft_nms' | 'wbf'); ``kwargs`` go to that function (e.g.
    ``iou_thr``, ``weights``), so a config ``merge_cfg=dict(method='wbf', iou_thr=0.55)`` reads
    ``merge_detections(b, s, l, **merge_cfg)``."""
    functions = dict(nms=nms, soft_nms=soft_nms, wbf=weighted_boxes_fusion)
    if method not in functions:
        raise ValueError(f'merge method must be one of {METHODS}, got {method!r}')
    return functions[method](boxes_list, scores_list, labels_list, **kwargs)


def _concat(boxes_list, scores_list, labels_list, weights) -> tuple:
    """All views stacked: boxes float64 [N, 4], scores float64 [N] (times their view's weight), labels
    int64 [N], view index int64 [N]; zero-area boxes removed."""
    if not len(boxes_list) == len(scores_list) == len(labels_list):
        raise ValueError(f'got {len(boxes_list)} box, {len(scores_list)} score and {len(labels_list)} '
                         'label lists; give one of each per view')
    if weights is not None and len(weights) != len(boxes_list):
        raise ValueError(f'{len(weights)} weights for {len(boxes_list)} views')
    boxes, scores, labels, views = [], [], [], []
    for v, (b, s, lab) in enumerate(zip(boxes_list, scores_list, labels_list)):
        b = torch.as_tensor(b).detach().cpu().double().reshape(-1, 4).numpy()
        s = torch.as_tensor(s).detach().cpu().double().reshape(-1).numpy()
        lab = torch.as_tensor(lab).detach().cpu().long().reshape(-1).numpy()
        if not len(b) == len(s) == len(lab):
            raise ValueError(f'view {v}: {len(b)} boxes, {len(s)} scores, {len(lab)} labels')
        boxes.append(b)
        scores.append(s * (1.0 if weights is None else float(weights[v])))
        labels.append(lab)
        views.append(np.full(len(b), v, dtype=np.int64))
    boxes = np.concatenate(boxes) if boxes else np.zeros((0, 4))
    scores = np.concatenate(scores) if scores else np.zeros(0)
    labels = np.concatenate(labels) if labels else np.zeros(0, np.int64)
    views = np.concatenate(views) if views else np.zeros(0, np.int64)
    valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes[valid], scores[valid], labels[valid], views[valid]


def _result(boxes, scores, labels) -> tuple:
    """float32 / int64 tensors sorted by score, best first."""
    order = np.argsort(-np.asarray(scores), kind='stable')
    return (torch.from_numpy(np.asarray(boxes, np.float32).reshape(-1, 4)[order]),
            torch.from_numpy(np.asarray(scores, np.float32)[order]),
            torch.from_numpy(np.asarray(labels, np.int64)[order]))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU ``[N, M]`` of xyxy boxes ``a`` [N, 4] and ``b`` [M, 4]."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def nms(boxes_list, scores_list, labels_list, iou_thr: float = 0.5, weights=None) -> tuple:
    """Class-wise NMS over the views' boxes (the heads' :func:`select_detections` with only its ``nms``
    step): a box is dropped when a better box of its class overlaps it with IoU > ``iou_thr``."""
    boxes, scores, labels, _ = _concat(boxes_list, scores_list, labels_list, weights)
    kept = select_detections(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(labels),
                             nms=dict(iou_thr=iou_thr))
    return _result(kept.bboxes.numpy(), kept.scores.numpy(), kept.labels.numpy())


def soft_nms(boxes_list, scores_list, labels_list, iou_thr: float = 0.5, sigma: float = 0.5,
             min_score: float = 0.001, decay: str = 'gaussian', weights=None) -> tuple:
    """Class-wise soft-NMS (see the module doc); returns the kept boxes with their decayed scores."""
    if decay not in ('linear', 'gaussian'):
        raise ValueError(f"soft-NMS decay must be 'linear' or 'gaussian', got {decay!r}")
    boxes, scores, labels, _ = _concat(boxes_list, scores_list, labels_list, weights)
    kept, kept_scores = [], []
    for label in np.unique(labels):
        index = np.flatnonzero(labels == label)
        iou = box_iou(boxes[index], boxes[index])
        current = scores[index].copy()
        remaining = np.arange(len(index))
        while remaining.size:
            best = remaining[np.argmax(current[remaining])]
            if current[best] <= min_score:   # every remaining score is as low: all dropped
                break
            kept.append(index[best])
            kept_scores.append(current[best])
            remaining = remaining[remaining != best]
            overlap = iou[best, remaining]
            if decay == 'linear':
                current[remaining] *= np.where(overlap > iou_thr, 1.0 - overlap, 1.0)
            else:
                current[remaining] *= np.exp(-overlap ** 2 / sigma)
    kept = np.asarray(kept, dtype=np.int64)
    return _result(boxes[kept], kept_scores, labels[kept])


def weighted_boxes_fusion(boxes_list, scores_list, labels_list, iou_thr: float = 0.55,
                          weights=None) -> tuple:
    """Weighted boxes fusion of the views (see the module doc): one fused box per cluster."""
    num_views = len(boxes_list)
    weight_sum = float(num_views if weights is None else np.sum(weights))
    boxes, scores, labels, _ = _concat(boxes_list, scores_list, labels_list, weights)
    out_boxes, out_scores, out_labels = [], [], []
    for label in np.unique(labels):
        index = np.flatnonzero(labels == label)
        index = index[np.argsort(-scores[index], kind='stable')]
        fused = np.zeros((len(index), 4))        # fused box of each cluster
        box_sum = np.zeros((len(index), 4))      # sum of score * box
        score_sum = np.zeros(len(index))
        count = np.zeros(len(index))
        k = 0
        for i in index:
            j = -1
            if k:
                iou = box_iou(boxes[i:i + 1], fused[:k])[0]
                j = int(np.argmax(iou))
                j = j if iou[j] > iou_thr else -1
            if j < 0:
                j, k = k, k + 1
            box_sum[j] += scores[i] * boxes[i]
            score_sum[j] += scores[i]
            count[j] += 1
            fused[j] = boxes[i] if count[j] == 1 else box_sum[j] / score_sum[j]
        out_boxes.append(fused[:k])
        out_scores.append(score_sum[:k] / count[:k] * np.minimum(num_views, count[:k]) / weight_sum)
        out_labels.append(np.full(k, label, dtype=np.int64))
    if not out_boxes:
        return _result(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64))
    return _result(np.concatenate(out_boxes), np.concatenate(out_scores), np.concatenate(out_labels))
