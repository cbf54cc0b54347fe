"""Multi-scale deformable cross-attention (Deformable DETR, Zhu et al. ICLR 2021): each query reads a few
bilinear samples of each memory map placed around its reference box, instead of attending to every
token. Locality is built in, so a decoder trained from scratch need not learn from the set loss where
to look, which is what makes DETR's global cross-attention slow to converge."""
import math

import torch
import torch.nn.functional as F
from torch import nn


class DeformableCrossAttention(nn.Module):
    """Per head and per map (level), ``num_points`` samples at ``centre + offset / num_points * size / 2``
    of the query's reference box (offsets predicted from the query), mixed by softmax weights over all
    levels' samples, also predicted from the query. Equals ``transformers``'
    ``DeformableDetrMultiscaleDeformableAttention`` (tested with one and two levels).

    ``forward(query [B, Q, D], reference [B, Q, 4], memory [B, sum(h_l*w_l), D], memory_shapes
    [(h_l, w_l)] * L, memory_padding [B, sum(h_l*w_l)] bool True at padding, valid_ratios [B, L, 2])``
    -> ``[B, Q, D]``. ``memory`` holds the L maps' tokens one map after the other; ``query`` includes its
    positional part; ``reference`` boxes are normalised (cx, cy, w, h) of the unpadded image;
    ``valid_ratios`` is each map's unpadded fraction (width, height), which maps them onto it. The
    sampling runs in fp32 also under autocast: bf16 would round locations by up to 1/256 of the map.
    """

    def __init__(self, embed_dims: int, num_heads: int, num_points: int = 4, num_levels: int = 1):
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims={embed_dims} is not divisible by num_heads={num_heads}')
        if num_points < 1 or num_levels < 1:
            raise ValueError(f'num_points and num_levels must be >= 1, got {num_points}, {num_levels}')
        self.num_heads, self.num_points, self.num_levels = num_heads, num_points, num_levels
        self.sampling_offsets = nn.Linear(embed_dims, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(embed_dims, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(embed_dims, embed_dims)
        self.out_proj = nn.Linear(embed_dims, embed_dims)
        self.reset_parameters()

    def reset_parameters(self):
        """Deformable DETR's initialisation: offsets start on a ring, one direction per head, point k at
        distance k on every level (so the samples spread over the box); equal weights; Xavier
        projections."""
        nn.init.zeros_(self.sampling_offsets.weight)
        theta = torch.arange(self.num_heads, dtype=torch.float32) * (2.0 * math.pi / self.num_heads)
        ring = torch.stack([theta.cos(), theta.sin()], -1)
        ring = ring / ring.abs().max(-1, keepdim=True).values                       # [heads, 2]
        steps = torch.arange(1, self.num_points + 1, dtype=torch.float32)[None, None, :, None]
        offsets = (ring[:, None, None, :] * steps).expand(-1, self.num_levels, -1, -1)   # [heads, L, P, 2]
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(offsets.flatten())
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for proj in (self.value_proj, self.out_proj):
            nn.init.xavier_uniform_(proj.weight)
            nn.init.zeros_(proj.bias)

    def forward(self, query, reference, memory, memory_shapes, memory_padding, valid_ratios) -> torch.Tensor:
        batch, num_queries, dims = query.shape
        heads, levels, points = self.num_heads, self.num_levels, self.num_points
        if len(memory_shapes) != levels:
            raise ValueError(f'{len(memory_shapes)} memory maps for an attention built with '
                             f'num_levels={levels}')
        head_dims = dims // heads
        value = self.value_proj(memory).masked_fill(memory_padding[..., None], 0.0)
        offsets = self.sampling_offsets(query).view(batch, num_queries, heads, levels, points, 2)
        weights = self.attention_weights(query).view(batch, num_queries, heads, levels * points).softmax(-1)
        weights = weights.view(batch, num_queries, heads, levels, points)
        with torch.autocast(query.device.type, enabled=False):
            # Boxes on each padded map [B, Q, L, 4], then sampling locations [B, Q, H, L, P, 2].
            boxes = reference.float()[:, :, None, :] * valid_ratios.float().repeat(1, 1, 2)[:, None]
            locations = (boxes[:, :, None, :, None, :2]
                         + offsets.float() / points * boxes[:, :, None, :, None, 2:] * 0.5)
            values = value.float().split([h * w for h, w in memory_shapes], dim=1)
            out = 0.0
            for level, (height, width) in enumerate(memory_shapes):
                value_map = values[level].view(batch, height * width, heads, head_dims)
                value_map = value_map.permute(0, 2, 3, 1).reshape(batch * heads, head_dims, height, width)
                grid = (2.0 * locations[:, :, :, level] - 1.0).transpose(1, 2).flatten(0, 1)  # [B*H, Q, P, 2]
                sampled = F.grid_sample(value_map, grid, mode='bilinear', padding_mode='zeros',
                                        align_corners=False)                            # [B*H, d, Q, P]
                mix = weights[:, :, :, level].float().transpose(1, 2).reshape(batch * heads, 1, num_queries,
                                                                              points)
                out = out + (sampled * mix).sum(-1)
            out = out.view(batch, dims, num_queries).transpose(1, 2)
        return self.out_proj(out)
