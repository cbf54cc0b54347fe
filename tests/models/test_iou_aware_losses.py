"""The IoU-aware classification losses of DEIM (MatchabilityAwareLoss) and Stable-DINO
(PositionSupervisedLoss) against their papers' formulas written out element by element with
``binary_cross_entropy_with_logits``, the direction of their gradients, and how they differ from the
varifocal loss."""
import pytest
import torch
import torch.nn.functional as F

import det.models  # noqa: F401  (registers every module)
from det.registry import MODELS

# Three queries x two classes: query 0 matched in class 1 with IoU 0.6, query 1 matched in class 0 with
# IoU 0.3, query 2 unmatched.
LOGITS = torch.tensor([[0.4, -0.2], [1.3, 2.0], [-1.0, 0.7]])
IOUS = torch.tensor([[0.0, 0.6], [0.3, 0.0], [0.0, 0.0]])


def _bce(logit: float, target: float) -> float:
    return F.binary_cross_entropy_with_logits(torch.tensor(logit), torch.tensor(target)).item()


def _mal_by_hand(alpha, gamma):
    """DEIM eq. 6: positives ``-(q^g log p + (1 - q^g) log(1 - p))``, negatives ``-alpha p^g log(1 - p)``."""
    total = 0.0
    for i in range(3):
        for c in range(2):
            x, q = LOGITS[i, c].item(), IOUS[i, c].item()
            p = torch.sigmoid(torch.tensor(x)).item()
            total += _bce(x, q ** gamma) if q > 0 else alpha * p ** gamma * _bce(x, 0.0)
    return total


def _psl_by_hand(alpha, gamma, power, rescale):
    """Stable-DINO: positives ``alpha |t - p|^g BCE(p, t)`` with ``t = IoU^power`` (divided by the largest
    t when rescaled), negatives ``(1 - alpha) p^g BCE(p, 0)``."""
    peak = max(q ** power for q in IOUS.flatten().tolist()) if rescale else 1.0
    total = 0.0
    for i in range(3):
        for c in range(2):
            x, q = LOGITS[i, c].item(), IOUS[i, c].item()
            p = torch.sigmoid(torch.tensor(x)).item()
            if q > 0:
                t = q ** power / peak
                total += alpha * abs(t - p) ** gamma * _bce(x, t)
            else:
                total += (1 - alpha) * p ** gamma * _bce(x, 0.0)
    return total


@pytest.mark.parametrize('alpha,gamma', [(1.0, 1.5), (0.75, 2.0)])
def test_mal_equals_the_paper_formula(alpha, gamma):
    loss = MODELS.build(dict(type='MatchabilityAwareLoss', alpha=alpha, gamma=gamma, loss_weight=2.0))
    assert loss(LOGITS, IOUS, avg_factor=2.0).item() == pytest.approx(2.0 * _mal_by_hand(alpha, gamma) / 2,
                                                                      rel=1e-5)
    assert loss(LOGITS, IOUS).item() == pytest.approx(2.0 * _mal_by_hand(alpha, gamma) / 3, rel=1e-5)


@pytest.mark.parametrize('alpha,gamma,power,rescale', [(0.25, 2.0, 2.0, True), (0.25, 2.0, 2.0, False),
                                                        (0.5, 1.0, 1.0, True)])
def test_psl_equals_the_paper_formula(alpha, gamma, power, rescale):
    loss = MODELS.build(dict(type='PositionSupervisedLoss', alpha=alpha, gamma=gamma, iou_power=power,
                             rescale=rescale, loss_weight=6.0))
    expected = 6.0 * _psl_by_hand(alpha, gamma, power, rescale) / 2
    assert loss(LOGITS, IOUS, avg_factor=2.0).item() == pytest.approx(expected, rel=1e-5)


