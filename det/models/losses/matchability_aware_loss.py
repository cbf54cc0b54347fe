"""Matchability-aware loss (MAL; Huang et al., *DEIM: DETR with Improved Matching for Fast Convergence*,
CVPR 2025, arXiv 2412.04234, sec. 3.3): the IoU-aware classification of DEIM's dense one-to-one matching.
Unlike the varifocal loss it does not scale a positive's loss by its IoU q, so low-quality matches (the
many extra positives of dense matching) still train; their score target is ``q ** gamma`` instead."""
import torch
import torch.nn.functional as F
from torch import nn

from det.registry import MODELS

from .utils import check_iou_targets, weight_reduce_loss


@MODELS.register_module()
class MatchabilityAwareLoss(nn.Module):
    """``loss_weight * sum(w * BCE(sigmoid(pred), t)) / avg_factor`` (the paper's eq. 6) with

    - positives (a matched query's ground-truth class): ``t = q ** gamma``, ``w = 1``;
    - everything else: ``t = 0``, ``w = alpha * sigmoid(pred) ** gamma`` (detached, as DEIM does).

    ``pred`` ``[N, C]`` logits, ``target`` ``[N, C]``: the IoU q of the matched box in its ground-truth
    class, 0 elsewhere (the same target as :class:`VarifocalLoss`, so a head switches by config).
    ``positive`` (bool ``[N, C]``) marks the matched entries; without it they are ``target > 0``, which
    makes a match whose box misses its ground truth (q = 0) a negative, where DEIM trains it towards 0 with
    weight 1 (pass ``positive`` to keep that). Without ``avg_factor`` the sum is divided by N.
    DEIM's defaults: ``gamma = 1.5``, ``alpha = 1`` (its ``mal_alpha=None``).
    """

    use_sigmoid = True

    def __init__(self, alpha: float = 1.0, gamma: float = 1.5, loss_weight: float = 1.0):
        super().__init__()
        if alpha < 0 or gamma < 0:
            raise ValueError(f'MatchabilityAwareLoss needs alpha >= 0 and gamma >= 0, got {alpha}, {gamma}')
        self.alpha, self.gamma, self.loss_weight = alpha, gamma, loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor, avg_factor=None,
                positive: torch.Tensor = None) -> torch.Tensor:
        check_iou_targets('MatchabilityAwareLoss', pred, target)
        pred, target = pred.float(), target.float()
        positive = target > 0 if positive is None else positive.bool()
        score = pred.detach().sigmoid()
        goal = torch.where(positive, target.pow(self.gamma), torch.zeros_like(target))
        weight = torch.where(positive, torch.ones_like(score), self.alpha * score.pow(self.gamma))
        loss = F.binary_cross_entropy_with_logits(pred, goal, reduction='none')
        normaliser = max(1, pred.shape[0]) if avg_factor is None else avg_factor
        return self.loss_weight * weight_reduce_loss(loss, weight, avg_factor=normaliser)
