"""H-DETR's hybrid matching (Jia et al., CVPR 2023, *DETRs with Hybrid Matching*), two-stage form: in
training the query source gives M more queries after the Q one-to-one ones, and the head matches them
against each image's ground truth repeated K times, so every object trains up to K queries as
positives (a denser signal than one-to-one matching's one). An attention mask keeps the two groups from
seeing each other, so the one-to-one queries, the only ones kept at inference, compute exactly what
they would without the extra group."""
from typing import NamedTuple

import torch


class OneToMany(NamedTuple):
    """The detector's ``one_to_many`` switch: M queries (``num_queries``), the ground truth repeated
    K times (``repeats``), and the weight of their losses (``loss_weight``)."""

    num_queries: int
    repeats: int
    loss_weight: float = 1.0

    @classmethod
    def from_cfg(cls, cfg: dict) -> 'OneToMany':
        """``dict(num_queries=M, repeats=K, loss_weight=1.0)`` -> :class:`OneToMany`, or a ValueError that
        names the bad key."""
        unknown = set(cfg) - set(cls._fields)
        missing = {'num_queries', 'repeats'} - set(cfg)
        if unknown or missing:
            raise ValueError(f'one_to_many takes keys {cls._fields} (num_queries and repeats required); '
                             f'unknown: {sorted(unknown)}, missing: {sorted(missing)}')
        out = cls(**cfg)
        for key in ('num_queries', 'repeats'):
            value = getattr(out, key)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f'one_to_many {key} must be an integer >= 1, got {value!r}')
        if not out.loss_weight > 0:
            raise ValueError(f'one_to_many loss_weight must be > 0, got {out.loss_weight!r}')
        return out


def hybrid_attention_mask(mask: torch.Tensor, batch: int, num_queries: int, num_extra: int,
                          device) -> torch.Tensor:
    """Decoder self-attention mask for ``[P denoising | Q one-to-one | M one-to-many]`` queries: ``mask``
    bool ``[B, P + Q, P + Q]`` of the first P + Q (``DenoisingQueries.attention_mask``; None without
    denoising, when the Q all see each other), ``num_queries`` P + Q, ``num_extra`` M -> bool
    ``[B, P + Q + M, P + Q + M]``, True where query i may attend to query j. The one-to-many queries
    see only each other and no other query sees them, so neither the denoising nor the one-to-one
    queries' outputs depend on them."""
    total = num_queries + num_extra
    out = torch.zeros(batch, total, total, dtype=torch.bool, device=device)
    out[:, :num_queries, :num_queries] = True if mask is None else mask
    out[:, num_queries:, num_queries:] = True
    return out
