"""The query-based detector: backbone ─▶ 1x1 input projection ─▶ transformer encoder ─▶ decoder over object
queries ─▶ class + box head (DETR, Carion et al. 2020), with published speed-ups behind switches (and the
decoder's ``cross_attention='deformable'``, :class:`DeformableCrossAttention`):

- ``query_type='anchor'``: each query is a learned box whose sine embedding (through a 2-layer MLP) is
  its positional query, refined by every decoder layer (DAB-DETR, Liu et al. ICLR 2022, without its
  width / height-modulated cross-attention);
- ``query_type='encoder'``: two-stage query selection (Deformable DETR, Zhu et al. ICLR 2021; RT-DETR,
  Zhao et al. CVPR 2024): every encoder token predicts a class and a box around its own position and is
  trained as a proposal with the set loss; the Q best tokens become the queries (their encoder feature
  the content, their box the reference that the decoder refines, both with the gradient stopped as in
  RT-DETR);
- ``denoising=dict(...)``: noised ground-truth boxes and labels as extra decoder queries, masked from the
  matching queries (DN-DETR, Li et al. CVPR 2022), in training only;
- ``aux_head=dict(type=<any dense head>, ...)``: a dense head trained on the encoder's output map with
  its own fixed assignment beside the set loss and dropped at inference (Co-DETR's collaborative hybrid
  assignment, Zong et al. ICCV 2023), so that backbone and encoder learn where objects are from a
  stable, dense signal instead of the Hungarian matching's, which changes from step to step;
- ``one_to_many=dict(num_queries=M, repeats=K)`` (two-stage queries only): in training M more encoder
  tokens become queries, masked from the Q others and matched to the ground truth repeated K times
  (H-DETR's hybrid matching, Jia et al. CVPR 2023), so each object trains up to K of them; dropped at
  inference (:mod:`det.models.detr.one_to_many`).
"""
import itertools
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from det.models.detr import (
    MLP,
    DenoisingQueries,
    DetrTransformerDecoder,
    DetrTransformerEncoder,
    OneToMany,
    SinePositionalEncoding,
    box_sine_embedding,
    hybrid_attention_mask,
)
from det.models.heads.detr_head import normalised_cxcywh
from det.registry import MODELS

from .base import BaseDetector

# The short names of ``query_type`` and the query sources (det/models/detr/queries.py) they build.
QUERY_TYPES = dict(embedding='EmbeddingQueries', anchor='AnchorQueries', encoder='EncoderQueries')


class MemoryInput(NamedTuple):
    """What :meth:`DETR.pre_transformer` makes of the feature maps.

    - ``tokens`` / ``pos`` ``[B, hw, D]``: the coarsest map projected to D channels, flattened, and its
      sine positional encoding; ``mask`` bool ``[B, h, w]``, True at padding;
    - ``levels`` ``[B, sum(h_l * w_l), D]``, ``level_padding`` ``[B, sum(h_l * w_l)]``,
      ``level_shapes`` ``[(h_l, w_l)]``: the finer maps a multi-scale deformable decoder also samples
      (empty for one map).
    """

    tokens: torch.Tensor
    pos: torch.Tensor
    mask: torch.Tensor
    levels: list
    level_padding: list
    level_shapes: list


class DecoderInput(NamedTuple):
    """What :meth:`DETR.pre_decoder` gives the decoder: ``content [B, P + Q + M, D]`` (P denoising, Q
    one-to-one, M one-to-many queries, in that order; P and M are 0 outside training), ``query_pos`` or
    ``reference`` (see :class:`det.models.detr.Queries`), ``attn_mask`` (bool ``[B, N, N]`` over those
    N = P + Q + M, None when P = M = 0), and for the loss ``denoising`` (``DenoisingQueriesOutput`` of
    the P denoising queries placed first, None when P = 0) and ``proposals`` (the encoder tokens', or
    None)."""

    content: torch.Tensor
    query_pos: torch.Tensor
    reference: torch.Tensor
    attn_mask: torch.Tensor
    denoising: object
    proposals: object


class TransformerOutput(NamedTuple):
    """What :meth:`DETR.forward_transformer` computes for the heads.

    - ``hidden [L, B, P + Q + M, D]``: every decoder layer's output, P denoising queries first and M
      one-to-many queries last (both only in training);
    - ``references [L, B, P + Q + M, 4]``: the box each layer refines (None for embedding queries);
    - ``denoising``: the ``DenoisingQueriesOutput`` of the P queries (None when P = 0);
    - ``proposals``: the encoder tokens' :class:`det.models.detr.Proposals` (two-stage selection only);
    - ``memory_map [B, D, h, w]``: the encoder's output as a feature map (the auxiliary head's input).
    """

    hidden: torch.Tensor
    references: torch.Tensor
    denoising: object
    proposals: object
    memory_map: torch.Tensor


