"""RoI feature extractors: a fixed-size feature per proposal, from torchvision's ``roi_align`` on the FPN
level a box's size picks (Faster R-CNN + FPN, Lin et al. 2017, eq. 1) or its position-sensitive
``ps_roi_align`` (R-FCN / Light-Head R-CNN / ThunderNet)."""
import math

import torch
from torch import nn
from torchvision.ops import ps_roi_align, roi_align

from det.registry import MODELS


@MODELS.register_module()
class RoIAlignExtractor(nn.Module):
    """``forward(feats, rois [K, 5]) -> [K, C, S, S]``: RoIAlign (``aligned=False``, as torchvision's
    ``MultiScaleRoIAlign``) of each RoI on one of the levels ``in_index`` (one index or a sequence) of
    ``feats``.

    ``rois`` rows are ``(batch index, x1, y1, x2, y2)`` in input pixels. With several levels (strides
    doubling from one to the next) a box of side ``sqrt(area)`` goes to level
    ``floor(canonical_level + log2(sqrt(area) / canonical_scale) + 1e-6)`` clamped to the levels' range
    (torchvision's ``LevelMapper``: 224-pixel boxes to stride 16).
    """

    def __init__(self, in_channels, strides, in_index=0, output_size: int = 7,
                 sampling_ratio: int = 2, canonical_scale: float = 224, canonical_level: int = 4):
        super().__init__()
        self.in_index = [in_index] if isinstance(in_index, int) else [int(i) for i in in_index]
        self.strides = [int(strides[i]) for i in self.in_index]
        levels = [math.log2(s) for s in self.strides]
        if any(b - a != 1 for a, b in zip(levels, levels[1:])) or any(v != int(v) for v in levels):
            raise ValueError(f'in_index {self.in_index} picks strides {self.strides}: several '
                             'levels need power-of-two strides that double from one to the next')
        channels = {int(in_channels[i]) for i in self.in_index}
        if len(channels) != 1:
            raise ValueError('the levels read need equal channels, got '
                             f'{[in_channels[i] for i in self.in_index]}')
        self.k_min, self.k_max = int(levels[0]), int(levels[-1])
        self.output_size = output_size
        self.sampling_ratio = sampling_ratio
        self.canonical_scale = canonical_scale
        self.canonical_level = canonical_level
        self.out_channels = channels.pop() * output_size * output_size

    def map_levels(self, rois: torch.Tensor) -> torch.Tensor:
        """Position in ``in_index`` of each RoI's level, long ``[K]``."""
        side = torch.sqrt((rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2]))
        level = torch.floor(self.canonical_level + torch.log2(side / self.canonical_scale)
                            + torch.tensor(1e-6, dtype=side.dtype))
        return level.clamp(min=self.k_min, max=self.k_max).to(torch.int64) - self.k_min

    def forward(self, feats, rois: torch.Tensor) -> torch.Tensor:
        maps = [feats[i] for i in self.in_index]
        rois = rois.to(maps[0].dtype)
        if len(maps) == 1:
            return roi_align(maps[0], rois, self.output_size, 1 / self.strides[0], self.sampling_ratio)
        levels = self.map_levels(rois)
        out = maps[0].new_zeros(rois.shape[0], maps[0].shape[1], self.output_size, self.output_size)
        for level, (feat, stride) in enumerate(zip(maps, self.strides)):
            inds = torch.where(levels == level)[0]
            out[inds] = roi_align(feat, rois[inds], self.output_size, 1 / stride,
                                  self.sampling_ratio).to(out.dtype)
        return out


@MODELS.register_module()
class PSRoIAlignExtractor(nn.Module):
    """``forward(feats, rois [K, 5]) -> [K, C / S**2, S, S]``: position-sensitive RoIAlign on level
    ``in_index``: bin (i, j) of output channel c averages input channel ``(c * S + i) * S + j``, so
    a thin map (ThunderNet's 245 = 5 x 7 x 7 channels) gives a small per-RoI feature (5 x 7 x 7) and the
    R-CNN subnet stays light. ``rois`` rows are ``(batch index, x1, y1, x2, y2)`` in input pixels."""

    def __init__(self, in_channels, strides, in_index: int = 0, output_size: int = 7,
                 sampling_ratio: int = 2):
        super().__init__()
        channels = int(in_channels[in_index])
        if channels % (output_size * output_size):
            raise ValueError(f'PSRoIAlign needs channels divisible by {output_size}x{output_size}; level '
                             f'{in_index} has {channels}')
        self.in_index = in_index
        self.stride = int(strides[in_index])
        self.output_size = output_size
        self.sampling_ratio = sampling_ratio
        self.out_channels = channels

    def forward(self, feats, rois: torch.Tensor) -> torch.Tensor:
        feat = feats[self.in_index]
        # torchvision's kernels have no half-precision CPU version: run in float32 under autocast.
        out = ps_roi_align(feat.float(), rois.float(), self.output_size, 1 / self.stride, self.sampling_ratio)
        return out.to(feat.dtype)
