"""Single-scale deformable cross-attention (Deformable DETR, Zhu et al. ICLR 2021): each query reads a few
bilinear samples of the encoder map placed around its reference box, instead of attending to every
token. Locality is built in, so a decoder trained from scratch need not learn from the set loss where
to look, which is what makes DETR's global cross-attention slow to converge."""
import math

import torch
import torch.nn.functional as F
from torch import nn


class DeformableCrossAttention(nn.Module):
    """Per head, ``num_points`` samples at ``centre + offset / num_points * size / 2`` of the query's
    reference box (offsets predicted from the query), mixed by softmax weights also predicted from the
    query. The sampling equals ``transformers``' ``DeformableDetrMultiscaleDeformableAttention`` with one
    feature level (tested).

    ``forward(query [B, Q, D], reference [B, Q, 4], memory [B, h*w, D], memory_shape (h, w),
    memory_padding [B, h*w] bool True at padding, valid_ratios [B, 2])`` -> ``[B, Q, D]``. ``query``
    includes its positional part; ``reference`` boxes are normalised (cx, cy, w, h) of the unpadded image;
    ``valid_ratios`` is the unpadded fraction (width, height) of the map, which maps them onto it. The
    sampling runs in fp32 also under autocast: bf16 would round locations by up to 1/256 of the map.
    """

    def __init__(self, embed_dims: int, num_heads: int, num_points: int = 4):
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims={embed_dims} is not divisible by num_heads={num_heads}')
        if num_points < 1:
            raise ValueError(f'num_points must be >= 1, got {num_points}')
        self.num_heads, self.num_points = num_heads, num_points
        self.sampling_offsets = nn.Linear(embed_dims, num_heads * num_points * 2)
        self.attention_weights = nn.Linear(embed_dims, num_heads * num_points)
        self.value_proj = nn.Linear(embed_dims, embed_dims)
        self.out_proj = nn.Linear(embed_dims, embed_dims)
        self.reset_parameters()

    def reset_parameters(self):
        """Deformable DETR's initialisation: offsets start on a ring, one direction per head, point k at
        distance k (so the samples spread over the box); equal weights; Xavier projections."""
        nn.init.zeros_(self.sampling_offsets.weight)
        theta = torch.arange(self.num_heads, dtype=torch.float32) * (2.0 * math.pi / self.num_heads)
        ring = torch.stack([theta.cos(), theta.sin()], -1)
        ring = ring / ring.abs().max(-1, keepdim=True).values                       # [heads, 2]
        steps = torch.arange(1, self.num_points + 1, dtype=torch.float32)[None, :, None]
        with torch.no_grad():
            self.sampling_offsets.bias.copy_((ring[:, None, :] * steps).flatten())
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for proj in (self.value_proj, self.out_proj):
            nn.init.xavier_uniform_(proj.weight)
            nn.init.zeros_(proj.bias)

    def forward(self, query, reference, memory, memory_shape, memory_padding, valid_ratios) -> torch.Tensor:
        batch, num_queries, dims = query.shape
        height, width = memory_shape
        heads, points, head_dims = self.num_heads, self.num_points, dims // self.num_heads
        value = self.value_proj(memory).masked_fill(memory_padding[..., None], 0.0)
        offsets = self.sampling_offsets(query).view(batch, num_queries, heads, points, 2)
        weights = self.attention_weights(query).view(batch, num_queries, heads, points).softmax(-1)
        with torch.autocast(query.device.type, enabled=False):
            boxes = reference.float() * valid_ratios.float().repeat(1, 2)[:, None, :]     # on the padded map
            locations = (boxes[:, :, None, None, :2]
                         + offsets.float() / points * boxes[:, :, None, None, 2:] * 0.5)  # [B, Q, H, P, 2]
            value_map = value.float().view(batch, height * width, heads, head_dims)
            value_map = value_map.permute(0, 2, 3, 1).reshape(batch * heads, head_dims, height, width)
            grid = (2.0 * locations - 1.0).transpose(1, 2).flatten(0, 1)                 # [B*H, Q, P, 2]
            sampled = F.grid_sample(value_map, grid, mode='bilinear', padding_mode='zeros',
                                    align_corners=False)                                # [B*H, d, Q, P]
            mix = weights.float().transpose(1, 2).reshape(batch * heads, 1, num_queries, points)
            out = (sampled * mix).sum(-1).view(batch, dims, num_queries).transpose(1, 2)
        return self.out_proj(out)
