"""HungarianMatcher against brute force over every assignment, on small cases computed independently
(numpy costs from the definitions; torchvision only for GIoU)."""
import itertools

import numpy as np
import pytest
import torch
from torchvision.ops import box_convert, generalized_box_iou

from det.registry import TASK_UTILS


def _random_case(gen, num_queries, num_gts, num_classes=4):
    logits = torch.randn(num_queries, num_classes + 1, generator=gen)
    centres = 0.2 + 0.6 * torch.rand(num_queries + num_gts, 2, generator=gen)
    sizes = 0.05 + 0.3 * torch.rand(num_queries + num_gts, 2, generator=gen)
    boxes = torch.cat([centres, sizes], dim=1)
    labels = torch.randint(0, num_classes, (num_gts,), generator=gen)
    return logits, boxes[:num_queries], labels, boxes[num_queries:]


def _focal_class_cost(logits, labels, alpha=0.25, gamma=2.0):
    """Deformable DETR's focal matching cost, written out with numpy."""
    p = 1.0 / (1.0 + np.exp(-logits.double().numpy()[:, labels.numpy()]))
    return alpha * (1 - p) ** gamma * -np.log(p) - (1 - alpha) * p ** gamma * -np.log(1 - p)


def _brute_force(logits, pred, labels, gts, weights=(1.0, 5.0, 2.0), focal=False):
    """Least-cost injective map ground truth -> query, by enumerating every one; cost terms written out
    from the paper's definitions with numpy."""
    class_cost = (_focal_class_cost(logits, labels) if focal
                  else -torch.softmax(logits.double(), -1).numpy()[:, labels.numpy()])
    p, g = pred.double().numpy(), gts.double().numpy()
    giou = generalized_box_iou(box_convert(pred.double(), 'cxcywh', 'xyxy'),
                               box_convert(gts.double(), 'cxcywh', 'xyxy')).numpy()
    cost = (weights[0] * class_cost + weights[1] * np.abs(p[:, None] - g[None]).sum(-1)
            - weights[2] * giou)
    best, best_cost = None, np.inf
    for queries in itertools.permutations(range(len(p)), len(g)):
        total = sum(cost[q, j] for j, q in enumerate(queries))
        if total < best_cost - 1e-12:
            best, best_cost = queries, total
    return best, best_cost, cost


@pytest.mark.reference
@pytest.mark.parametrize('num_queries,num_gts', [(5, 1), (5, 3), (6, 4), (4, 4), (7, 5)])
def test_matches_brute_force(num_queries, num_gts):
    gen = torch.Generator().manual_seed(num_queries * 10 + num_gts)
    matcher = TASK_UTILS.build(dict(type='HungarianMatcher'))
    cases = [_random_case(gen, num_queries, num_gts), _random_case(gen, num_queries, max(1, num_gts - 1))]
    logits = torch.stack([c[0] for c in cases])
    pred = torch.stack([c[1] for c in cases])
    matches = matcher(logits, pred, [c[2] for c in cases], [c[3] for c in cases])
    for (logit, boxes, labels, gts), (q_idx, g_idx) in zip(cases, matches):
        best, best_cost, cost = _brute_force(logit, boxes, labels, gts)
        assert len(q_idx) == len(g_idx) == len(gts)
        assert torch.equal(q_idx, q_idx.sort().values)
        assert sorted(g_idx.tolist()) == list(range(len(gts)))
        got_cost = sum(cost[q, g] for q, g in zip(q_idx.tolist(), g_idx.tolist()))
        assert got_cost == pytest.approx(best_cost, abs=1e-6)
        assert {g: q for q, g in zip(q_idx.tolist(), g_idx.tolist())} == dict(enumerate(best))


