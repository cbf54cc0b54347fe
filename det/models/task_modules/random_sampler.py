"""Random sampling of a fixed number of assigned priors with a positive fraction (Faster R-CNN's
mini-batch of 256 anchors / 512 RoIs per image), as torchvision's ``BalancedPositiveNegativeSampler``."""
from typing import NamedTuple

import torch

from det.registry import TASK_UTILS

from .max_iou_assigner import AssignResult


class SamplingResult(NamedTuple):
    """Indices into the priors of one image: ``pos_inds`` long ``[P]`` and ``neg_inds`` long ``[Q]``
    (``P + Q <= num``), and ``mask`` bool ``[N]`` true at both."""

    pos_inds: torch.Tensor
    neg_inds: torch.Tensor
    mask: torch.Tensor


@TASK_UTILS.register_module()
class RandomSampler:
    """Draw at most ``int(num * pos_fraction)`` positives, then fill up to ``num`` with negatives.

    Both draws are uniform without replacement (``torch.randperm`` of the positives, then of the
    negatives, on the priors' device and from torch's global generator), so seeding torch makes the
    sample reproducible, and identical to torchvision's under the same seed and call order. Ignored
    priors (``gt_inds == -1``) are never drawn.
    """

    def __init__(self, num: int, pos_fraction: float):
        if num <= 0 or not 0 <= pos_fraction <= 1:
            raise ValueError(f'num={num} must be > 0 and pos_fraction={pos_fraction} in [0, 1]')
        self.num = num
        self.pos_fraction = pos_fraction

    def sample(self, assign_result: AssignResult) -> SamplingResult:
        gt_inds = assign_result.gt_inds
        positive = torch.where(gt_inds > 0)[0]
        negative = torch.where(gt_inds == 0)[0]
        num_pos = min(int(self.num * self.pos_fraction), positive.numel())
        num_neg = min(self.num - num_pos, negative.numel())
        pos_inds = positive[torch.randperm(positive.numel(), device=positive.device)[:num_pos]]
        neg_inds = negative[torch.randperm(negative.numel(), device=negative.device)[:num_neg]]
        mask = torch.zeros_like(gt_inds, dtype=torch.bool)
        mask[pos_inds] = True
        mask[neg_inds] = True
        return SamplingResult(pos_inds, neg_inds, mask)
