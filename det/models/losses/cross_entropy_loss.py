"""Softmax cross-entropy with an explicit per-sample weight, normaliser and loss weight."""
import torch
import torch.nn.functional as F
from torch import nn

from det.registry import MODELS

from .utils import weight_reduce_loss


@MODELS.register_module()
class CrossEntropyLoss(nn.Module):
    """``loss_weight * sum(weight * CE(pred, target)) / avg_factor``.

    ``pred`` ``[N, K]`` logits, ``target`` long ``[N]`` in ``0..K-1`` or float ``[N, K]`` class
    probabilities (rows summing to 1, e.g. YOLO v1's class distribution of a cell holding two objects),
    ``weight`` ``[N]`` (e.g. DETR's 0.1 for "no object"). Without ``avg_factor`` the normaliser is
    ``sum(weight)`` (the weighted mean of ``F.cross_entropy(..., weight=class_weight)``), or N without
    weights.
    """

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight=None, avg_factor=None) -> torch.Tensor:
        if pred.dim() != 2 or target.shape not in (pred.shape[:1], pred.shape):
            raise ValueError(f'pred must be [N, K] and target [N] (labels) or [N, K] (probabilities), got '
                             f'{tuple(pred.shape)} and {tuple(target.shape)}')
        if target.dim() == 2:
            target = target.float()
        loss = F.cross_entropy(pred.float(), target, reduction='none')
        if avg_factor is None:
            avg_factor = weight.sum() if weight is not None else max(1, loss.numel())
        return self.loss_weight * weight_reduce_loss(loss, weight, avg_factor=avg_factor)
