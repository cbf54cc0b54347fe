"""RT-DETR's hybrid encoder (Zhao et al., *DETRs Beat YOLOs on Real-time Object Detection*, CVPR 2024,
sec. 4.2): attention only within the coarsest map (AIFI), then a convolutional cross-scale fusion (CCFM:
a top-down and a bottom-up path of RepVGG-style CSP blocks), so a multi-scale decoder reads every level
while self-attention costs what it costs on the coarsest map's few tokens.

Pinned to ``transformers``' ``RTDetrModel.encoder_input_proj`` + ``RTDetrHybridEncoder`` (same weights,
equal outputs: ``tests/models/detr/test_hybrid_encoder.py``)."""
import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from det.models.detr import MultiheadAttention
from det.registry import MODELS

from .fpn import match_size

ACTIVATIONS = {'silu': nn.SiLU, 'relu': nn.ReLU, 'gelu': nn.GELU}


def _activation(name):
    if name is None:
        return nn.Identity()
    if name not in ACTIVATIONS:
        raise ValueError(f'activation {name!r}; choose one of {sorted(ACTIVATIONS)} or None')
    return ACTIVATIONS[name]()


class ConvNormAct(nn.Sequential):
    """Conv (no bias, ``(k - 1) // 2`` padding) + BatchNorm + activation (``None``: identity)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, act='silu'):
        super().__init__(nn.Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2,
                                   bias=False),
                         nn.BatchNorm2d(out_channels), _activation(act))


class RepVggBlock(nn.Module):
    """``act(BN(conv3x3(x)) + BN(conv1x1(x)))`` (RepVGG's training-time form; the two branches could be
    fused into one 3x3 conv for inference)."""

    def __init__(self, channels: int, act: str = 'silu'):
        super().__init__()
        self.conv1 = ConvNormAct(channels, channels, 3, act=None)
        self.conv2 = ConvNormAct(channels, channels, 1, act=None)
        self.act = _activation(act)

    def forward(self, x):
        return self.act(self.conv1(x) + self.conv2(x))


class CSPRepLayer(nn.Module):
    """CCFM's fusion block: ``conv3(blocks(conv1(x)) + conv2(x))`` with two 1x1 branches of
    ``expansion * out_channels`` and ``num_blocks`` RepVGG blocks on one of them (RT-DETR's CSPRepLayer)."""

    def __init__(self, in_channels: int, out_channels: int, num_blocks: int = 3, expansion: float = 1.0,
                 act: str = 'silu'):
        super().__init__()
        hidden = int(out_channels * expansion)
        self.conv1 = ConvNormAct(in_channels, hidden, 1, act=act)
        self.conv2 = ConvNormAct(in_channels, hidden, 1, act=act)
        self.bottlenecks = nn.Sequential(*[RepVggBlock(hidden, act) for _ in range(num_blocks)])
        self.conv3 = (ConvNormAct(hidden, out_channels, 1, act=act) if hidden != out_channels
                      else nn.Identity())

    def forward(self, x):
        return self.conv3(self.bottlenecks(self.conv1(x)) + self.conv2(x))


def sincos_2d(height: int, width: int, dims: int, temperature: float, device) -> torch.Tensor:
    """RT-DETR's fixed 2-D encoding of integer pixel positions, ``[H * W, dims]`` in row-major order:
    ``[sin(y w), cos(y w), sin(x w), cos(x w)]`` with ``w_i = temperature ** (-i / (dims / 4))``.
    Computed in float32 (no float64 needed on any backend)."""
    if dims % 4:
        raise ValueError(f'the AIFI width {dims} must be divisible by 4 (sin / cos of y and x)')
    omega = 1.0 / temperature ** (torch.arange(dims // 4, dtype=torch.float32, device=device) / (dims // 4))
    grid_y, grid_x = torch.meshgrid(torch.arange(height, dtype=torch.float32, device=device),
                                    torch.arange(width, dtype=torch.float32, device=device), indexing='ij')
    emb_y, emb_x = grid_y.flatten().outer(omega), grid_x.flatten().outer(omega)
    return torch.cat([emb_y.sin(), emb_y.cos(), emb_x.sin(), emb_x.cos()], dim=1)


class AIFILayer(nn.Module):
    """One post-norm transformer encoder layer over the tokens of a map (attention-based intra-scale
    feature interaction): the position is added to queries and keys, never to values; FFN with GELU.
    ``forward(x [B, L, D], pos [1, L, D])`` -> ``[B, L, D]``."""

    def __init__(self, dims: int, num_heads: int, ffn_dims: int, dropout: float, act: str = 'gelu'):
        super().__init__()
        self.self_attn = MultiheadAttention(dims, num_heads, attn_drop=dropout)
        self.norm1, self.norm2 = nn.LayerNorm(dims), nn.LayerNorm(dims)
        self.ffn = nn.Sequential(nn.Linear(dims, ffn_dims), _activation(act), nn.Dropout(dropout),
                                 nn.Linear(ffn_dims, dims))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, pos):
        qk = x + pos
        x = self.norm1(x + self.dropout(self.self_attn(qk, qk, x)))
        return self.norm2(x + self.dropout(self.ffn(x)))


@MODELS.register_module()
class HybridEncoder(BaseModule):
    """Input projections, AIFI on the coarsest map, CCFM across all maps.

    Args:
        in_channels / strides: the backbone maps, by increasing stride, each twice the previous one.
        out_channels (int): D, the width of every output (and of the AIFI layer).
        num_encoder_layers: AIFI layers on the coarsest map (RT-DETR: 1; 0 leaves only the fusion).
        num_heads / ffn_dims / dropout: the AIFI layer's attention heads, FFN width and dropout.
        num_blocks / expansion: RepVGG blocks per CSP fusion block and its hidden width factor.
        act: activation of the convolutions (``'silu'``); ``ffn_act`` that of the AIFI FFN (``'gelu'``).
        temperature: of the sine positions.

    ``forward(feats)``: ``[B, in_channels[i], H_i, W_i]`` -> a tuple of ``[B, D, H_i, W_i]`` at every input
    stride. Each map is first projected to D (1x1 conv + BN); the top-down path fuses the upsampled
    coarser map with the finer one (concat, CSP block), the bottom-up path the stride-2 downsampled finer
    output with the top-down map of the next level.
    """

    def __init__(self, in_channels, strides, out_channels: int = 256, num_encoder_layers: int = 1,
                 num_heads: int = 8, ffn_dims: int = 1024, dropout: float = 0.0, num_blocks: int = 3,
                 expansion: float = 1.0, act: str = 'silu', ffn_act: str = 'gelu',
                 temperature: float = 10000, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) != len(strides) or not in_channels:
            raise ValueError(f'in_channels {in_channels} and strides {strides} must be non-empty and of '
                             f'equal length')
        if any(b != 2 * a for a, b in zip(strides[:-1], strides[1:])):
            raise ValueError(f'HybridEncoder fuses levels with 2x up/downsampling: strides must double '
                             f'from one level to the next, got {list(strides)}')
        if out_channels % 4:
            raise ValueError(f'out_channels={out_channels} must be divisible by 4 (2-D sine positions)')
        dims = out_channels
        self.temperature = temperature
        self.input_proj = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, dims, 1, bias=False), nn.BatchNorm2d(dims)) for c in in_channels)
        self.aifi = nn.ModuleList(AIFILayer(dims, num_heads, ffn_dims, dropout, ffn_act)
                                  for _ in range(num_encoder_layers))
        num_fusions = len(in_channels) - 1
        # Index i of the top-down layers fuses level (last - 1 - i); of the bottom-up ones level i + 1.
        self.lateral_convs = nn.ModuleList(ConvNormAct(dims, dims, 1, act=act) for _ in range(num_fusions))
        self.fpn_blocks = nn.ModuleList(CSPRepLayer(2 * dims, dims, num_blocks, expansion, act)
                                        for _ in range(num_fusions))
        self.downsample_convs = nn.ModuleList(ConvNormAct(dims, dims, 3, stride=2, act=act)
                                              for _ in range(num_fusions))
        self.pan_blocks = nn.ModuleList(CSPRepLayer(2 * dims, dims, num_blocks, expansion, act)
                                        for _ in range(num_fusions))
        self.out_channels = [dims] * len(in_channels)
        self.strides = list(strides)

    def encode_coarsest(self, x: torch.Tensor) -> torch.Tensor:
        """AIFI: ``[B, D, h, w]`` -> ``[B, D, h, w]``, the encoder layers over its ``h * w`` tokens."""
        batch, dims, height, width = x.shape
        pos = sincos_2d(height, width, dims, self.temperature, x.device).to(x.dtype)[None]
        tokens = x.flatten(2).transpose(1, 2)
        for layer in self.aifi:
            tokens = layer(tokens, pos)
        return tokens.transpose(1, 2).reshape(batch, dims, height, width)

    def forward(self, feats) -> tuple:
        if len(feats) != len(self.input_proj):
            raise ValueError(f'HybridEncoder expects {len(self.input_proj)} maps, got {len(feats)}')
        maps = [proj(f) for proj, f in zip(self.input_proj, feats)]
        maps[-1] = self.encode_coarsest(maps[-1])
        top_down = [maps[-1]]                                   # coarse to fine
        for i, (lateral, block) in enumerate(zip(self.lateral_convs, self.fpn_blocks)):
            finer = maps[-2 - i]
            top_down[-1] = lateral(top_down[-1])
            upsampled = F.interpolate(top_down[-1], size=finer.shape[-2:], mode='nearest')
            top_down.append(block(torch.cat([upsampled, finer], dim=1)))
        top_down.reverse()                                      # fine to coarse
        outs = [top_down[0]]
        for i, (down, block) in enumerate(zip(self.downsample_convs, self.pan_blocks)):
            coarser = top_down[i + 1]
            downsampled = match_size(down(outs[-1]), coarser.shape[-2:])
            outs.append(block(torch.cat([downsampled, coarser], dim=1)))
        return tuple(outs)
