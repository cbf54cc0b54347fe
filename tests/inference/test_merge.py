"""det.inference.merge against ensemble-boxes (ZFTurbo's reference implementation of WBF, NMS and
soft-NMS) on random multi-view cases. ensemble-boxes works on [0, 1] coordinates, so the pixel boxes
are normalised for it; IoU does not change under that per-axis scaling."""
import numpy as np
import pytest
import torch

from det.inference.merge import merge_detections, nms, soft_nms, weighted_boxes_fusion

ensemble_boxes = pytest.importorskip(
    'ensemble_boxes', reason='ensemble-boxes is the reference for merging; pip install ensemble-boxes')

W, H = 640, 480
SCALE = np.array([W, H, W, H], dtype=np.float64)


def random_views(seed: int, num_views: int, num_objects: int = 12, num_classes: int = 3) -> tuple:
    """Per-view (boxes xyxy pixels, scores, labels) and weights: each view sees a random subset of
    ``num_objects`` objects with jittered boxes (so boxes overlap across and within views) plus a few
    spurious boxes; one view may be empty."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, [W - 120, H - 120], (num_objects, 2))
    objects = np.concatenate([xy, xy + rng.uniform(10, 120, (num_objects, 2))], 1)
    classes = rng.integers(0, num_classes, num_objects)
    boxes_list, scores_list, labels_list = [], [], []
    for _ in range(num_views):
        seen = rng.random(num_objects) < 0.7
        boxes = objects[seen] + rng.normal(0, 6, (seen.sum(), 4))
        labels = classes[seen]
        extra = rng.integers(0, 4)
        exy = rng.uniform(0, [W - 60, H - 60], (extra, 2))
        boxes = np.concatenate([boxes, np.concatenate([exy, exy + rng.uniform(5, 60, (extra, 2))], 1)])
        labels = np.concatenate([labels, rng.integers(0, num_classes, extra)])
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, W)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, H)
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        if rng.random() < 0.1:
            boxes, labels = boxes[:0], labels[:0]
        boxes_list.append(boxes)
        scores_list.append(rng.uniform(0.01, 1.0, len(boxes)))
        labels_list.append(labels)
    weights = rng.uniform(0.5, 2.0, num_views) if seed % 2 else None
    return boxes_list, scores_list, labels_list, weights


def normalised(boxes_list):
    return [b / SCALE for b in boxes_list]


def by_label_then_score(boxes, scores, labels) -> tuple:
    """Rows sorted by label, then score descending (scores are distinct floats)."""
    boxes, scores, labels = (np.asarray(x, dtype=np.float64) for x in (boxes, scores, labels))
    order = np.lexsort((-scores, labels))
    return boxes.reshape(-1, 4)[order], scores[order], labels[order]


def assert_same_detections(ours: tuple, ref: tuple) -> None:
    """Our (boxes in pixels, scores, labels) tensors and the reference's (boxes in [0, 1]) arrays hold
    the same rows, compared by label then score."""
    ours = by_label_then_score(ours[0].numpy() / SCALE, ours[1].numpy(), ours[2].numpy())
    ref = by_label_then_score(*ref)
    assert len(ours[0]) == len(ref[0])
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, atol=1e-5)


CASES = [(seed, 1 + seed % 4) for seed in range(12)]


@pytest.mark.reference
@pytest.mark.parametrize('seed, num_views', CASES)
def test_wbf_matches_ensemble_boxes(seed, num_views):
    boxes_list, scores_list, labels_list, weights = random_views(seed, num_views)
    ours = weighted_boxes_fusion(boxes_list, scores_list, labels_list, iou_thr=0.55, weights=weights)
    ref = ensemble_boxes.weighted_boxes_fusion(normalised(boxes_list), scores_list, labels_list,
                                               weights=weights, iou_thr=0.55, skip_box_thr=0.0)
    assert ours[0].dtype == torch.float32 and ours[2].dtype == torch.int64
    assert torch.all(ours[1][:-1] >= ours[1][1:])
    assert_same_detections(ours, ref)


@pytest.mark.reference
@pytest.mark.parametrize('seed, num_views', CASES)
def test_nms_matches_ensemble_boxes(seed, num_views):
    boxes_list, scores_list, labels_list, weights = random_views(seed, num_views)
    ours = nms(boxes_list, scores_list, labels_list, iou_thr=0.4,
               weights=None if weights is None else weights / weights.sum())
    ref = ensemble_boxes.nms(normalised(boxes_list), [s.copy() for s in scores_list], labels_list,
                             iou_thr=0.4, weights=weights)
    assert_same_detections(ours, ref)


@pytest.mark.reference
@pytest.mark.parametrize('decay, ref_method', [('linear', 1), ('gaussian', 2)])
@pytest.mark.parametrize('seed, num_views', CASES[:8])
def test_soft_nms_matches_ensemble_boxes(seed, num_views, decay, ref_method):
    """Same kept boxes as ensemble-boxes. It returns the kept boxes' undecayed scores, class by class
    in selection order; the decayed score of the k-th kept box is its score times the decay by every
    box selected before it, computed here from that order."""
    boxes_list, scores_list, labels_list, weights = random_views(seed, num_views)
    iou_thr, sigma, min_score = 0.3, 0.5, 0.05
    ours = soft_nms(boxes_list, scores_list, labels_list, iou_thr=iou_thr, sigma=sigma, min_score=min_score,
                    decay=decay, weights=None if weights is None else weights / weights.sum())
    ref_boxes, ref_scores, ref_labels = ensemble_boxes.soft_nms(
        normalised(boxes_list), [s.copy() for s in scores_list], labels_list, method=ref_method,
        iou_thr=iou_thr, sigma=sigma, thresh=min_score, weights=weights)
    decayed = ref_scores.copy()
    for label in np.unique(ref_labels):
        idx = np.flatnonzero(ref_labels == label)
        for k in range(len(idx)):
            for j in range(k):
                a, b = ref_boxes[idx[j]] * SCALE, ref_boxes[idx[k]] * SCALE
                inter = (max(0, min(a[2], b[2]) - max(a[0], b[0]))
                         * max(0, min(a[3], b[3]) - max(a[1], b[1])))
                iou = inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
                if decay == 'linear':
                    decayed[idx[k]] *= 1 - iou if iou > iou_thr else 1.0
                else:
                    decayed[idx[k]] *= np.exp(-iou ** 2 / sigma)
    assert_same_detections(ours, (ref_boxes, decayed, ref_labels))


def test_wbf_of_identical_views_is_the_view():
    """Views that agree fuse to themselves, with their scores, when no two boxes of a class overlap."""
    boxes = torch.tensor([[10., 10., 50., 40.], [60., 10., 90., 70.], [15., 12., 48., 41.]])
    scores, labels = torch.tensor([0.9, 0.6, 0.3]), torch.tensor([0, 0, 1])
    out = weighted_boxes_fusion([boxes] * 3, [scores] * 3, [labels] * 3)
    torch.testing.assert_close(out[0], boxes)
    torch.testing.assert_close(out[1], scores)
    torch.testing.assert_close(out[2], labels)


@pytest.mark.parametrize('method', ['nms', 'soft_nms', 'wbf'])
def test_empty_views_give_empty_results(method):
    empty = (torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long))
    boxes, scores, labels = merge_detections(*[[x, x] for x in empty], method=method)
    assert boxes.shape == (0, 4) and scores.shape == (0,) and labels.shape == (0,)


def test_unknown_method_is_an_error():
    with pytest.raises(ValueError, match="'nms', 'soft_nms', 'wbf'"):
        merge_detections([], [], [], method='vote')
