"""Matchability-aware loss (MAL; Huang et al., *DEIM: DETR with Improved Matching for Fast Convergence*,
CVPR 2025, arXiv 2412.04234, sec. 3.3): the IoU-aware classification of DEIM's dense one-to-one matching.
Unlike the varifocal loss it does not scale a positive's loss by its IoU q, so low-quality matches (the
many extra positives of dense matching) still train; their score target is ``q ** gamma`` instead."""
import torch

from det.registry import MODELS

from .varifocal_loss import VarifocalLoss


@MODELS.register_module()
class MatchabilityAwareLoss(VarifocalLoss):
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

    def __init__(self, alpha: float = 1.0, gamma: float = 1.5, loss_weight: float = 1.0):
        super().__init__(alpha, gamma, loss_weight)

    def positive_terms(self, target, positive, negative_weight) -> tuple:
        """Positives: target ``q ** gamma`` with weight 1; everything else: target 0, the negative weight."""
        goal = torch.where(positive, target.pow(self.gamma), torch.zeros_like(target))
        return goal, torch.where(positive, torch.ones_like(negative_weight), negative_weight)
