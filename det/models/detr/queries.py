"""Query sources of the query-based detector: where the decoder's Q object queries come from. Each is a
small registered module that :class:`det.models.detectors.DETR` builds from its ``query_type`` and calls
once per batch, so a new kind of query (one-to-many groups, ...) is one more module, not a branch of the
detector:

- :class:`EmbeddingQueries`: DETR's learned positional queries;
- :class:`AnchorQueries`: learned boxes refined by every decoder layer (DAB-DETR);
- :class:`EncoderQueries`: the best encoder tokens (two-stage selection, Deformable DETR / RT-DETR).

A source says what it gives through four class attributes the detector reads when it builds its other
parts: ``gives_reference`` (boxes the decoder refines, so their sine embedding is the positional query),
``zero_content`` (every query's content starts at zero), ``scores_tokens`` (the head needs branches
that score encoder tokens) and ``gives_extra`` (``forward(..., num_extra=M)`` appends M more queries
after the Q, for H-DETR's training-only one-to-many branch). ``checkpoint_name`` is the detector
attribute it lives under, the name its parameters have in checkpoints.
"""
from typing import NamedTuple

import torch
from torch import nn

from det.registry import MODELS


class Proposals(NamedTuple):
    """Every encoder token scored as a proposal (two-stage selection): ``cls_logits [B, hw, K]``,
    ``boxes [B, hw, 4]`` normalised (cx, cy, w, h), and ``valid`` bool ``[B, hw]``, False at padded
    tokens (no image there: neither matched nor scored as background by the proposal loss)."""

    cls_logits: torch.Tensor
    boxes: torch.Tensor
    valid: torch.Tensor


class Queries(NamedTuple):
    """What a query source gives the decoder: ``content [B, Q, D]``; ``query_pos [B, Q, D]`` (fixed
    positional queries) or ``reference [B, Q, 4]`` (normalised cx, cy, w, h boxes), the other None;
    ``proposals`` (:class:`Proposals`, only from :class:`EncoderQueries`)."""

    content: torch.Tensor
    query_pos: torch.Tensor
    reference: torch.Tensor
    proposals: Proposals


@MODELS.register_module()
class EmbeddingQueries(nn.Module):
    """DETR's Q learned positional queries ``weight [Q, D]`` (initialised N(0, 1) as ``nn.Embedding``)
    with zero content; every decoder layer predicts boxes from scratch."""

    checkpoint_name = 'query_embedding'
    gives_reference, zero_content, scores_tokens, gives_extra = False, True, False, False

    def __init__(self, num_queries: int, embed_dims: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_queries, embed_dims).normal_())

    def forward(self, memory: torch.Tensor, mask: torch.Tensor, head) -> Queries:
        """``memory [B, hw, D]`` (only its batch size, dtype and device are read)."""
        batch = memory.shape[0]
        content = memory.new_zeros(batch, *self.weight.shape)
        return Queries(content, self.weight.expand(batch, -1, -1), None, None)


@MODELS.register_module()
class AnchorQueries(nn.Module):
    """DAB-DETR's Q learned anchor boxes ``weight [Q, 4]`` (the sigmoid gives normalised cx, cy, w, h)
    with zero content; each decoder layer refines them."""

    checkpoint_name = 'anchor_embedding'
    gives_reference, zero_content, scores_tokens, gives_extra = True, True, False, False

    def __init__(self, num_queries: int, embed_dims: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_queries, 4).normal_())

    def init_weights(self):
        """Anchors spread uniformly over the image (in sigmoid space: centres in (0, 1), small sizes)."""
        nn.init.uniform_(self.weight[:, :2], -3.0, 3.0)
        nn.init.constant_(self.weight[:, 2:], -1.5)

    def forward(self, memory: torch.Tensor, mask: torch.Tensor, head) -> Queries:
        batch = memory.shape[0]
        content = memory.new_zeros(batch, self.weight.shape[0], memory.shape[-1])
        return Queries(content, None, self.weight.sigmoid().expand(batch, -1, -1), None)


