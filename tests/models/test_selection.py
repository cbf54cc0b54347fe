"""The one selection function every head and the multi-view merge use, against references written
from torchvision's ops and plain Python sorting."""
import pytest
import torch
from torchvision.ops import batched_nms

from det.models.utils.selection import TEST_CFG_KEYS, build_selection_cfg, select_detections


def _random_boxes(n: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=gen) * 60
    return torch.cat([xy, xy + 5 + torch.rand(n, 2, generator=gen) * 20], dim=1)


def _reference(candidates: list, boxes: list, cfg: dict):
    """``candidates``: (score, index, label) per candidate in input order; ``boxes[index]`` its box.
    topk by score (Python's sort), strict threshold, torchvision's class-wise NMS, cut."""
    if cfg['topk'] is not None:
        top = sorted(candidates, key=lambda t: -t[0])[:cfg['topk']]
        candidates = [t for t in candidates if t in top]
    candidates = [t for t in candidates if t[0] > cfg['score_thr']]
    ref_boxes = torch.stack([boxes[i] for _, i, _ in candidates])
    ref_scores = torch.tensor([s for s, _, _ in candidates])
    ref_labels = torch.tensor([c for _, _, c in candidates])
    if cfg['nms'] is None:
        keep = torch.tensor(sorted(range(len(candidates)), key=lambda k: -candidates[k][0]))
    else:
        keep = batched_nms(ref_boxes, ref_scores, ref_labels, cfg['nms']['iou_thr'])
    keep = keep[:cfg['max_per_img']]
    return ref_boxes[keep], ref_scores[keep], ref_labels[keep]


@pytest.mark.parametrize('nms', [None, dict(iou_thr=0.5)])
@pytest.mark.parametrize('per_class_boxes', [False, True])
def test_position_class_pairs_match_reference(nms, per_class_boxes):
    """Dense heads and DETR (``[P, 4]`` boxes) and the RoI head (``[P, C, 4]``): every (position,
    class) pair is a candidate."""
    torch.manual_seed(0)
    cfg = dict(score_thr=0.3, nms=nms, max_per_img=7, topk=40)
    boxes = _random_boxes(50 * 3).view(50, 3, 4) if per_class_boxes else _random_boxes(50)
    scores = torch.rand(50, 3)
    out = select_detections(boxes, scores, **cfg)
    flat_boxes = boxes.reshape(-1, 4) if per_class_boxes else boxes.repeat_interleave(3, dim=0)
    pairs = [(scores[p, c].item(), 3 * p + c, c) for p in range(50) for c in range(3)]
    ref_boxes, ref_scores, ref_labels = _reference(pairs, flat_boxes, cfg)
    assert torch.equal(out.bboxes, ref_boxes)
    torch.testing.assert_close(out.scores, ref_scores)
    assert torch.equal(out.labels, ref_labels)


def test_labelled_candidates_match_reference_and_keep_small_boxes_out():
    """Merge and the RPN give one candidate per row with its label (the RPN: the level); boxes smaller
    than ``min_bbox_size`` are dropped as torchvision's ``remove_small_boxes`` does."""
    boxes = _random_boxes(60, seed=1)
    boxes[::7, 2] = boxes[::7, 0] + 0.5                               # 0.5 px wide: below min_bbox_size
    scores = torch.rand(60, generator=torch.Generator().manual_seed(2))
    labels = torch.arange(60) % 4
    cfg = dict(score_thr=0.1, nms=dict(iou_thr=0.4), max_per_img=20, topk=50)
    out = select_detections(boxes, scores, labels, min_bbox_size=1.0, **cfg)
    big = [i for i in range(60) if boxes[i, 2] - boxes[i, 0] >= 1.0]
    candidates = [(scores[i].item(), i, labels[i].item()) for i in range(60)]
    top = sorted(candidates, key=lambda t: -t[0])[:cfg['topk']]
    candidates = [t for t in candidates if t in top and t[1] in big]
    ref = _reference(candidates, boxes, dict(cfg, topk=None))
    assert torch.equal(out.bboxes, ref[0]) and torch.equal(out.labels, ref[2])
    assert (out.bboxes[:, 2] - out.bboxes[:, 0] >= 1.0).all()


def test_threshold_is_exclusive_and_none_switches_a_step_off():
    """``score_thr`` keeps scores strictly above it (a 0 score never passes 0.0, which drops
    CenterNet's non-peak pixels); with every key None all candidates come back, best first, exact ties
    in input order."""
    boxes = _random_boxes(5)
    scores = torch.tensor([0.5, 0.0, 0.25, 0.5, 0.25])
    out = select_detections(boxes, scores, torch.zeros(5, dtype=torch.long), score_thr=0.25)
    assert out.scores.tolist() == [0.5, 0.5]
    out = select_detections(boxes, scores[:, None], score_thr=0.0)
    assert out.scores.tolist() == [0.5, 0.5, 0.25, 0.25]
    out = select_detections(boxes, scores[:, None])
    assert torch.equal(out.bboxes, boxes[[0, 3, 2, 4, 1]])


def test_build_selection_cfg_names_the_bad_key_and_the_cfg():
    assert build_selection_cfg(dict(topk=5), dict(score_thr=0.0, nms=None, max_per_img=1, topk=1)) == dict(
        score_thr=0.0, nms=None, max_per_img=1, topk=5)
    with pytest.raises(KeyError, match=r"train_cfg keys \['iou_thr'\]"):
        build_selection_cfg(dict(iou_thr=0.5), {}, 'train_cfg')
    with pytest.raises(ValueError, match=r"test_cfg\['nms'\]"):
        build_selection_cfg(dict(nms=dict(iou_threshold=0.5)), dict.fromkeys(TEST_CFG_KEYS))
