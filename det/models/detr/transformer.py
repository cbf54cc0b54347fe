"""DETR's transformer (Carion et al., 2020): post-norm encoder and decoder layers whose positional
encodings are added to queries and keys at every attention (never to values), with attention through
``torch.nn.functional.scaled_dot_product_attention`` so fused / flash kernels run where available.

Sequences are batch-first ``[B, L, D]``. Attention masks are boolean and follow SDPA: True means "may
attend". The decoder optionally carries reference boxes refined layer by layer (DAB-DETR's anchor
queries): the positional query of each layer is then computed from the current reference.
"""
import torch
import torch.nn.functional as F
from torch import nn

from .deformable_attention import DeformableCrossAttention

CROSS_ATTENTIONS = ('global', 'deformable')


def inverse_sigmoid(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``log(x / (1 - x))`` with ``x`` clamped to ``[eps, 1 - eps]`` (finite at 0 and 1)."""
    x = x.clamp(min=eps, max=1 - eps)
    return torch.log(x / (1 - x))


class MLP(nn.Module):
    """``num_layers`` linear layers with ReLU between them (DETR's box head: 3 layers)."""

    def __init__(self, in_dims: int, hidden_dims: int, out_dims: int, num_layers: int):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f'num_layers must be >= 1, got {num_layers}')
        dims = [in_dims] + [hidden_dims] * (num_layers - 1) + [out_dims]
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims[:-1], dims[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


def attention(q, k, v, attn_mask=None, dropout_p: float = 0.0) -> torch.Tensor:
    """``scaled_dot_product_attention`` of ``[B, heads, L, d]`` tensors. On CPU it runs in fp32 also under
    bf16 autocast: there the bf16 flash kernel took 2-6x the fp32 one's time, forward + backward, at
    DETR's shapes (8 heads of 16 channels over 130-400 tokens, torch 2.14; measured by
    benchmarks/attention_kernels.py). The output returns in the input's dtype."""
    if q.device.type != 'cpu' or q.dtype == torch.float32:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)
    with torch.autocast('cpu', enabled=False):
        out = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=attn_mask,
                                             dropout_p=dropout_p)
    return out.to(q.dtype)


class MultiheadAttention(nn.Module):
    """Multi-head attention with separate q / k / v / output projections.

    ``forward(query [B, Lq, D], key [B, Lk, D], value [B, Lk, D], attn_mask)`` -> ``[B, Lq, D]``;
    ``attn_mask`` bool broadcastable to ``[B, heads, Lq, Lk]``, True where attention is allowed.
    """

    def __init__(self, embed_dims: int, num_heads: int, attn_drop: float = 0.0):
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims={embed_dims} is not divisible by num_heads={num_heads}')
        self.num_heads, self.attn_drop = num_heads, attn_drop
        self.q_proj = nn.Linear(embed_dims, embed_dims)
        self.k_proj = nn.Linear(embed_dims, embed_dims)
        self.v_proj = nn.Linear(embed_dims, embed_dims)
        self.out_proj = nn.Linear(embed_dims, embed_dims)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, dims = x.shape
        return x.view(batch, length, self.num_heads, dims // self.num_heads).transpose(1, 2)

    def forward(self, query, key, value, attn_mask=None) -> torch.Tensor:
        q, k, v = (self._heads(self.q_proj(query)), self._heads(self.k_proj(key)),
                   self._heads(self.v_proj(value)))
        out = attention(q, k, v, attn_mask, self.attn_drop if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).flatten(2))


class FFN(nn.Module):
    """``linear2(dropout(relu(linear1(x))))``, DETR's feed-forward block."""

    def __init__(self, embed_dims: int, ffn_dims: int, dropout: float):
        super().__init__()
        self.linear1, self.linear2 = nn.Linear(embed_dims, ffn_dims), nn.Linear(ffn_dims, embed_dims)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.linear2(self.dropout(F.relu(self.linear1(x))))