@MODELS.register_module()
class EncoderQueries(nn.Sequential):
    """Two-stage query selection (Deformable DETR, Zhu et al. ICLR 2021; RT-DETR, Zhao et al. CVPR 2024):
    every encoder token, projected by this module's Linear + LayerNorm (a Sequential, so its parameters
    keep the checkpoint names ``enc_output.0`` / ``.1``), predicts a class and a box around its own
    position with the head's token branches and is trained as a proposal with the set loss; the Q
    best-scoring unpadded tokens become the queries: their projected feature the content, their box the
    reference, both with the gradient stopped as in RT-DETR.

    Args:
        num_queries / embed_dims: Q and D.
        proposal_size: width and height, as a fraction of the image, of each token's anchor box
            (Deformable DETR's 0.05).
    """

    checkpoint_name = 'enc_output'
    gives_reference, zero_content, scores_tokens, gives_extra = True, False, True, True

    def __init__(self, num_queries: int, embed_dims: int, proposal_size: float = 0.05):
        super().__init__(nn.Linear(embed_dims, embed_dims), nn.LayerNorm(embed_dims))
        if not 0 < proposal_size < 1:
            raise ValueError(f'proposal_size is a fraction of the image in (0, 1), got {proposal_size}')
        self.num_queries, self.proposal_size = num_queries, proposal_size

    def token_anchors(self, mask: torch.Tensor) -> torch.Tensor:
        """Padding mask ``[B, h, w]`` of the encoder's map -> each token's anchor ``[B, hw, 4]``: centred on
        the token, normalised by the valid (unpadded) extent of its image, ``proposal_size`` wide and high."""
        batch, height, width = mask.shape
        valid_h = (~mask[:, :, 0]).sum(1).clamp(min=1).float()[:, None, None]     # [B, 1, 1]
        valid_w = (~mask[:, 0, :]).sum(1).clamp(min=1).float()[:, None, None]
        rows = torch.arange(height, device=mask.device, dtype=torch.float32)[None, :, None] + 0.5
        cols = torch.arange(width, device=mask.device, dtype=torch.float32)[None, None, :] + 0.5
        cy, cx = (rows / valid_h).expand(batch, height, width), (cols / valid_w).expand(batch, height, width)
        size = torch.full_like(cx, self.proposal_size)
        return torch.stack((cx, cy, size, size), dim=-1).flatten(1, 2)

    def select(self, scores: torch.Tensor, count: int = None) -> torch.Tensor:
        """``scores [B, hw]`` -> the indices ``[B, count]`` of the ``count`` (default Q) best tokens, in
        token order. Exact ties at the last selected score (common at random init) go to the lower token
        index, as in ONNX's TopK, so an exported model selects the same set; done with comparisons, a
        cumulative count and a top-k of distinct integer keys (exact in float32 below 2^24 tokens), without
        float64 (which backends such as MPS lack) or a stable sort (which the ONNX exporter lacks)."""
        count = self.num_queries if count is None else count
        kth = scores.topk(count, dim=1).values[:, -1:]                                 # [B, 1]
        above, tied = scores > kth, scores == kth
        room = count - above.sum(1, keepdim=True)                                      # tied slots left
        chosen = above | (tied & (tied.cumsum(1) <= room))                             # exactly count per row
        first_highest = torch.arange(scores.shape[1], 0, -1, device=scores.device, dtype=torch.float32)
        return (chosen.float() * first_highest).topk(count, dim=1).indices

    @staticmethod
    def token_scores(head, cls_logits: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        """The score that ranks the tokens, ``[B, hw]``: each token's most probable object class under
        ``head.class_scores`` (no gradient), -1 at padded tokens (``padding [B, hw]`` True)."""
        return head.class_scores(cls_logits.detach()).amax(-1).masked_fill(padding, -1.0)

    def project(self, memory: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        """``memory [B, hw, D]`` with padded tokens (``padding [B, hw]`` True) zeroed, through the
        Linear + LayerNorm: the tokens' features ``[B, hw, D]``."""
        return super().forward(memory.masked_fill(padding[..., None], 0.0))

    def forward(self, memory: torch.Tensor, mask: torch.Tensor, head, num_extra: int = 0) -> Queries:
        """``memory [B, hw, D]``, ``mask [B, h, w]`` (True at padding), ``head`` the ``DETRHead`` whose
        ``encoder_forward`` / ``class_scores`` score the tokens. A token's score is its most probable
        object class; padded tokens come last (an image padded to under Q valid tokens gets some of
        them, whose boxes lie outside it). ``num_extra`` M > 0 (training only) appends the M next-best
        tokens after the Q best, which stay the ones selected without them. The check is on shapes
        only, so the model exports with ``torch.export``."""
        padding = mask.flatten(1)
        if padding.shape[1] < self.num_queries + num_extra:
            extra = f' + {num_extra} one-to-many' if num_extra else ''
            raise ValueError(f'the encoder map has {padding.shape[1]} tokens, fewer than the '
                             f'{self.num_queries}{extra} queries to select: use a larger input or fewer '
                             'queries')
        tokens = self.project(memory, padding)
        cls_logits, boxes = head.encoder_forward(tokens, self.token_anchors(mask))
        scores = self.token_scores(head, cls_logits, padding)
        top = self.select(scores)
        if num_extra:
            # Scores are probabilities (padding -1): -2 ranks the Q already taken below every other token.
            top = torch.cat([top, self.select(scores.scatter(1, top, -2.0), num_extra)], dim=1)
        top = top[..., None]                                                           # [B, Q + M, 1]
        content = tokens.gather(1, top.expand(-1, -1, tokens.shape[-1])).detach()
        reference = boxes.gather(1, top.expand(-1, -1, 4)).detach()
        return Queries(content, None, reference, Proposals(cls_logits, boxes, ~padding))