@pytest.mark.reference
@pytest.mark.parametrize('num_queries,num_gts', [(5, 3), (6, 4), (7, 5)])
def test_focal_class_cost_matches_brute_force(num_queries, num_gts):
    """``class_cost_type='focal'`` (sigmoid logits, no "no object" column), RT-DETR's weights 2 / 5 / 2."""
    gen = torch.Generator().manual_seed(100 + num_queries * 10 + num_gts)
    logits, boxes, labels, gts = _random_case(gen, num_queries, num_gts)
    logits = 2 * logits[:, :-1]
    matcher = TASK_UTILS.build(dict(type='HungarianMatcher', class_cost=2.0, class_cost_type='focal'))
    (q_idx, g_idx), = matcher(logits[None], boxes[None], [labels], [gts])
    best, best_cost, cost = _brute_force(logits, boxes, labels, gts, weights=(2.0, 5.0, 2.0), focal=True)
    got_cost = sum(cost[q, g] for q, g in zip(q_idx.tolist(), g_idx.tolist()))
    assert got_cost == pytest.approx(best_cost, abs=1e-6)
    assert {g: q for q, g in zip(q_idx.tolist(), g_idx.tolist())} == dict(enumerate(best))


def test_unknown_class_cost_type_is_an_error():
    with pytest.raises(ValueError, match="'probability', 'focal'"):
        TASK_UTILS.build(dict(type='HungarianMatcher', class_cost_type='sigmoid'))


def test_cost_weights_are_used():
    """A class-only matcher assigns each ground truth to the query most confident in its class."""
    logits = torch.full((1, 3, 3), -5.0)
    logits[0, 0, 1] = logits[0, 2, 0] = 5.0                 # query 0 says class 1, query 2 says class 0
    boxes = torch.tensor([[[0.5, 0.5, 0.2, 0.2]] * 3])
    matcher = TASK_UTILS.build(dict(type='HungarianMatcher', class_cost=1.0, bbox_cost=0.0, giou_cost=0.0))
    (q, g), = matcher(logits, boxes, [torch.tensor([0, 1])], [torch.tensor([[0.5, 0.5, 0.2, 0.2]] * 2)])
    assert dict(zip(g.tolist(), q.tolist())) == {0: 2, 1: 0}


def test_empty_targets_match_nothing():
    gen = torch.Generator().manual_seed(0)
    logits, boxes, labels, gts = _random_case(gen, 5, 2)
    matcher = TASK_UTILS.build(dict(type='HungarianMatcher'))
    matches = matcher(torch.stack([logits, logits]), torch.stack([boxes, boxes]),
                      [torch.zeros(0, dtype=torch.long), labels], [torch.zeros(0, 4), gts])
    assert matches[0][0].numel() == matches[0][1].numel() == 0
    assert len(matches[1][0]) == 2
    all_empty = matcher(logits[None], boxes[None], [torch.zeros(0, dtype=torch.long)], [torch.zeros(0, 4)])
    assert all_empty[0][0].numel() == 0 and all_empty[0][0].dtype == torch.long


def test_more_targets_than_queries_is_an_error():
    gen = torch.Generator().manual_seed(0)
    logits, boxes, labels, gts = _random_case(gen, 3, 4)
    matcher = TASK_UTILS.build(dict(type='HungarianMatcher'))
    with pytest.raises(ValueError, match='more ground-truth boxes than the 3 queries'):
        matcher(logits[None], boxes[None], [labels], [gts])


def test_bad_input_is_an_error():
    matcher = TASK_UTILS.build(dict(type='HungarianMatcher'))
    boxes = torch.tensor([[[0.5, 0.5, 0.2, 0.2]]])
    with pytest.raises(ValueError, match='NaN or inf'):
        nan_box = torch.tensor([[float('nan'), 0.5, 0.1, 0.1]])
        matcher(torch.zeros(1, 1, 3), boxes, [torch.tensor([0])], [nan_box])
    with pytest.raises(ValueError, match='1 images of predictions'):
        matcher(torch.zeros(1, 1, 3), boxes, [], [])
    with pytest.raises(ValueError, match='non-zero cost'):
        TASK_UTILS.build(dict(type='HungarianMatcher', class_cost=0, bbox_cost=0, giou_cost=0))
