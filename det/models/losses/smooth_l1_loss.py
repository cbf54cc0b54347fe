"""Smooth L1 (Huber-like) box regression loss with an explicit weight and normaliser."""
import torch
import torch.nn.functional as F
from torch import nn

from det.registry import MODELS

from .utils import weight_reduce_loss


@MODELS.register_module()
class SmoothL1Loss(nn.Module):
    """``loss_weight * sum(weight * smooth_l1(pred - target; beta)) / avg_factor``, elementwise
    ``0.5 * d**2 / beta`` for ``|d| < beta``, else ``|d| - 0.5 * beta`` (``F.smooth_l1_loss``).

    Faster R-CNN regresses encoded box deltas ``[M, 4]`` with ``beta = 1/9`` (torchvision, Detectron).
    ``weight`` broadcasts to ``pred``. Without ``avg_factor`` the mean is taken; with one, an empty
    ``pred`` gives an exact 0 that is still part of the autograd graph.
    """

    def __init__(self, beta: float = 1.0, loss_weight: float = 1.0):
        super().__init__()
        if beta < 0:
            raise ValueError(f'beta must be >= 0, got {beta}')
        self.beta = beta
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight=None, avg_factor=None) -> torch.Tensor:
        loss = F.smooth_l1_loss(pred, target, beta=self.beta, reduction='none')
        return self.loss_weight * weight_reduce_loss(loss, weight, avg_factor=avg_factor)
