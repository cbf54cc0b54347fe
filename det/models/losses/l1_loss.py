"""Plain L1 regression loss with an explicit weight and normaliser."""
import torch
from torch import nn

from det.registry import MODELS

from .utils import weight_reduce_loss


@MODELS.register_module()
class L1Loss(nn.Module):
    """``loss_weight * sum(weight * |pred - target|) / avg_factor``.

    ``pred`` and ``target`` have the same shape (e.g. ``[M, 2]`` box sizes gathered at M object
    centres); ``weight`` broadcasts to it. Without ``avg_factor`` the mean is taken. With an explicit
    ``avg_factor`` an empty ``pred`` gives an exact 0 that is still part of the autograd graph.
    """

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight=None, avg_factor=None) -> torch.Tensor:
        loss = (pred - target).abs()
        return self.loss_weight * weight_reduce_loss(loss, weight, avg_factor=avg_factor)
