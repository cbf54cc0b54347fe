"""The one loss reduction, against torch's own reductions, and the losses that use it."""
import pytest
import torch
import torch.nn.functional as F

import det.models  # noqa: F401  (registers the modules)
from det.models.losses.utils import weight_reduce_loss
from det.registry import MODELS


def test_reductions_match_torch():
    pred, target = torch.randn(6, 4), torch.randn(6, 4)
    loss = (pred - target).abs()
    weight = torch.rand(6, 1)
    torch.testing.assert_close(weight_reduce_loss(loss), F.l1_loss(pred, target))
    torch.testing.assert_close(weight_reduce_loss(loss, reduction='sum'),
                               F.l1_loss(pred, target, reduction='sum'))
    torch.testing.assert_close(weight_reduce_loss(loss, weight, reduction='none'), loss * weight)
    torch.testing.assert_close(weight_reduce_loss(loss, weight, avg_factor=3.0), (loss * weight).sum() / 3.0)
    with pytest.raises(ValueError, match='avg_factor'):
        weight_reduce_loss(loss, avg_factor=2.0, reduction='sum')
    with pytest.raises(ValueError, match='reduction'):
        weight_reduce_loss(loss, reduction='avg')


@pytest.mark.parametrize('cfg', [dict(type='L1Loss'), dict(type='MSELoss'), dict(type='SmoothL1Loss'),
                                 dict(type='GIoULoss'), dict(type='BinaryCrossEntropyLoss')])
def test_empty_pred_with_avg_factor_is_an_exact_zero_in_the_graph(cfg):
    """A box loss without positives: exactly 0, and backward still runs."""
    pred = torch.zeros(0, 4, requires_grad=True)
    loss = MODELS.build(dict(cfg, loss_weight=2.0))(pred, torch.zeros(0, 4), avg_factor=5)
    assert loss.item() == 0 and loss.requires_grad
    loss.backward()
    assert pred.grad.shape == (0, 4)


def test_smooth_l1_weighted_matches_torch():
    pred, target, weight = torch.randn(8, 4), torch.randn(8, 4), torch.rand(8, 1)
    loss = MODELS.build(dict(type='SmoothL1Loss', beta=1 / 9, loss_weight=3.0))(pred, target, weight, 4.0)
    expected = 3.0 * (F.smooth_l1_loss(pred, target, beta=1 / 9, reduction='none') * weight).sum() / 4.0
    torch.testing.assert_close(loss, expected)