def test_psl_rescales_per_image():
    """As ``[B, Q, C]`` each image's best target becomes 1; as ``[N, C]`` only the batch's best does."""
    loss = MODELS.build(dict(type='PositionSupervisedLoss'))
    logits, ious = LOGITS.view(1, 3, 2).repeat(2, 1, 1), IOUS.view(1, 3, 2).repeat(2, 1, 1)
    ious[1] *= 0.5                                       # image 1's IoUs halved
    per_image = loss(logits, ious, avg_factor=1.0)
    # per image, image 1's targets rescale to image 0's: twice the loss of image 0
    assert per_image.item() == pytest.approx(2 * loss(logits[:1], ious[:1], avg_factor=1.0).item(), rel=1e-5)
    assert loss(logits.flatten(0, 1), ious.flatten(0, 1), avg_factor=1.0).item() != pytest.approx(
        per_image.item(), rel=1e-3)


@pytest.mark.parametrize('cfg', [dict(type='MatchabilityAwareLoss'), dict(type='PositionSupervisedLoss'),
                                 dict(type='PositionSupervisedLoss', rescale=False)])
def test_gradient_pushes_towards_the_target(cfg):
    """A gradient step moves every score towards its target: positives below / above their target up /
    down, negatives down."""
    loss = MODELS.build(cfg)
    logits = torch.tensor([[-2.0, 0.5], [3.0, 1.0]], requires_grad=True)
    ious = torch.tensor([[0.8, 0.0], [0.5, 0.0]])      # two positives, two negatives
    loss(logits, ious).backward()
    if cfg['type'] == 'MatchabilityAwareLoss':
        goal = ious ** 1.5
    else:
        goal = ious ** 2
        goal = goal / goal.max() if cfg.get('rescale', True) else goal
    after = (logits - 0.5 * logits.grad).sigmoid()
    before = logits.detach().sigmoid()
    assert ((after - goal).abs() < (before - goal).abs()).all()


def test_positive_mask_keeps_a_zero_iou_match_positive():
    """DEIM trains a matched query whose box misses (IoU 0) towards 0 with weight 1, not as a down-weighted
    negative: passing ``positive`` gives that; without it the entry counts as a negative."""
    loss = MODELS.build(dict(type='MatchabilityAwareLoss'))
    logits, ious = torch.tensor([[1.0, -1.0]]), torch.zeros(1, 2)
    positive = torch.tensor([[True, False]])
    p = torch.sigmoid(torch.tensor([1.0, -1.0]))
    assert loss(logits, ious, positive=positive).item() == pytest.approx(
        _bce(1.0, 0.0) + p[1].item() ** 1.5 * _bce(-1.0, 0.0), rel=1e-5)
    assert loss(logits, ious).item() == pytest.approx(
        p[0].item() ** 1.5 * _bce(1.0, 0.0) + p[1].item() ** 1.5 * _bce(-1.0, 0.0), rel=1e-5)


def test_both_differ_from_varifocal():
    """On the same targets neither is the varifocal loss (VFL weights a positive by its IoU)."""
    vfl = MODELS.build(dict(type='VarifocalLoss'))(LOGITS, IOUS).item()
    for cfg in (dict(type='MatchabilityAwareLoss'), dict(type='PositionSupervisedLoss')):
        assert MODELS.build(cfg)(LOGITS, IOUS).item() != pytest.approx(vfl, rel=1e-2)


@pytest.mark.parametrize('name', ['MatchabilityAwareLoss', 'PositionSupervisedLoss', 'VarifocalLoss'])
def test_bad_input_is_an_error(name):
    """A shape mismatch and a negative target (a GIoU passed for an IoU) name the loss."""
    loss = MODELS.build(dict(type=name))
    with pytest.raises(ValueError, match=f'{name}: pred and target must both be'):
        loss(torch.zeros(3, 2), torch.zeros(3))
    with pytest.raises(ValueError, match=rf'{name} targets are IoUs in \[0, 1\]'):
        loss(torch.zeros(3, 2), torch.full((3, 2), -0.5))
    with pytest.raises(ValueError, match='needs'):
        MODELS.build(dict(type=name, gamma=-1.0))