class EncoderLayer(nn.Module):
    """Post-norm self-attention + FFN; the positional encoding is added to queries and keys."""

    def __init__(self, embed_dims: int, num_heads: int, ffn_dims: int, dropout: float):
        super().__init__()
        self.self_attn = MultiheadAttention(embed_dims, num_heads)
        self.norm1, self.norm2 = nn.LayerNorm(embed_dims), nn.LayerNorm(embed_dims)
        self.ffn = FFN(embed_dims, ffn_dims, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, pos, attn_mask):
        qk = x + pos
        x = self.norm1(x + self.dropout(self.self_attn(qk, qk, x, attn_mask)))
        return self.norm2(x + self.dropout(self.ffn(x)))


class DecoderLayer(nn.Module):
    """Post-norm query self-attention, cross-attention to the encoder memory, FFN. The query position is
    added to queries and keys of the self-attention and to the queries of the cross-attention; the
    memory position to the cross-attention's keys (``'global'``), or the queries' reference boxes place
    the samples of a :class:`DeformableCrossAttention` (``'deformable'``, ``num_points`` per head and
    each of ``num_levels`` memory maps)."""

    def __init__(self, embed_dims: int, num_heads: int, ffn_dims: int, dropout: float,
                 cross_attention: str = 'global', num_points: int = 4, num_levels: int = 1):
        super().__init__()
        self.self_attn = MultiheadAttention(embed_dims, num_heads)
        self.cross_attn = (MultiheadAttention(embed_dims, num_heads) if cross_attention == 'global'
                           else DeformableCrossAttention(embed_dims, num_heads, num_points, num_levels))
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(embed_dims) for _ in range(3))
        self.ffn = FFN(embed_dims, ffn_dims, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, query, query_pos, memory, memory_pos, memory_mask, self_attn_mask, reference=None,
                spatial: tuple = None):
        """``spatial``: ``(memory_shapes, memory_padding, valid_ratios)`` for deformable attention."""
        qk = query + query_pos
        query = self.norm1(query + self.dropout(self.self_attn(qk, qk, query, self_attn_mask)))
        if isinstance(self.cross_attn, DeformableCrossAttention):
            attended = self.cross_attn(query + query_pos, reference, memory, *spatial)
        else:
            attended = self.cross_attn(query + query_pos, memory + memory_pos, memory, memory_mask)
        query = self.norm2(query + self.dropout(attended))
        return self.norm3(query + self.dropout(self.ffn(query)))


def _xavier_init(module: nn.Module):
    """The reference's initialisation: Xavier-uniform for every weight matrix of the transformer."""
    for param in module.parameters():
        if param.dim() > 1:
            nn.init.xavier_uniform_(param)


class DetrTransformerEncoder(nn.Module):
    """``num_layers`` :class:`EncoderLayer` over the flattened feature map.

    ``forward(x [B, HW, D], pos [B, HW, D], padding [B, HW] bool True at padding)`` -> ``[B, HW, D]``;
    padded pixels are never attended to.
    """

    def __init__(self, embed_dims: int = 256, num_layers: int = 6, num_heads: int = 8, ffn_dims: int = 2048,
                 dropout: float = 0.1):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(embed_dims, num_heads, ffn_dims, dropout)
                                    for _ in range(num_layers))

    def init_weights(self):
        _xavier_init(self)

    def forward(self, x, pos, padding):
        attn_mask = ~padding[:, None, None, :]                          # [B, 1, 1, HW]
        for layer in self.layers:
            x = layer(x, pos, attn_mask)
        return x


