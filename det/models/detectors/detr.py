"""The query-based detector: backbone ─▶ 1x1 input projection ─▶ transformer encoder ─▶ decoder over object
queries ─▶ class + box head (DETR, Carion et al. 2020), with two published speed-ups behind switches:

- ``query_type='anchor'``: each query is a learned box whose sine embedding (through a 2-layer MLP) is
  its positional query, refined by every decoder layer (DAB-DETR, Liu et al. ICLR 2022, without its
  width / height-modulated cross-attention);
- ``denoising=dict(...)``: noised ground-truth boxes and labels as extra decoder queries, masked from the
  matching queries (DN-DETR, Li et al. CVPR 2022), in training only.
"""
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

QUERY_TYPES = ('embedding', 'anchor')


@MODELS.register_module()
class DETR(BaseDetector):
    """DETR and its anchor / denoising variants, on the detector contract of :class:`BaseDetector`.

    Args:
        backbone / neck: configs; the transformer reads the last (coarsest) map of the tuple.
        head: ``DETRHead`` config (``embed_dims`` is filled in).
        num_queries: Q object queries.
        embed_dims: D, the transformer's width.
        encoder / decoder: ``dict(num_layers, num_heads, ffn_dims, dropout)``.
        positional_encoding: ``dict(temperature, normalize)`` of the 2-D sine encoding (D / 2 per axis).
        query_type: ``'embedding'`` (DETR's learned positional queries ``[Q, D]``, boxes predicted from
            scratch by every layer) or ``'anchor'`` (learned boxes ``[Q, 4]`` refined layer by layer).
        denoising: None, or ``dict(num_groups, label_noise_ratio, box_noise_scale)``
            (:class:`DenoisingQueries`).

    The padding mask (pixels outside each sample's ``img_shape``) goes through the encoder and the
    decoder's cross-attention and shapes the positional encoding, so predictions of a padded image match
    those of the unpadded one. ``_forward`` (mode ``'tensor'``) returns the head's raw
    ``(cls_logits [L, B, Q, C + 1], boxes [L, B, Q, 4])`` of every decoder layer, boxes normalised
    (cx, cy, w, h) of the unpadded image.
    """

    def __init__(self, backbone: dict, head: dict, neck: dict = None, num_queries: int = 100,
                 embed_dims: int = 256, encoder: dict = None, decoder: dict = None,
                 positional_encoding: dict = None, query_type: str = 'embedding', denoising: dict = None,
                 data_preprocessor: dict = None, init_cfg=None):
        preprocessor = MODELS.build(data_preprocessor or dict(type='DetDataPreprocessor'))
        super().__init__(data_preprocessor=preprocessor, init_cfg=init_cfg)
        if query_type not in QUERY_TYPES:
            raise ValueError(f'query_type must be one of {QUERY_TYPES}, got {query_type!r}')
        self.backbone = MODELS.build(backbone)
        channels = list(self.backbone.out_channels)
        self.neck = None
        if neck is not None:
            neck = dict(neck)
            neck.setdefault('in_channels', channels)
            neck.setdefault('strides', list(self.backbone.strides))
            self.neck = MODELS.build(neck)
            channels = list(self.neck.out_channels)
        self.num_queries, self.embed_dims, self.query_type = num_queries, embed_dims, query_type
        self.input_proj = nn.Conv2d(channels[-1], embed_dims, 1)
        self.positional_encoding = SinePositionalEncoding(embed_dims // 2, **(positional_encoding or {}))
        self.encoder = DetrTransformerEncoder(embed_dims, **(encoder or {}))
        self.decoder = DetrTransformerDecoder(embed_dims, **(decoder or {}))
        if query_type == 'embedding':
            self.query_embedding = nn.Embedding(num_queries, embed_dims)
        else:
            self.anchor_embedding = nn.Embedding(num_queries, 4)
        self.denoising = None
        if denoising is not None:
            self.denoising = DenoisingQueries(head['num_classes'], embed_dims, **denoising)
        # Boxes -> positional queries (sine embedding + 2-layer MLP), built only where boxes are queries.
        self.ref_point_head = (MLP(2 * embed_dims, embed_dims, embed_dims, 2)
                               if query_type == 'anchor' or denoising is not None else None)
        self.head = MODELS.build(dict(head, embed_dims=embed_dims))
        if self.denoising is None:
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

    def forward_transformer(self, inputs: torch.Tensor, data_samples=None, denoise: bool = False) -> tuple:
        """Backbone, encoder and decoder. Returns ``hidden [L, B, P + Q, D]``, ``references
        [L, B, P + Q, 4]`` (None for embedding queries) and the ``DenoisingQueriesOutput`` of the P
        denoising queries placed first (None, P = 0, unless ``denoise`` and the model has them)."""
        feat = self.extract_feat(inputs)[-1]
        mask = F.interpolate(self.padding_mask(inputs, data_samples)[None].float(),
                             size=feat.shape[-2:])[0].bool()                      # [B, h, w]
        memory = self.input_proj(feat).flatten(2).transpose(1, 2)                  # [B, hw, D]
        memory_pos = self.positional_encoding(mask).flatten(2).transpose(1, 2).to(memory.dtype)
        padding = mask.flatten(1)
        memory = self.encoder(memory, memory_pos, padding)

        batch = inputs.shape[0]
        content = memory.new_zeros(batch, self.num_queries, self.embed_dims)
        if self.query_type == 'embedding':
            query_pos = self.query_embedding.weight.expand(batch, -1, -1)
            reference = None
        else:
            query_pos = None
            reference = self.anchor_embedding.weight.sigmoid().expand(batch, -1, -1)
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
        hidden, references = self.decoder(content, memory, memory_pos, padding, query_pos=query_pos,
                                          self_attn_mask=attn_mask, reference=reference,
                                          pos_from_reference=self._box_queries,
                                          refine=self.head.box_delta)
        return hidden, references, dn

    def loss(self, inputs, data_samples):
        hidden, references, dn = self.forward_transformer(inputs, data_samples, denoise=True)
        return self.head.loss(hidden, references, data_samples, dn)

    def predict_in_input_pixels(self, inputs, data_samples):
        hidden, references, _ = self.forward_transformer(inputs, data_samples)
        return self.head.predict(hidden, references, data_samples)

    def _forward(self, inputs, data_samples=None):
        hidden, references, _ = self.forward_transformer(inputs, data_samples)
        return self.head(hidden, references)
