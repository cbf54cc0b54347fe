"""Position-supervised classification loss (Liu et al., *Detection Transformer with Stable Matching*,
ICCV 2023, arXiv 2304.04742, sec. 4.1, "Stable-DINO"): a matched query's class target is a function of
its box's IoU alone, ``t = IoU ** iou_power``, never of its own score, so the target cannot reward a
query for being confident (the paper's cure for unstable matching across decoder layers)."""
import torch
import torch.nn.functional as F
from torch import nn

from det.registry import MODELS

from .utils import check_iou_targets, weight_reduce_loss


@MODELS.register_module()
class PositionSupervisedLoss(nn.Module):
    """``loss_weight * sum(w * BCE(sigmoid(pred), t)) / avg_factor``, focal-style with the IoU target:

    - positives: ``t = IoU ** iou_power`` (rescaled, see below), ``w = alpha * |t - p| ** gamma``;
    - everything else: ``t = 0``, ``w = (1 - alpha) * p ** gamma``;

    with ``p = sigmoid(pred)``; like the focal loss, gradient flows through the modulating factors.
    With ``rescale`` the positive targets of each image are divided by their maximum (Stable-DINO's
    normalisation: the best-placed query of an image is trained towards 1, so scores do not shrink with
    the IoUs early in training).

    How this differs from :class:`VarifocalLoss` (also an IoU target): VFL weights a positive by its
    target q and a negative by the detached ``alpha * p ** gamma``, with no rescaling; here a positive is
    weighted by its distance to the target (small once reached), the target is ``IoU ** 2`` by default,
    and the weights carry gradient (the focal loss's form).

    ``pred`` ``[N, C]`` or ``[B, Q, C]`` logits; ``target`` of the same shape: the IoU of the matched box
    in its ground-truth class, 0 elsewhere. Rescaling is per image for ``[B, Q, C]`` and over all rows
    for ``[N, C]``. ``positive`` (bool, same shape) marks the matched entries (default ``target > 0``).
    Without ``avg_factor`` the sum is divided by the number of queries. Defaults are Stable-DINO's
    (``alpha 0.25``, ``gamma 2``, ``iou_power 2``; its configs weight the loss 6).
    """

    use_sigmoid = True

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0, iou_power: float = 2.0, rescale: bool = True,
                 loss_weight: float = 1.0):
        super().__init__()
        if not 0 <= alpha <= 1 or gamma < 0 or iou_power <= 0:
            raise ValueError(f'PositionSupervisedLoss needs 0 <= alpha <= 1, gamma >= 0 and iou_power > 0, '
                             f'got {alpha}, {gamma}, {iou_power}')
        self.alpha, self.gamma, self.iou_power = alpha, gamma, iou_power
        self.rescale, self.loss_weight = rescale, loss_weight

    def _targets(self, target: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
        """``IoU ** iou_power`` on positives, 0 elsewhere; each image's maximum scaled up to 1."""
        goal = torch.where(positive, target.pow(self.iou_power), torch.zeros_like(target))
        if not self.rescale:
            return goal
        images = goal if goal.dim() == 3 else goal[None]
        peak = images.flatten(1).amax(1).clamp(min=1e-8)[:, None, None]
        return (images / peak).view_as(goal)

    def forward(self, pred: torch.Tensor, target: torch.Tensor, avg_factor=None,
                positive: torch.Tensor = None) -> torch.Tensor:
        check_iou_targets('PositionSupervisedLoss', pred, target, dims=(2, 3))
        pred, target = pred.float(), target.float()
        positive = target > 0 if positive is None else positive.bool()
        goal = self._targets(target, positive)
        prob = pred.sigmoid()
        weight = torch.where(positive, self.alpha * (goal - prob).abs().pow(self.gamma),
                             (1 - self.alpha) * prob.pow(self.gamma))
        loss = F.binary_cross_entropy_with_logits(pred, goal, reduction='none')
        normaliser = max(1, pred[..., 0].numel()) if avg_factor is None else avg_factor
        return self.loss_weight * weight_reduce_loss(loss, weight, avg_factor=normaliser)
