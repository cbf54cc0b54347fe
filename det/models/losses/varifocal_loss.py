"""Varifocal loss (Zhang et al., VarifocalNet, CVPR 2021), RT-DETR's IoU-aware classification: per-class
sigmoid scores trained towards each positive's IoU with its ground truth, so that the score that ranks
detections also says how well the box fits."""
import torch
import torch.nn.functional as F
from torch import nn

from det.registry import MODELS

from .utils import check_iou_targets, weight_reduce_loss


@MODELS.register_module()
class VarifocalLoss(nn.Module):
    """``loss_weight * sum(w * BCE(sigmoid(pred), target)) / avg_factor`` with ``w = target`` where
    ``target > 0`` (a positive, weighted by its IoU-aware target q) and ``w = alpha * sigmoid(pred)**gamma``
    elsewhere (negatives down-weighted as in the focal loss, by the detached score as RT-DETR does).

    ``pred`` ``[N, C]`` logits, ``target`` ``[N, C]`` in [0, 1]: q (e.g. the IoU of a matched box) in its
    ground-truth class, 0 elsewhere; ``positive`` (bool ``[N, C]``, default ``target > 0``) marks the
    matched entries. Without ``avg_factor`` the sum is divided by N. Heads read
    ``use_sigmoid`` to build C outputs (no "no object" class) and score with the sigmoid.
    """

    use_sigmoid = True

    def __init__(self, alpha: float = 0.75, gamma: float = 2.0, loss_weight: float = 1.0):
        super().__init__()
        if alpha < 0 or gamma < 0:
            raise ValueError(f'{type(self).__name__} needs alpha >= 0 and gamma >= 0, got {alpha}, {gamma}')
        self.alpha, self.gamma, self.loss_weight = alpha, gamma, loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor, avg_factor=None,
                positive: torch.Tensor = None) -> torch.Tensor:
        check_iou_targets(type(self).__name__, pred, target)
        pred, target = pred.float(), target.float()
        positive = target > 0 if positive is None else positive.bool()
        negative_weight = self.alpha * pred.detach().sigmoid().pow(self.gamma)
        goal, weight = self.positive_terms(target, positive, negative_weight)
        loss = F.binary_cross_entropy_with_logits(pred, goal, reduction='none')
        normaliser = max(1, pred.shape[0]) if avg_factor is None else avg_factor
        return self.loss_weight * weight_reduce_loss(loss, weight, avg_factor=normaliser)

    def positive_terms(self, target, positive, negative_weight) -> tuple:
        """``(goal, weight)`` ``[N, C]``: the score target q and the weight q on positives; 0 and the
        negative weight elsewhere."""
        return target, torch.where(positive, target, negative_weight)
