"""VarifocalLoss against its definition written out in numpy (float64), its detached negative weight, and
its errors."""
import numpy as np
import pytest
import torch

from det.registry import MODELS


def _reference(pred, target, alpha, gamma):
    """VarifocalNet's eq. 2, summed: positives ``-q (q log p + (1 - q) log(1 - p))``, negatives
    ``-alpha p^gamma log(1 - p)``."""
    x, q = pred.double().numpy(), target.double().numpy()
    p = 1.0 / (1.0 + np.exp(-x))
    bce = -(q * np.log(p) + (1 - q) * np.log(1 - p))
    return np.where(q > 0, q * bce, alpha * p ** gamma * bce).sum()


@pytest.mark.parametrize('alpha,gamma', [(0.75, 2.0), (0.25, 1.5), (1.0, 0.0)])
def test_matches_definition(alpha, gamma):
    gen = torch.Generator().manual_seed(0)
    pred = 3 * torch.randn(12, 5, generator=gen)
    target = torch.zeros(12, 5)
    positives = torch.randint(0, 5, (6,), generator=gen)
    target[torch.arange(6), positives] = torch.rand(6, generator=gen) * 0.9 + 0.05
    loss = MODELS.build(dict(type='VarifocalLoss', alpha=alpha, gamma=gamma, loss_weight=2.0))
    assert loss(pred, target, avg_factor=4.0).item() == pytest.approx(
        2.0 * _reference(pred, target, alpha, gamma) / 4.0, rel=1e-5)
    assert loss(pred, target).item() == pytest.approx(
        2.0 * _reference(pred, target, alpha, gamma) / 12, rel=1e-5)


def test_negative_weight_carries_no_gradient():
    """RT-DETR detaches the score in ``alpha * p^gamma``: a negative's gradient is ``alpha p^gamma * p``
    (the weighted BCE's), not the derivative of the product."""
    pred = torch.tensor([[1.5, -0.5]], requires_grad=True)
    target = torch.tensor([[0.0, 0.6]])
    MODELS.build(dict(type='VarifocalLoss', alpha=0.75, gamma=2.0))(pred, target).backward()
    p = torch.sigmoid(pred.detach())
    assert pred.grad[0, 0].item() == pytest.approx((0.75 * p[0, 0] ** 2 * p[0, 0]).item(), rel=1e-5)
    assert pred.grad[0, 1].item() == pytest.approx((0.6 * (p[0, 1] - 0.6)).item(), rel=1e-5)


def test_shape_mismatch_and_bad_parameters_are_errors():
    loss = MODELS.build(dict(type='VarifocalLoss'))
    with pytest.raises(ValueError, match=r'\[N, C\]'):
        loss(torch.zeros(3, 4), torch.zeros(3))
    with pytest.raises(ValueError, match='alpha >= 0'):
        MODELS.build(dict(type='VarifocalLoss', gamma=-1.0))
