"""Sine positional encodings: DETR's fixed 2-D encoding of feature-map positions, and the same sines of
box coordinates that turn anchor / noised boxes into positional queries (DAB-DETR, DN-DETR)."""
import math

import torch
from torch import nn


def _sines(coords: torch.Tensor, num_feats: int, temperature: float) -> torch.Tensor:
    """``coords [...]`` -> ``[..., num_feats]``: ``sin`` at even and ``cos`` at odd channels of
    ``coords / temperature ** (2 * (i // 2) / num_feats)`` (the frequencies of "Attention is all you
    need"), interleaved channel by channel as DETR's reference does."""
    dim_t = torch.arange(num_feats, dtype=torch.float32, device=coords.device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode='floor') / num_feats)
    angles = coords.float()[..., None] / dim_t
    return torch.stack((angles[..., 0::2].sin(), angles[..., 1::2].cos()), dim=-1).flatten(-2)


class SinePositionalEncoding(nn.Module):
    """DETR's 2-D sine encoding of every feature-map pixel, from the padding mask.

    Positions count valid (unpadded) pixels along each axis (a cumulative sum of the valid mask), so a
    padded image encodes its content region as an unpadded one would; with ``normalize`` they are
    divided by the count at the last row / column and scaled to ``[0, scale]``. Output channels:
    ``num_feats`` for y then ``num_feats`` for x, so ``2 * num_feats`` = the transformer's width.
    """

    def __init__(self, num_feats: int = 128, temperature: float = 10000, normalize: bool = True,
                 scale: float = 2 * math.pi, eps: float = 1e-6):
        super().__init__()
        if num_feats % 2:
            raise ValueError(f'num_feats must be even (sin / cos pairs), got {num_feats}')
        self.num_feats, self.temperature = num_feats, temperature
        self.normalize, self.scale, self.eps = normalize, scale, eps

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        """``mask`` bool ``[B, H, W]``, True at padding -> encoding ``[B, 2 * num_feats, H, W]``."""
        if mask.dim() != 3:
            raise ValueError(f'mask must be [B, H, W], got shape {tuple(mask.shape)}')
        valid = (~mask).float()
        y_embed, x_embed = valid.cumsum(1), valid.cumsum(2)
        if self.normalize:
            y_embed = y_embed / (y_embed[:, -1:, :] + self.eps) * self.scale
            x_embed = x_embed / (x_embed[:, :, -1:] + self.eps) * self.scale
        pos_y = _sines(y_embed, self.num_feats, self.temperature)
        pos_x = _sines(x_embed, self.num_feats, self.temperature)
        return torch.cat((pos_y, pos_x), dim=-1).permute(0, 3, 1, 2)


def box_sine_embedding(boxes: torch.Tensor, num_feats: int, temperature: float = 10000,
                       scale: float = 2 * math.pi) -> torch.Tensor:
    """Normalised boxes ``[..., 4]`` (cx, cy, w, h in [0, 1]) -> ``[..., 4 * num_feats]``: each coordinate
    times ``scale`` through :func:`_sines`, concatenated in the order (cx, cy, w, h)."""
    if boxes.shape[-1] != 4:
        raise ValueError(f'boxes must end in 4 coordinates (cx, cy, w, h), got shape {tuple(boxes.shape)}')
    return _sines(boxes * scale, num_feats, temperature).flatten(-2)
