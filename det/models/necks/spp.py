"""Spatial pyramid pooling necks.

- ``SPP`` / ``SPPF``: YOLO's (v3-SPP, v4, v5) stride-1 max-pool block that widens the receptive field of
  the coarsest map without changing its size.
- ``SPPNetPooling``: SPP-net's (He et al. 2014) pooling to fixed bins, giving a fixed-length vector
  whatever the input size, for a fully connected head.
"""
import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from det.registry import MODELS

ACTIVATIONS = {'silu': lambda: nn.SiLU(inplace=True), 'leaky_relu': lambda: nn.LeakyReLU(0.1, inplace=True)}


class ConvBNAct(nn.Sequential):
    """Conv (no bias) + BatchNorm + activation: ``'silu'`` (YOLOv5+) or ``'leaky_relu'`` (slope 0.1,
    YOLOv3/v4)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, act: str = 'silu'):
        if act not in ACTIVATIONS:
            raise ValueError(f'act={act!r}; choose one of {sorted(ACTIVATIONS)}')
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels), ACTIVATIONS[act]())


@MODELS.register_module()
class SPP(BaseModule):
    """YOLO SPP on level ``in_index`` (default the coarsest); the other levels pass through unchanged.

    ``x -> cv1 (1x1, C -> C/2) -> [x, maxpool_k(x) for k in kernel_sizes] -> concat -> cv2 (1x1)``,
    pools with stride 1 and padding ``k // 2`` so ``[B, C, H, W]`` maps to ``[B, out_channels, H, W]``.
    ``out_channels`` (int) defaults to the level's input channels; ``self.out_channels`` is the list
    for all levels. Conv blocks are conv + BN + ``act`` (SiLU by default, as in YOLOv5).
    """

    def __init__(self, in_channels, strides, kernel_sizes=(5, 9, 13), in_index: int = -1,
                 out_channels: int = None, act: str = 'silu', init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.in_index = in_index % len(in_channels)
        channels = in_channels[self.in_index]
        hidden = channels // 2
        out_channels = channels if out_channels is None else out_channels
        self.cv1 = ConvBNAct(channels, hidden, 1, act)
        self.cv2 = ConvBNAct(hidden * (len(kernel_sizes) + 1), out_channels, 1, act)
        self.pools = nn.ModuleList(nn.MaxPool2d(k, stride=1, padding=k // 2) for k in kernel_sizes)
        self.out_channels = list(in_channels)
        self.out_channels[self.in_index] = out_channels
        self.strides = list(strides)

    def pyramid(self, x: torch.Tensor) -> list:
        """``[B, C, H, W]`` -> the maps to concatenate: ``x`` and its pooled copies."""
        return [x] + [pool(x) for pool in self.pools]

    def forward(self, feats) -> tuple:
        feats = list(feats)
        x = self.cv1(feats[self.in_index])
        feats[self.in_index] = self.cv2(torch.cat(self.pyramid(x), dim=1))
        return tuple(feats)


@MODELS.register_module()
class SPPF(SPP):
    """SPP-Fast (YOLOv5): one ``kernel_size`` pool applied ``num_pools`` times in sequence. Two stride-1
    5x5 max-pools equal one 9x9, three equal one 13x13, so with the same ``cv1``/``cv2`` weights this
    equals ``SPP(kernel_sizes=(5, 9, 13))`` exactly, at lower cost."""

    def __init__(self, in_channels, strides, kernel_size: int = 5, num_pools: int = 3, in_index: int = -1,
                 out_channels: int = None, act: str = 'silu', init_cfg=None):
        super().__init__(in_channels, strides, (kernel_size,) * num_pools, in_index, out_channels, act,
                         init_cfg)
        # Same cv1/cv2 (and state-dict keys) as SPP; the parallel pools become one pool reused in series.
        self.pools = nn.MaxPool2d(kernel_size, stride=1, padding=kernel_size // 2)
        self.num_pools = num_pools

    def pyramid(self, x: torch.Tensor) -> list:
        maps = [x]
        for _ in range(self.num_pools):
            maps.append(self.pools(maps[-1]))
        return maps


@MODELS.register_module()
class SPPNetPooling(BaseModule):
    """SPP-net pyramid pooling of level ``in_index`` (default the coarsest) into fixed bin grids.

    ``[B, C, H, W]`` (any ``H, W``) -> ``[B, C * sum(b * b for b in bins)]`` (``[B, 21 C]`` for bins
    1, 2, 4): adaptive max-pooling to each ``b x b`` grid, each flattened channel-major and
    concatenated in ``bins`` order. Returns a 1-tuple; ``out_channels`` is that vector length and
    ``strides`` the pooled level's stride (the vector summarises that map).
    """

    def __init__(self, in_channels, strides, bins=(1, 2, 4), in_index: int = -1, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.in_index = in_index % len(in_channels)
        self.bins = tuple(bins)
        self.out_channels = [in_channels[self.in_index] * sum(b * b for b in self.bins)]
        self.strides = [strides[self.in_index]]

    def forward(self, feats) -> tuple:
        x = feats[self.in_index]
        return (torch.cat([F.adaptive_max_pool2d(x, b).flatten(1) for b in self.bins], dim=1),)
