"""HungarianMatcher's position-modulated class cost (Stable-DINO, ``iou_modulation``) against a cost
written out independently per image with numpy, assigned by brute force over every assignment and by
scipy's ``linear_sum_assignment``; and a case where the modulation changes the match."""
import itertools

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from torchvision.ops import box_convert, generalized_box_iou

from det.registry import TASK_UTILS


def _modulated_cost(logits, pred, labels, gts, beta, focal, weights=(2.0, 5.0, 2.0), alpha=0.25, gamma=2.0):
    """One image: ``p * u^beta`` with ``u = (GIoU + 1) / 2`` scaled so the image's largest u is 1, in the
    focal (or probability) class cost, plus L1 and -GIoU; numpy float64."""
    giou = generalized_box_iou(box_convert(pred.double(), 'cxcywh', 'xyxy'),
                               box_convert(gts.double(), 'cxcywh', 'xyxy')).numpy()
    u = (giou + 1) / 2
    u = u * max(1.0, 1.0 / u.max())
    x = logits.double().numpy()
    if focal:
        p = 1 / (1 + np.exp(-x[:, labels.numpy()])) * u ** beta
        class_cost = alpha * (1 - p) ** gamma * -np.log(p) - (1 - alpha) * p ** gamma * -np.log(1 - p)
    else:
        soft = np.exp(x) / np.exp(x).sum(-1, keepdims=True)
        class_cost = -soft[:, labels.numpy()] * u ** beta
    l1 = np.abs(pred.double().numpy()[:, None] - gts.double().numpy()[None]).sum(-1)
    return weights[0] * class_cost + weights[1] * l1 - weights[2] * giou


def _brute_force(cost):
    """Least-cost injective map ground truth -> query, sorted by query, by enumerating every one."""
    best = min(itertools.permutations(range(cost.shape[0]), cost.shape[1]),
               key=lambda queries: sum(cost[q, j] for j, q in enumerate(queries)))
    return sorted(zip(best, range(cost.shape[1])))


@pytest.mark.parametrize('focal', [True, False])
@pytest.mark.parametrize('beta', [0.5, 2.0])
def test_equals_brute_force_and_scipy_per_image(focal, beta):
    gen = torch.Generator().manual_seed(3)
    num_queries, num_classes, sizes = 5, 3, [3, 2]
    outputs = num_classes if focal else num_classes + 1
    logits = torch.randn(2, num_queries, outputs, generator=gen)
    pred = torch.cat([0.2 + 0.6 * torch.rand(2, num_queries, 2, generator=gen),
                      0.05 + 0.3 * torch.rand(2, num_queries, 2, generator=gen)], -1)
    labels = [torch.randint(0, num_classes, (n,), generator=gen) for n in sizes]
    gts = [torch.cat([0.2 + 0.6 * torch.rand(n, 2, generator=gen),
                      0.05 + 0.3 * torch.rand(n, 2, generator=gen)], -1) for n in sizes]
    matcher = TASK_UTILS.build(dict(type='HungarianMatcher', class_cost=2.0, iou_modulation=beta,
                                    class_cost_type='focal' if focal else 'probability'))
    matches = matcher(logits, pred, labels, gts)
    for b in range(2):
        cost = _modulated_cost(logits[b], pred[b], labels[b], gts[b], beta, focal)
        expected = _brute_force(cost)
        rows, cols = linear_sum_assignment(cost)
        assert sorted(zip(rows.tolist(), cols.tolist())) == expected
        assert list(zip(matches[b][0].tolist(), matches[b][1].tolist())) == expected


def test_modulation_prefers_the_well_placed_query():
    """Query 0 is confident but its box is off; query 1 is less confident but on the ground truth. The
    plain focal class cost (class weight only) picks query 0, the position-modulated one query 1."""
    logits = torch.tensor([[[3.0], [0.5]]])
    pred = torch.tensor([[[0.3, 0.3, 0.2, 0.2], [0.62, 0.6, 0.2, 0.2]]])
    gt_labels, gt_boxes = [torch.tensor([0])], [torch.tensor([[0.6, 0.6, 0.2, 0.2]])]
    common = dict(type='HungarianMatcher', class_cost=1.0, bbox_cost=0.0, giou_cost=0.0,
                  class_cost_type='focal')
    plain = TASK_UTILS.build(common)(logits, pred, gt_labels, gt_boxes)
    modulated = TASK_UTILS.build(dict(common, iou_modulation=2.0))(logits, pred, gt_labels, gt_boxes)
    assert plain[0][0].tolist() == [0] and modulated[0][0].tolist() == [1]


def test_empty_targets_and_bad_value():
    matcher = TASK_UTILS.build(dict(type='HungarianMatcher', class_cost_type='focal', iou_modulation=0.5))
    matches = matcher(torch.randn(2, 4, 3), torch.rand(2, 4, 4) * 0.5 + 0.1,
                      [torch.zeros(0, dtype=torch.long), torch.tensor([1])],
                      [torch.zeros(0, 4), torch.tensor([[0.5, 0.5, 0.2, 0.2]])])
    assert matches[0][0].numel() == 0 and matches[1][1].tolist() == [0]
    with pytest.raises(ValueError, match='iou_modulation must be >= 0'):
        TASK_UTILS.build(dict(type='HungarianMatcher', iou_modulation=-1.0))
