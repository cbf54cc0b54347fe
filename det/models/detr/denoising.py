"""Denoising queries (DN-DETR, Li et al. CVPR 2022; DINO's grouped form): noised copies of the ground-truth
boxes and labels go through the decoder as extra queries that must reconstruct the originals. Their
targets are known, so they need no matching and give the decoder a stable, dense training signal; an
attention mask keeps them from helping the matching queries (which see no ground truth at test time)."""
from typing import NamedTuple

import torch
from torch import nn
from torchvision.ops import box_convert


class DenoisingQueriesOutput(NamedTuple):
    """Denoising part of one batch, ``P = num_groups * group_size`` queries placed before the ``Q``
    matching queries. Query ``g * group_size + j`` of image b is the noised copy of its ground truth j in
    group g (``valid`` False where image b has fewer than ``group_size`` boxes).

    - ``content`` ``[B, P, D]``: embeddings of the noised labels (the content queries);
    - ``boxes`` ``[B, P, 4]``: noised boxes, normalised (cx, cy, w, h) (the positional queries);
    - ``attn_mask`` bool ``[B, P + Q, P + Q]``, True where query i may attend to query j;
    - ``labels`` long ``[B, P]``, ``targets`` ``[B, P, 4]``: the clean labels and boxes to reconstruct;
    - ``valid`` bool ``[B, P]``.
    """

    content: torch.Tensor
    boxes: torch.Tensor
    attn_mask: torch.Tensor
    labels: torch.Tensor
    targets: torch.Tensor
    valid: torch.Tensor
    num_groups: int
    group_size: int


class DenoisingQueries(nn.Module):
    """Builds the denoising queries of a batch.

    Args:
        num_classes: C; a label embedding ``[C, embed_dims]`` is learned (the content of the queries).
        num_groups: copies of the ground truth, each with its own noise; groups cannot see each other.
        label_noise_ratio: probability that a label is replaced by a uniformly drawn class.
        box_noise_scale: lambda of DN-DETR: centres move by up to ``lambda * (w, h) / 2``, sizes scale by a
            factor in ``[1 - lambda, 1 + lambda]``; boxes are clipped to the image.

    Attention (``attn_mask``): matching queries see only matching queries; a denoising query sees its own
    group's valid queries, itself, and every matching query.
    """

    def __init__(self, num_classes: int, embed_dims: int, num_groups: int = 5, label_noise_ratio: float = 0.2,
                 box_noise_scale: float = 0.4):
        super().__init__()
        if num_groups < 1:
            raise ValueError(f'num_groups must be >= 1, got {num_groups}')
        if not 0 <= label_noise_ratio <= 1 or box_noise_scale < 0:
            raise ValueError(f'label_noise_ratio must be in [0, 1] and box_noise_scale >= 0, got '
                             f'{label_noise_ratio}, {box_noise_scale}')
        self.num_classes, self.num_groups = num_classes, num_groups
        self.label_noise_ratio, self.box_noise_scale = label_noise_ratio, box_noise_scale
        self.label_embedding = nn.Embedding(num_classes, embed_dims)

    def forward(self, gt_labels: list, gt_boxes: list, num_matching: int):
        """``gt_labels``: B long ``[G_i]``; ``gt_boxes``: B ``[G_i, 4]`` normalised (cx, cy, w, h);
        ``num_matching``: Q. Returns :class:`DenoisingQueriesOutput`, or None when the batch holds no box."""
        device = self.label_embedding.weight.device
        batch, group_size = len(gt_labels), max((len(labels) for labels in gt_labels), default=0)
        if group_size == 0:
            return None
        labels = torch.zeros(batch, group_size, dtype=torch.long, device=device)
        targets = torch.full((batch, group_size, 4), 0.5, device=device)
        valid = torch.zeros(batch, group_size, dtype=torch.bool, device=device)
        for b, (lab, box) in enumerate(zip(gt_labels, gt_boxes)):
            labels[b, :len(lab)], targets[b, :len(lab)], valid[b, :len(lab)] = lab, box, True
        labels, targets = labels.repeat(1, self.num_groups), targets.repeat(1, self.num_groups, 1)
        valid = valid.repeat(1, self.num_groups)

        flip = torch.rand(labels.shape, device=device) < self.label_noise_ratio
        noised_labels = torch.where(flip, torch.randint_like(labels, self.num_classes), labels)
        half_size = targets[..., 2:].repeat(1, 1, 2) * torch.tensor([0.5, 0.5, 1.0, 1.0], device=device)
        noise = (torch.rand_like(targets) * 2 - 1) * self.box_noise_scale * half_size
        noised = box_convert(targets + noise, 'cxcywh', 'xyxy').clamp(0, 1)
        noised = box_convert(noised, 'xyxy', 'cxcywh').clamp(min=1e-4)

        return DenoisingQueriesOutput(
            content=self.label_embedding(noised_labels), boxes=noised,
            attn_mask=self.attention_mask(valid, group_size, num_matching), labels=labels,
            targets=targets, valid=valid, num_groups=self.num_groups, group_size=group_size)

    @staticmethod
    def attention_mask(valid: torch.Tensor, group_size: int, num_matching: int) -> torch.Tensor:
        """``valid [B, P]`` -> bool ``[B, P + Q, P + Q]``, True where query i may attend to query j (see the
        class docstring); every row allows at least its own query, so no softmax row is empty."""
        batch, num_dn = valid.shape
        total = num_dn + num_matching
        group = torch.arange(num_dn, device=valid.device) // group_size
        mask = torch.zeros(batch, total, total, dtype=torch.bool, device=valid.device)
        mask[:, :num_dn, :num_dn] = (group[:, None] == group[None, :]) & valid[:, None, :]
        mask[:, :num_dn, num_dn:] = True
        mask[:, num_dn:, num_dn:] = True
        mask |= torch.eye(total, dtype=torch.bool, device=valid.device)
        return mask