class DetrTransformerDecoder(nn.Module):
    """``num_layers`` :class:`DecoderLayer` and one shared final LayerNorm, applied to every layer's
    output (the auxiliary losses read each of them).

    Two ways to give queries their position:

    - ``query_pos [B, Q, D]`` fixed for all layers (DETR's learned object queries);
    - ``reference [B, Q, 4]`` normalised (cx, cy, w, h) boxes with ``pos_from_reference`` (boxes ->
      ``[B, Q, D]``) and ``refine`` (hidden -> box deltas in inverse-sigmoid space): each layer's
      positional query comes from the current reference, which is then moved by the layer's predicted
      delta (gradient stopped, as DAB-DETR) for the next layer.

    ``cross_attention='deformable'`` (Deformable DETR) samples the memory around each query's current
    reference box, so it needs reference boxes and the maps' ``memory_shapes``; it reads ``num_levels``
    maps (``'global'`` reads one).
    """

    def __init__(self, embed_dims: int = 256, num_layers: int = 6, num_heads: int = 8, ffn_dims: int = 2048,
                 dropout: float = 0.1, cross_attention: str = 'global', num_points: int = 4,
                 num_levels: int = 1):
        super().__init__()
        if cross_attention not in CROSS_ATTENTIONS:
            raise ValueError(f'cross_attention must be one of {CROSS_ATTENTIONS}, got {cross_attention!r}')
        if cross_attention == 'global' and num_levels != 1:
            raise ValueError(f"global cross-attention reads one memory map, got num_levels={num_levels}: "
                             "use cross_attention='deformable' for several")
        self.cross_attention = cross_attention
        self.layers = nn.ModuleList(
            DecoderLayer(embed_dims, num_heads, ffn_dims, dropout, cross_attention, num_points, num_levels)
            for _ in range(num_layers))
        self.norm = nn.LayerNorm(embed_dims)

    def init_weights(self):
        _xavier_init(self)
        for layer in self.layers:
            if isinstance(layer.cross_attn, DeformableCrossAttention):
                layer.cross_attn.reset_parameters()

    def forward(self, query, memory, memory_pos, memory_padding, query_pos=None, self_attn_mask=None,
                reference=None, pos_from_reference=None, refine=None, memory_shapes=None) -> tuple:
        """Args:
            query: ``[B, Q, D]`` content queries; memory: ``[B, HW, D]``, the tokens of each map one
            after the other; memory_pos: their ``[B, HW, D]`` positions (global cross-attention only);
            memory_padding: ``[B, HW]`` bool, True at padding; self_attn_mask: bool ``[B, Q, Q]`` or
            ``[Q, Q]``, True where query i may attend to query j (denoising groups), None for all;
            memory_shapes: ``[(h, w)]`` of each memory map (deformable cross-attention only).

        Returns:
            ``hidden [L, B, Q, D]`` (normalised output of every layer) and ``references [L, B, Q, 4]``,
            the box each layer's output refines (None without ``reference``).
        """
        if (query_pos is None) == (reference is None):
            raise ValueError('give the decoder either query_pos or reference boxes, not both or neither')
        memory_mask = ~memory_padding[:, None, None, :]                 # [B, 1, 1, HW]
        spatial = None
        if self.cross_attention == 'deformable':
            if reference is None or memory_shapes is None:
                raise ValueError('deformable cross-attention needs reference boxes (query_type anchor or '
                                 'encoder) and memory_shapes')
            ratios = []                                   # each map's unpadded (width, height) fraction
            paddings = memory_padding.split([h * w for h, w in memory_shapes], 1)
            for padding, (height, width) in zip(paddings, memory_shapes):
                valid = ~padding.view(-1, height, width)
                ratios.append(torch.stack([valid[:, 0, :].sum(1) / width, valid[:, :, 0].sum(1) / height],
                                          -1))
            spatial = (memory_shapes, memory_padding, torch.stack(ratios, 1).float())      # ratios [B, L, 2]
        if self_attn_mask is not None:
            self_attn_mask = self_attn_mask.unsqueeze(-3)                 # [(B,) 1, Q, Q]
        hidden, references = [], []
        for i, layer in enumerate(self.layers):
            if reference is not None:
                query_pos = pos_from_reference(reference)
            query = layer(query, query_pos, memory, memory_pos, memory_mask, self_attn_mask, reference,
                          spatial)
            hidden.append(self.norm(query))
            if reference is not None:
                references.append(reference)
                if i < len(self.layers) - 1:
                    reference = (inverse_sigmoid(reference) + refine(hidden[-1])).sigmoid().detach()
        return torch.stack(hidden), (torch.stack(references) if references else None)
