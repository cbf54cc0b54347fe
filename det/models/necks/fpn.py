"""Feature Pyramid Network (Lin et al. 2017) with RetinaNet-style extra levels and an optional
PANet bottom-up path (Liu et al. 2018)."""
import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from det.registry import MODELS

UPSAMPLE_MODES = ('nearest', 'bilinear', 'deconv', 'pixel_shuffle')
EXTRA_MODES = (False, 'on_input', 'on_output')


def match_size(x: torch.Tensor, size) -> torch.Tensor:
    """Crop ``x [B, C, h, w]`` at the bottom/right to ``size`` and replicate-pad it where smaller.

    A learned 2x upsampling gives exactly ``2h x 2w``; the finer lateral may be one pixel smaller
    (odd size, ceil-rounded stride) or larger (floor-rounded stride), so this makes the sum well defined.
    """
    h, w = size
    x = x[..., :h, :w]
    pad_h, pad_w = h - x.shape[-2], w - x.shape[-1]
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode='replicate')
    return x


class LearnedUpsample2x(nn.Module):
    """2x upsampling with weights: ``'deconv'`` (transposed 2x2 conv, stride 2) or ``'pixel_shuffle'``
    (1x1 conv to 4x channels, then ``nn.PixelShuffle(2)``; a 1x1 keeps the cost at 4·C² per pixel).
    ``forward(x [B, C, h, w], size)`` returns ``[B, C, *size]``."""

    def __init__(self, channels: int, mode: str):
        super().__init__()
        if mode == 'deconv':
            self.up = nn.ConvTranspose2d(channels, channels, 2, stride=2)
        else:
            self.up = nn.Sequential(nn.Conv2d(channels, 4 * channels, 1), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor, size) -> torch.Tensor:
        return match_size(self.up(x), size)


