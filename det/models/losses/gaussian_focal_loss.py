"""CenterNet's penalty-reduced pixel-wise focal loss on a Gaussian-splatted heatmap (Zhou et al.,
"Objects as Points", eq. 1; the same loss as CornerNet's)."""
import torch
from torch import nn

from det.registry import MODELS

from .utils import weight_reduce_loss


@MODELS.register_module()
class GaussianFocalLoss(nn.Module):
    """Focal loss whose negatives near an object are down-weighted by ``(1 - gt) ** beta``.

    With ``p`` the predicted probability and ``gt`` the target heatmap (1 exactly at object centres,
    a Gaussian bump around them, 0 elsewhere)::

        pos (gt == 1): -(1 - p) ** alpha * log(p)
        neg (gt < 1):  -(1 - gt) ** beta * p ** alpha * log(1 - p)

    summed over all pixels and classes and divided by ``avg_factor`` (the number of objects;
    default ``max(1, number of gt == 1 pixels)``). ``p`` is clamped to ``[eps, 1 - eps]`` as in the
    reference code, so saturated predictions cannot give ``log(0)``.
    """

    def __init__(self, alpha: float = 2.0, beta: float = 4.0, eps: float = 1e-4, loss_weight: float = 1.0):
        super().__init__()
        self.alpha = alpha
        self.beta = beta
        self.eps = eps
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor, avg_factor=None) -> torch.Tensor:
        """``pred``: probabilities (after sigmoid), ``target``: heatmap in [0, 1], same shape
        (e.g. ``[B, C, H, W]``). Returns a scalar."""
        p = pred.clamp(self.eps, 1 - self.eps)
        pos = target.eq(1)
        pos_loss = -(1 - p).pow(self.alpha) * p.log()
        neg_loss = -(1 - target).pow(self.beta) * p.pow(self.alpha) * (1 - p).log()
        loss = torch.where(pos, pos_loss, neg_loss)
        if avg_factor is None:
            avg_factor = pos.sum().clamp(min=1)
        return self.loss_weight * weight_reduce_loss(loss, avg_factor=avg_factor)
