"""det's CrossEntropyLoss with class-probability targets (YOLO v1's class distribution of a cell) against
cross-entropy written out in pure Python, and the label form as its one-hot special case."""
import math

import pytest
import torch

from det.models.losses import CrossEntropyLoss


def test_probability_targets_match_the_formula():
    logits = [[0.5, -1.0, 2.0], [0.0, 0.3, -0.7]]
    targets = [[0.5, 0.0, 0.5], [0.0, 1.0, 0.0]]     # the first cell holds two objects of classes 0 and 2
    expected = 0.0
    for row, dist in zip(logits, targets):
        log_norm = math.log(sum(math.exp(v) for v in row))
        expected -= sum(t * (v - log_norm) for v, t in zip(row, dist))
    loss = CrossEntropyLoss(loss_weight=2.0)(torch.tensor(logits), torch.tensor(targets), avg_factor=4)
    assert loss.item() == pytest.approx(2.0 * expected / 4, rel=1e-6)


def test_one_hot_targets_equal_labels_and_bad_shapes_are_refused():
    logits = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 3, 1, 1, 2])
    loss = CrossEntropyLoss()
    one_hot = torch.nn.functional.one_hot(labels, 4)
    assert loss(logits, one_hot).item() == pytest.approx(loss(logits, labels).item(), rel=1e-6)
    with pytest.raises(ValueError, match=r'\[N, K\]'):
        loss(logits, torch.zeros(5, 3))