@MODELS.register_module()
class FPN(BaseModule):
    """Top-down feature pyramid: ``P_i = conv3x3(lateral1x1(C_i) + up(lateral_{i+1}))``.

    Args:
        in_channels / strides: channels and strides of the backbone maps (increasing stride).
        out_channels (int): channels of every output level (``self.out_channels`` is the list).
        num_outs: number of outputs; levels beyond the used inputs are extra stride-2 levels (P6, P7).
        start_level: index of the first input used (e.g. 1 to skip C2).
        add_extra_convs: how extra levels are made: ``False`` = max-pool (kernel 1, stride 2) of the
            last output (Faster R-CNN's P6); ``'on_input'`` = 3x3 stride-2 conv on the last input C5,
            then on the previous extra level (RetinaNet); ``'on_output'`` = the same starting from P5.
        relu_before_extra_convs: ReLU before every extra conv but the first (RetinaNet: P7 = conv(ReLU(P6))).
        upsample: top-down upsampling, ``'nearest' | 'bilinear'`` (interpolated to the lateral's exact
            size) or learned ``'deconv' | 'pixel_shuffle'`` (2x, then cropped/padded to that size).
        bottom_up: add PANet's bottom-up path: ``N_0 = P_0``,
            ``N_{i+1} = conv3x3(P_{i+1} + conv3x3_stride2(N_i))``; extra levels then come from N.
        out_indices: which of the ``num_outs`` levels ``forward`` returns (default: all). Only the
            layers those levels need are built (e.g. ``(0,)`` under a head that reads the finest level:
            every lateral feeds it top-down, but the 3x3 output convs of the other levels would be read
            by nobody), so every parameter gets a gradient and torch's DDP needs no
            ``find_unused_parameters``.

    ``forward(feats)`` takes the backbone tuple ``[B, in_channels[i], H/s_i, W/s_i]`` and returns the
    ``out_indices`` levels ``[B, out_channels, ~H/s, ~W/s]`` by increasing stride. Convolutions have
    bias and no norm/activation, as in the paper and ``torchvision.ops.FeaturePyramidNetwork``.
    """

    def __init__(self, in_channels, strides, out_channels: int = 256, num_outs: int = None,
                 start_level: int = 0, add_extra_convs=False, relu_before_extra_convs: bool = False,
                 upsample: str = 'nearest', bottom_up: bool = False, out_indices=None, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) != len(strides):
            raise ValueError(f'in_channels {in_channels} and strides {strides} differ in length')
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(f'upsample={upsample!r}; choose one of {UPSAMPLE_MODES}')
        if add_extra_convs not in EXTRA_MODES:
            raise ValueError(f'add_extra_convs={add_extra_convs!r}; choose one of {EXTRA_MODES}')
        used_channels = list(in_channels[start_level:])
        used_strides = list(strides[start_level:])
        num_used = len(used_channels)
        num_outs = num_used if num_outs is None else num_outs
        if num_used < 1 or num_outs < num_used:
            raise ValueError(f'num_outs={num_outs} must be >= the {num_used} inputs used from '
                             f'start_level={start_level}')
        out_indices = range(num_outs) if out_indices is None else out_indices
        if not out_indices or any(not -num_outs <= i < num_outs for i in out_indices):
            raise ValueError(f'out_indices must pick levels of 0..{num_outs - 1}, got {out_indices}')
        out_indices = tuple(sorted({i % num_outs for i in out_indices}))
        self.start_level = start_level
        self.num_used = num_used
        self.num_outs = num_outs
        self.out_indices = out_indices
        self.add_extra_convs = add_extra_convs
        self.relu_before_extra_convs = relu_before_extra_convs
        self.upsample = upsample
        top = out_indices[-1]                       # the coarsest level asked for
        num_extra = max(0, top + 1 - num_used)      # extra levels to compute
        needed = {i for i in out_indices if i < num_used}
        if num_extra and add_extra_convs != 'on_input':
            needed.add(num_used - 1)                # extra levels start from the last output
        if bottom_up and needed:                    # N_i needs P_0..P_i
            needed = set(range(max(needed) + 1))
        # P_i reads laterals i..last (top-down), so only levels from the finest needed one are built.
        # Layers are keyed by level, so unbuilt levels leave gaps and keys read like a ModuleList's.
        first = min(needed, default=num_used)
        self.lateral_convs = nn.ModuleDict(
            {str(i): nn.Conv2d(used_channels[i], out_channels, 1) for i in range(first, num_used)})
        self.output_convs = nn.ModuleDict(
            {str(i): nn.Conv2d(out_channels, out_channels, 3, padding=1) for i in sorted(needed)})
        self.upsamplers = None
        if upsample in ('deconv', 'pixel_shuffle'):
            self.upsamplers = nn.ModuleDict(
                {str(i): LearnedUpsample2x(out_channels, upsample) for i in range(first, num_used - 1)})
        self.downsample_convs = self.bottom_up_convs = None
        if bottom_up and len(needed) > 1:
            self.downsample_convs = nn.ModuleList(
                nn.Conv2d(out_channels, out_channels, 3, stride=2, padding=1) for _ in range(len(needed) - 1))
            self.bottom_up_convs = nn.ModuleList(
                nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in range(len(needed) - 1))
        self.extra_convs = None
        if add_extra_convs and num_extra:
            first_in = used_channels[-1] if add_extra_convs == 'on_input' else out_channels
            self.extra_convs = nn.ModuleList(
                nn.Conv2d(first_in if i == 0 else out_channels, out_channels, 3, stride=2, padding=1)
                for i in range(num_extra))
        all_strides = used_strides + [used_strides[-1] * 2 ** (i + 1) for i in range(num_outs - num_used)]
        self.out_channels = [out_channels] * len(out_indices)
        self.strides = [all_strides[i] for i in out_indices]

    def _upsample(self, x: torch.Tensor, i: int, size) -> torch.Tensor:
        """Upsample level ``i + 1`` to the size of level ``i``."""
        if self.upsamplers is not None:
            return self.upsamplers[str(i)](x, size)
        if self.upsample == 'bilinear':
            return F.interpolate(x, size=size, mode='bilinear', align_corners=False)
        return F.interpolate(x, size=size, mode='nearest')

    def forward(self, feats) -> tuple:
        feats = feats[self.start_level:]
        if len(feats) != self.num_used:
            raise ValueError(f'FPN expects {self.num_used + self.start_level} maps, '
                             f'got {len(feats) + self.start_level}')
        laterals = {int(i): conv(feats[int(i)]) for i, conv in self.lateral_convs.items()}
        for i in sorted(laterals, reverse=True)[1:]:
            laterals[i] = laterals[i] + self._upsample(laterals[i + 1], i, laterals[i].shape[-2:])
        levels = {int(i): conv(laterals[int(i)]) for i, conv in self.output_convs.items()}
        if self.bottom_up_convs is not None:
            for i in range(len(self.bottom_up_convs)):
                down = match_size(self.downsample_convs[i](levels[i]), levels[i + 1].shape[-2:])
                levels[i + 1] = self.bottom_up_convs[i](levels[i + 1] + down)
        for level in range(self.num_used, self.out_indices[-1] + 1):
            i = level - self.num_used
            previous = levels.get(level - 1)
            if self.extra_convs is None:
                levels[level] = F.max_pool2d(previous, kernel_size=1, stride=2)
                continue
            source = feats[-1] if i == 0 and self.add_extra_convs == 'on_input' else previous
            if self.relu_before_extra_convs and i > 0:
                source = F.relu(source)
            levels[level] = self.extra_convs[i](source)
        return tuple(levels[i] for i in self.out_indices)
