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
  stable, dense signal instead of the Hungarian matching's, which changes from step to step.
"""
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
    SinePositionalEncoding,
    box_sine_embedding,
)
from det.models.heads.detr_head import normalised_cxcywh
from det.registry import MODELS

from .base import BaseDetector

QUERY_TYPES = ('embedding', 'anchor', 'encoder')


class TransformerOutput(NamedTuple):
    """What :meth:`DETR.forward_transformer` computes for the heads.

    - ``hidden [L, B, P + Q, D]``: every decoder layer's output, P denoising queries first;
    - ``references [L, B, P + Q, 4]``: the box each layer refines (None for embedding queries);
    - ``denoising``: the ``DenoisingQueriesOutput`` of the P queries (None when P = 0);
    - ``proposals``: the encoder tokens' ``(cls_logits, boxes)`` (None unless ``query_type='encoder'``);
    - ``memory_map [B, D, h, w]``: the encoder's output as a feature map (the auxiliary head's input).
    """

    hidden: torch.Tensor
    references: torch.Tensor
    denoising: object
    proposals: tuple
    memory_map: torch.Tensor


@MODELS.register_module()
class DETR(BaseDetector):
    """DETR and its speed-up variants, on the detector contract of :class:`BaseDetector`.

    Args:
        backbone / neck: configs; the encoder reads the last (coarsest) map of the tuple. A deformable
            decoder also samples every finer map, each through its own 1x1 conv + GroupNorm to D
            channels (multi-scale, as Deformable DETR and RT-DETR); global cross-attention takes one map.
        head: ``DETRHead`` config (``embed_dims`` is filled in).
        num_queries: Q object queries.
        embed_dims: D, the transformer's width.
        encoder / decoder: ``dict(num_layers, num_heads, ffn_dims, dropout)``.
        positional_encoding: ``dict(temperature, normalize)`` of the 2-D sine encoding (D / 2 per axis).
        query_type: ``'embedding'`` (DETR's learned positional queries ``[Q, D]``, boxes predicted from
            scratch by every layer), ``'anchor'`` (learned boxes ``[Q, 4]`` refined layer by layer) or
            ``'encoder'`` (the Q best encoder tokens' features and boxes, refined layer by layer).
        proposal_size: width and height, as a fraction of the image, of each encoder token's anchor box
            (``'encoder'`` only; Deformable DETR's 0.05).
        denoising: None, or ``dict(num_groups, label_noise_ratio, box_noise_scale)``
            (:class:`DenoisingQueries`).
        aux_head: None, or a dense head config (``in_channels`` / ``strides`` filled in: D channels at
            the stride of the map the transformer reads) whose loss, prefixed ``aux.``, trains the
            encoder's output map; not used at inference.

    The padding mask (pixels outside each sample's ``img_shape``) goes through the encoder and the
    decoder's cross-attention and shapes the positional encoding, so predictions of a padded image match
    those of the unpadded one. ``_forward`` (mode ``'tensor'``) returns the head's raw
    ``(cls_logits [L, B, Q, K], boxes [L, B, Q, 4])`` of every decoder layer (K = C + 1, or C with a
    sigmoid class loss), boxes normalised
    (cx, cy, w, h) of the unpadded image.
    """

    def __init__(self, backbone: dict, head: dict, neck: dict = None, num_queries: int = 100,
                 embed_dims: int = 256, encoder: dict = None, decoder: dict = None,
                 positional_encoding: dict = None, query_type: str = 'embedding', proposal_size: float = 0.05,
                 denoising: dict = None, aux_head: dict = None, data_preprocessor: dict = None,
                 init_cfg=None):
        preprocessor = MODELS.build(data_preprocessor or dict(type='DetDataPreprocessor'))
        super().__init__(data_preprocessor=preprocessor, init_cfg=init_cfg)
        if query_type not in QUERY_TYPES:
            raise ValueError(f'query_type must be one of {QUERY_TYPES}, got {query_type!r}')
        self.backbone = MODELS.build(backbone)
        channels, strides = list(self.backbone.out_channels), list(self.backbone.strides)
        self.neck = None
        if neck is not None:
            neck = dict(neck)
            neck.setdefault('in_channels', channels)
            neck.setdefault('strides', strides)
            self.neck = MODELS.build(neck)
            channels, strides = list(self.neck.out_channels), list(self.neck.strides)
        self.num_queries, self.embed_dims, self.query_type = num_queries, embed_dims, query_type
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
        if self.decoder.cross_attention == 'deformable' and query_type == 'embedding':
            raise ValueError("deformable cross-attention samples around reference boxes: use query_type "
                             "'anchor' or 'encoder', not 'embedding'")
        self.level_proj = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, embed_dims, 1), nn.GroupNorm(math.gcd(32, embed_dims), embed_dims))
            for c in channels[:-1])
        if query_type == 'embedding':
            self.query_embedding = nn.Embedding(num_queries, embed_dims)
        elif query_type == 'anchor':
            self.anchor_embedding = nn.Embedding(num_queries, 4)
        else:
            if not 0 < proposal_size < 1:
                raise ValueError(f'proposal_size is a fraction of the image in (0, 1), got {proposal_size}')
            self.proposal_size = proposal_size
            self.enc_output = nn.Sequential(nn.Linear(embed_dims, embed_dims), nn.LayerNorm(embed_dims))
        self.denoising = None
        if denoising is not None:
            self.denoising = DenoisingQueries(head['num_classes'], embed_dims, **denoising)
        # Boxes -> positional queries (sine embedding + 2-layer MLP), built only where boxes are queries.
        self.ref_point_head = (MLP(2 * embed_dims, embed_dims, embed_dims, 2)
                               if query_type != 'embedding' or denoising is not None else None)
        self.head = MODELS.build(dict(head, embed_dims=embed_dims, encoder_proposals=query_type == 'encoder'))
        self.aux_head = None
        if aux_head is not None:
            self.aux_head = MODELS.build(dict(aux_head, in_channels=[embed_dims], strides=[strides[-1]]))
            if self.aux_head.num_classes != self.head.num_classes:
                raise ValueError(f'aux_head has {self.aux_head.num_classes} classes but head has '
                                 f'{self.head.num_classes}')
        if self.denoising is None and query_type != 'encoder':
            # Every query enters the first decoder layer with zero content, so that layer's value
            # projection sees only zeros: its weight cannot change the output and gets an exactly zero
            # gradient (as in the reference). Frozen, so it is not reported as untrained nor decayed.
            self.decoder.layers[0].self_attn.v_proj.weight.requires_grad_(False)

    def init_weights(self):
        super().init_weights()
        if self.query_type == 'anchor':
            # Anchors spread uniformly over the image (in sigmoid space: centres in (0, 1), small sizes).
            nn.init.uniform_(self.anchor_embedding.weight[:, :2], -3.0, 3.0)
            nn.init.constant_(self.anchor_embedding.weight[:, 2:], -1.5)

    def extract_feat(self, inputs: torch.Tensor) -> tuple:
        feats = self.backbone(inputs)
        if self.neck is not None:
            feats = self.neck(feats)
        return tuple(feats)

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

    def select_queries(self, memory: torch.Tensor, mask: torch.Tensor) -> tuple:
        """Two-stage query selection. ``memory [B, hw, D]``, ``mask [B, h, w]`` -> content ``[B, Q, D]``
        and reference boxes ``[B, Q, 4]`` of the Q best-scoring unpadded tokens (gradient stopped), and
        every token's proposals ``(cls_logits [B, hw, K], boxes [B, hw, 4])`` for the loss. A token's
        score is its most probable object class; padded tokens come last (an image padded to under Q
        valid tokens gets some of them, whose boxes lie outside it). The check is on shapes only, so
        the model exports with ``torch.export``."""
        padding = mask.flatten(1)
        if padding.shape[1] < self.num_queries:
            raise ValueError(f'the encoder map has {padding.shape[1]} tokens, fewer than the '
                             f'{self.num_queries} queries to select: use a larger input or fewer queries')
        tokens = self.enc_output(memory.masked_fill(padding[..., None], 0.0))
        cls_logits, boxes = self.head.encoder_forward(tokens, self.token_anchors(mask))
        scores = self.head.class_scores(cls_logits.detach()).amax(-1).masked_fill(padding, -1.0)
        # Exact ties (common at random init) go to the lower token index, as in ONNX's TopK, so an exported
        # model selects the same set: the float64 offset is far below a float32 score's resolution. The
        # queries are then kept in token order.
        index = torch.arange(scores.shape[1], device=scores.device, dtype=torch.float64)
        ranked = (scores.double() - 1e-12 * index).topk(self.num_queries, dim=1).indices
        top = ranked.sort(dim=1).values[..., None]                                     # [B, Q, 1]
        content = tokens.gather(1, top.expand(-1, -1, tokens.shape[-1])).detach()
        reference = boxes.gather(1, top.expand(-1, -1, 4)).detach()
        return content, reference, (cls_logits, boxes)

    def forward_transformer(self, inputs: torch.Tensor, data_samples=None,
                            denoise: bool = False) -> TransformerOutput:
        """Backbone, encoder and decoder (:class:`TransformerOutput`); denoising queries only with
        ``denoise`` and a model that has them."""
        feats = self.extract_feat(inputs)
        feat = feats[-1]
        input_mask = self.padding_mask(inputs, data_samples)[None].float()
        mask = F.interpolate(input_mask, size=feat.shape[-2:])[0].bool()          # [B, h, w]
        memory = self.input_proj(feat).flatten(2).transpose(1, 2)                  # [B, hw, D]
        memory_pos = self.positional_encoding(mask).flatten(2).transpose(1, 2).to(memory.dtype)
        padding = mask.flatten(1)
        memory = self.encoder(memory, memory_pos, padding)
        memory_map = memory.transpose(1, 2).unflatten(2, feat.shape[-2:])            # [B, D, h, w]

        batch = inputs.shape[0]
        content = memory.new_zeros(batch, self.num_queries, self.embed_dims)
        query_pos = reference = proposals = None
        if self.query_type == 'embedding':
            query_pos = self.query_embedding.weight.expand(batch, -1, -1)
        elif self.query_type == 'anchor':
            reference = self.anchor_embedding.weight.sigmoid().expand(batch, -1, -1)
        else:
            content, reference, proposals = self.select_queries(memory, mask)
        dn = None
        if denoise and self.denoising is not None:
            gts = [s.gt_instances for s in data_samples]
            dn = self.denoising([gt.labels.to(inputs.device) for gt in gts],
                                [normalised_cxcywh(gt.bboxes.to(inputs.device), s.metainfo['img_shape'])
                                 for gt, s in zip(gts, data_samples)], self.num_queries)
        attn_mask = None
        if dn is not None:
            content = torch.cat([dn.content.to(content.dtype), content], dim=1)
            if reference is None:
                query_pos = torch.cat([self._box_queries(dn.boxes).to(query_pos.dtype), query_pos], dim=1)
            else:
                reference = torch.cat([dn.boxes, reference], dim=1)
            attn_mask = dn.attn_mask
        levels, paddings, shapes = [], [], []       # finer maps for a multi-scale deformable decoder
        for proj, level in zip(self.level_proj, feats[:-1]):
            levels.append(proj(level).flatten(2).transpose(1, 2).to(memory.dtype))
            paddings.append(F.interpolate(input_mask, size=level.shape[-2:])[0].bool().flatten(1))
            shapes.append(tuple(level.shape[-2:]))
        hidden, references = self.decoder(content, torch.cat(levels + [memory], 1), memory_pos,
                                          torch.cat(paddings + [padding], 1), query_pos=query_pos,
                                          self_attn_mask=attn_mask, reference=reference,
                                          pos_from_reference=self._box_queries, refine=self.head.box_delta,
                                          memory_shapes=shapes + [tuple(feat.shape[-2:])])
        return TransformerOutput(hidden, references, dn, proposals, memory_map)

    def loss(self, inputs, data_samples):
        out = self.forward_transformer(inputs, data_samples, denoise=True)
        losses = self.head.loss(out.hidden, out.references, data_samples, out.denoising, out.proposals)
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
