"""Summed squared error with an explicit weight and normaliser (YOLO v1's sum-squared error terms)."""
import torch
from torch import nn

from det.registry import MODELS

from .utils import weight_reduce_loss


@MODELS.register_module()
class MSELoss(nn.Module):
    """``loss_weight * sum(weight * (f(pred) - target) ** 2) / avg_factor``.

    ``f`` is the identity, or the sigmoid with ``use_sigmoid=True`` (``pred`` are then logits, as for
    YOLO v1's confidence in the paper's squared-error form). ``pred`` and ``target`` have the same shape
    (``target`` may be a number); ``weight`` broadcasts. Without ``avg_factor`` the mean is taken; an
    empty ``pred`` with an ``avg_factor`` gives an exact 0 that is still in the autograd graph.
    """

    def __init__(self, loss_weight: float = 1.0, use_sigmoid: bool = False):
        super().__init__()
        self.loss_weight = loss_weight
        self.use_sigmoid = use_sigmoid

    def forward(self, pred: torch.Tensor, target, weight=None, avg_factor=None) -> torch.Tensor:
        if self.use_sigmoid:
            pred = pred.sigmoid()
        loss = (pred - torch.as_tensor(target, dtype=pred.dtype, device=pred.device)) ** 2
        return self.loss_weight * weight_reduce_loss(loss, weight, avg_factor=avg_factor)