@MODELS.register_module()
class DETR(BaseDetector):
    """DETR and its speed-up variants, on the detector skeleton of :class:`BaseDetector`.

    The transformer runs as four parts (MMDetection's ``DetectionTransformer``), each chosen by config:
    :meth:`pre_transformer` (input projection, padding mask, positional encoding), :meth:`forward_encoder`,
    :meth:`pre_decoder` (the query source, then the denoising queries) and :meth:`forward_decoder`.

    Args:
        backbone / neck: configs; the encoder reads the last (coarsest) map of the tuple. A deformable
            decoder also samples every finer map, each through its own 1x1 conv + GroupNorm to D
            channels (multi-scale, as Deformable DETR and RT-DETR); global cross-attention takes one map.
        head: ``DETRHead`` config (``embed_dims`` is filled in).
        num_queries: Q object queries.
        embed_dims: D, the transformer's width.
        encoder / decoder: ``dict(num_layers, num_heads, ffn_dims, dropout)``.
        positional_encoding: ``dict(temperature, normalize)`` of the 2-D sine encoding (D / 2 per axis).
        query_type: the query source: ``'embedding'`` (DETR's learned positional queries ``[Q, D]``, boxes
            predicted from scratch by every layer), ``'anchor'`` (learned boxes ``[Q, 4]`` refined layer
            by layer) or ``'encoder'`` (the Q best encoder tokens' features and boxes, refined layer by
            layer), or the config dict of any registered query source (``num_queries`` / ``embed_dims``
            filled in).
        proposal_size: width and height, as a fraction of the image, of each encoder token's anchor box
            (``query_type='encoder'`` only; Deformable DETR's 0.05).
        denoising: None, or ``dict(num_groups, label_noise_ratio, box_noise_scale)``
            (:class:`DenoisingQueries`).
        aux_head: None, or a dense head config (``in_channels`` / ``strides`` filled in: D channels at
            the stride of the map the transformer reads) whose loss, prefixed ``aux.``, trains the
            encoder's output map; not used at inference.
        one_to_many: None, or ``dict(num_queries=M, repeats=K, loss_weight=1.0)``
            (:class:`det.models.detr.OneToMany`): H-DETR's training-only one-to-many queries, whose
            losses are logged as ``o2m.loss_*``; needs ``query_type='encoder'``.

    The padding mask (pixels outside each sample's ``img_shape``) goes through the encoder and the
    decoder's cross-attention and shapes the positional encoding, so predictions of a padded image match
    those of the unpadded one. ``_forward`` (mode ``'tensor'``) returns the head's raw
    ``(cls_logits [L, B, Q, K], boxes [L, B, Q, 4])`` of every decoder layer (K = C + 1, or C with a
    sigmoid class loss), boxes normalised (cx, cy, w, h) of the unpadded image.
    """

    def __init__(self, backbone: dict, head: dict, neck: dict = None, num_queries: int = 100,
                 embed_dims: int = 256, encoder: dict = None, decoder: dict = None,
                 positional_encoding: dict = None, query_type='embedding', proposal_size: float = 0.05,
                 denoising: dict = None, aux_head: dict = None, one_to_many: dict = None,
                 data_preprocessor: dict = None, init_cfg=None):
        super().__init__(backbone, neck, data_preprocessor, init_cfg)
        channels, strides = self.feat_channels, self.feat_strides
        self.num_queries, self.embed_dims = num_queries, embed_dims
        self.input_proj = nn.Conv2d(channels[-1], embed_dims, 1)
        self.positional_encoding = SinePositionalEncoding(embed_dims // 2, **(positional_encoding or {}))
        self.encoder = DetrTransformerEncoder(embed_dims, **(encoder or {}))
        decoder = dict(decoder or {})
        if decoder.get('cross_attention') == 'deformable':
            decoder['num_levels'] = len(channels)
        elif len(channels) > 1:
            raise ValueError(f'the backbone / neck gives {len(channels)} maps but global cross-attention '
                             "reads one: give one out_index, or use decoder cross_attention='deformable'")
        self.decoder = DetrTransformerDecoder(embed_dims, **decoder)
        self.level_proj = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, embed_dims, 1), nn.GroupNorm(math.gcd(32, embed_dims), embed_dims))
            for c in channels[:-1])
        queries = self._build_queries(query_type, proposal_size)
        if self.decoder.cross_attention == 'deformable' and not queries.gives_reference:
            raise ValueError('deformable cross-attention samples around reference boxes: use a query source '
                             "that gives them (query_type 'anchor' or 'encoder'), not "
                             f'{type(queries).__name__}')
        self.one_to_many = None
        if one_to_many is not None:
            if not queries.gives_extra:
                raise ValueError("one_to_many needs a query source that selects extra queries: query_type="
                                 f"'encoder' (EncoderQueries), not {type(queries).__name__}")
            self.one_to_many = OneToMany.from_cfg(one_to_many)
        self.query_attr = queries.checkpoint_name
        self.add_module(self.query_attr, queries)
        self.denoising = None
        if denoising is not None:
            self.denoising = DenoisingQueries(head['num_classes'], embed_dims, **denoising)
        # Boxes -> positional queries (sine embedding + 2-layer MLP), built only where boxes are queries.
        self.ref_point_head = (MLP(2 * embed_dims, embed_dims, embed_dims, 2)
                               if queries.gives_reference or denoising is not None else None)
        self.head = MODELS.build(dict(head, embed_dims=embed_dims, encoder_proposals=queries.scores_tokens))
        self.aux_head = None
        if aux_head is not None:
            self.aux_head = MODELS.build(dict(aux_head, in_channels=[embed_dims], strides=[strides[-1]]))
            if self.aux_head.num_classes != self.head.num_classes:
                raise ValueError(f'aux_head has {self.aux_head.num_classes} classes but head has '
                                 f'{self.head.num_classes}')
        if self.denoising is None and queries.zero_content:
            # Every query enters the first decoder layer with zero content, so that layer's value
            # projection sees only zeros: its weight cannot change the output and gets an exactly zero
            # gradient (as in the reference). Frozen, so it is not reported as untrained nor decayed.
            self.decoder.layers[0].self_attn.v_proj.weight.requires_grad_(False)

    def _build_queries(self, query_type, proposal_size: float) -> nn.Module:
        """The query source of ``query_type`` (a short name of ``QUERY_TYPES`` or a config dict)."""
        if isinstance(query_type, str):
            if query_type not in QUERY_TYPES:
                raise ValueError(f'query_type must be one of {tuple(QUERY_TYPES)} or a query source config, '
                                 f'got {query_type!r}')
            cfg = dict(type=QUERY_TYPES[query_type])
            if query_type == 'encoder':
                cfg['proposal_size'] = proposal_size
        else:
            cfg = dict(query_type)
        return MODELS.build(dict(cfg, num_queries=self.num_queries, embed_dims=self.embed_dims))

    @property
    def queries(self) -> nn.Module:
        """The query source (kept under its ``checkpoint_name``, so checkpoints keep their keys)."""
        return getattr(self, self.query_attr)

    def _box_queries(self, boxes: torch.Tensor) -> torch.Tensor:
        """Normalised boxes ``[B, N, 4]`` -> positional queries ``[B, N, D]``."""
        return self.ref_point_head(box_sine_embedding(boxes, self.embed_dims // 2))

    @staticmethod
    def padding_mask(inputs: torch.Tensor, data_samples) -> torch.Tensor:
        """Bool ``[B, H, W]``, True outside each sample's ``img_shape`` (the bottom / right padding of
        ``Pad`` and the data preprocessor); all False without samples."""
        batch, _, height, width = inputs.shape
        mask = torch.zeros(batch, height, width, dtype=torch.bool, device=inputs.device)
        for b, sample in enumerate(data_samples or []):
            h, w = sample.metainfo.get('img_shape', (height, width))[:2]
            mask[b, h:, :] = True
            mask[b, :, w:] = True
        return mask

    def pre_transformer(self, feats: tuple, inputs: torch.Tensor, data_samples=None) -> MemoryInput:
        """Feature maps -> :class:`MemoryInput`: the coarsest map's tokens, positions and padding, and the
        finer maps' projected tokens for a multi-scale deformable decoder."""
        feat = feats[-1]
        input_mask = self.padding_mask(inputs, data_samples)[None].float()
        mask = F.interpolate(input_mask, size=feat.shape[-2:])[0].bool()          # [B, h, w]
        tokens = self.input_proj(feat).flatten(2).transpose(1, 2)                  # [B, hw, D]
        pos = self.positional_encoding(mask).flatten(2).transpose(1, 2).to(tokens.dtype)
        levels, paddings, shapes = [], [], []
        for proj, level in zip(self.level_proj, feats[:-1]):
            levels.append(proj(level).flatten(2).transpose(1, 2).to(tokens.dtype))
            paddings.append(F.interpolate(input_mask, size=level.shape[-2:])[0].bool().flatten(1))
            shapes.append(tuple(level.shape[-2:]))
        return MemoryInput(tokens, pos, mask, levels, paddings, shapes)

    def forward_encoder(self, x: MemoryInput) -> torch.Tensor:
        """The encoder over the coarsest map's tokens: ``memory [B, hw, D]``."""
        return self.encoder(x.tokens, x.pos, x.mask.flatten(1))

    def pre_decoder(self, memory: torch.Tensor, x: MemoryInput, data_samples=None,
                    train_queries: bool = False) -> DecoderInput:
        """The query source's Q queries; with ``train_queries`` (the training loss) and a model that has
        them, the P denoising queries of the samples' ground truth before them (their boxes as references,
        or through the sine embedding as positional queries when the source gives fixed ``query_pos``)
        and the M one-to-many queries after them."""
        num_extra = self.one_to_many.num_queries if train_queries and self.one_to_many is not None else 0
        queries = (self.queries(memory, x.mask, self.head, num_extra) if num_extra
                   else self.queries(memory, x.mask, self.head))
        content, query_pos, reference = queries.content, queries.query_pos, queries.reference
        dn, attn_mask = None, None
        if train_queries and self.denoising is not None:
            dn = self.denoising_queries(data_samples, memory.device)
        if dn is not None:
            content = torch.cat([dn.content.to(content.dtype), content], dim=1)
            if reference is None:
                query_pos = torch.cat([self._box_queries(dn.boxes).to(query_pos.dtype), query_pos], dim=1)
            else:
                reference = torch.cat([dn.boxes, reference], dim=1)
            attn_mask = dn.attn_mask
        if num_extra:
            attn_mask = hybrid_attention_mask(attn_mask, content.shape[0], content.shape[1] - num_extra,
                                              num_extra, content.device)
        return DecoderInput(content, query_pos, reference, attn_mask, dn, queries.proposals)

    def denoising_queries(self, data_samples: list, device):
        """:class:`DenoisingQueries` of the samples' ``gt_instances`` (None when the batch has no box)."""
        gts = [s.gt_instances for s in data_samples]
        return self.denoising([gt.labels.to(device) for gt in gts],
                              [normalised_cxcywh(gt.bboxes.to(device), s.metainfo['img_shape'])
                               for gt, s in zip(gts, data_samples)], self.num_queries)

    def forward_decoder(self, queries: DecoderInput, memory: torch.Tensor, x: MemoryInput) -> tuple:
        """The decoder over ``memory`` (after the finer maps' tokens for a multi-scale deformable one):
        ``hidden [L, B, P + Q + M, D]`` and ``references [L, B, P + Q + M, 4]`` (or None)."""
        return self.decoder(queries.content, torch.cat(x.levels + [memory], 1), x.pos,
                            torch.cat(x.level_padding + [x.mask.flatten(1)], 1), query_pos=queries.query_pos,
                            self_attn_mask=queries.attn_mask, reference=queries.reference,
                            pos_from_reference=self._box_queries, refine=self.head.box_delta,
                            memory_shapes=x.level_shapes + [tuple(x.mask.shape[-2:])])

    def forward_transformer(self, inputs: torch.Tensor, data_samples=None,
                            train_queries: bool = False) -> TransformerOutput:
        """Backbone and the four transformer parts (:class:`TransformerOutput`); denoising and one-to-many
        queries only with ``train_queries`` (the training loss) and a model that has them."""
        x = self.pre_transformer(self.extract_feat(inputs), inputs, data_samples)
        memory = self.forward_encoder(x)
        queries = self.pre_decoder(memory, x, data_samples, train_queries)
        hidden, references = self.forward_decoder(queries, memory, x)
        memory_map = memory.transpose(1, 2).unflatten(2, x.mask.shape[-2:])          # [B, D, h, w]
        return TransformerOutput(hidden, references, queries.denoising, queries.proposals, memory_map)

    def loss_by_gt(self, inputs, data_samples):
        out = self.forward_transformer(inputs, data_samples, train_queries=True)
        losses = self.head.loss(out.hidden, out.references, data_samples, out.denoising, out.proposals,
                                self.one_to_many)
        if self.denoising is not None and out.denoising is None:
            # A batch without boxes has no denoising queries. 0 x the parameters only they read keeps
            # those in the graph with a zero gradient, as DDP (find_unused_parameters=False) requires.
            idle = itertools.chain(self.denoising.parameters(), self.ref_point_head.parameters())
            losses['loss_dn_cls'] = sum(param.sum() for param in idle) * 0.0
        if self.aux_head is not None:
            aux = self.aux_head.loss((out.memory_map,), data_samples)
            losses.update({'aux.' + name: value for name, value in aux.items()})
        return losses

    def predict_in_input_pixels(self, inputs, data_samples):
        out = self.forward_transformer(inputs, data_samples)
        return self.head.predict(out.hidden, out.references, data_samples)

    def _forward(self, inputs, data_samples=None):
        out = self.forward_transformer(inputs, data_samples)
        return self.head(out.hidden, out.references)
