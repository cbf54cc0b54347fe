"""Binary cross-entropy on logits with an explicit weight and normaliser."""
import torch
import torch.nn.functional as F
from torch import nn

from det.registry import MODELS

from .utils import weight_reduce_loss


@MODELS.register_module()
class BinaryCrossEntropyLoss(nn.Module):
    """``loss_weight * sum(weight * BCE(sigmoid(pred), target)) / avg_factor``, computed from the logits
    ``pred`` (``binary_cross_entropy_with_logits``: exact for saturated logits and allowed under CUDA
    autocast, unlike ``binary_cross_entropy`` on probabilities).

    ``target`` in [0, 1] has ``pred``'s shape or is a number; ``weight`` broadcasts. Without
    ``avg_factor`` the mean is taken; an empty ``pred`` with an ``avg_factor`` gives an exact 0.
    """

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target, weight=None, avg_factor=None) -> torch.Tensor:
        target = torch.as_tensor(target, dtype=pred.dtype, device=pred.device).expand_as(pred)
        loss = F.binary_cross_entropy_with_logits(pred, target, reduction='none')
        return self.loss_weight * weight_reduce_loss(loss, weight, avg_factor=avg_factor)
