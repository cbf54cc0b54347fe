"""Generalized-IoU loss (Rezatofighi et al., CVPR 2019) through ``torchvision.ops``."""
import torch
from torch import nn
from torchvision.ops import generalized_box_iou_loss

from det.registry import MODELS

from .utils import weight_reduce_loss


@MODELS.register_module()
class GIoULoss(nn.Module):
    """``loss_weight * sum(weight_i * (1 - GIoU(pred_i, target_i))) / avg_factor`` over paired xyxy boxes
    ``[N, 4]`` (``weight`` ``[N]``, optional).

    Without ``avg_factor`` the mean is taken; an empty ``pred`` with an ``avg_factor`` gives an exact 0
    that is still part of the autograd graph.
    """

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight=None, avg_factor=None) -> torch.Tensor:
        if pred.shape != target.shape or pred.shape[-1] != 4:
            raise ValueError(f'pred and target must both be [N, 4] xyxy, got {tuple(pred.shape)} and '
                             f'{tuple(target.shape)}')
        loss = generalized_box_iou_loss(pred.float(), target.float(), reduction='none')
        return self.loss_weight * weight_reduce_loss(loss, weight, avg_factor=avg_factor)
