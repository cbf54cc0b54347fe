"""Anchor boxes for the RPN: for every feature level, ``len(sizes) * len(ratios)`` boxes centred on each
grid position, laid out as torchvision's ``AnchorGenerator`` (Ren et al. 2015, sec. 3.1)."""
import torch

from det.registry import TASK_UTILS


@TASK_UTILS.register_module()
class AnchorGenerator:
    """Per-level anchors in xyxy input pixels.

    Args:
        strides: input pixels between neighbouring positions of each level (filled in by the head).
        sizes: per level, the anchor sides ``s`` (square-root of the area) in input pixels, e.g.
            ``[[32, 64, 128, 256, 512]] * 3``; one list is used for every level.
        ratios: per level (or one list for all) the aspect ratios ``h / w`` (0.5 is a wide box).

    Base anchors (torchvision's layout): for ratio ``r`` and size ``s``, ``h = s * sqrt(r)``,
    ``w = s / sqrt(r)``; the box ``[-w/2, -h/2, w/2, h/2]`` is rounded to whole pixels; order is
    ratio-major, size-minor. A level's anchors are the base anchors shifted to every position
    ``(x * stride, y * stride)`` (the top-left pixel of the cell, torchvision's centring), ordered
    position-major (row, column) then base anchor, so that ``anchors[(y * W + x) * A + a]`` matches the
    head's ``[B, A, H, W] -> [B, H*W*A]`` flattening.
    """

    def __init__(self, strides, sizes, ratios):
        strides = [int(s) for s in strides]
        sizes = self._per_level(sizes, len(strides), 'sizes')
        ratios = self._per_level(ratios, len(strides), 'ratios')
        for level, (size, ratio) in enumerate(zip(sizes, ratios)):
            if not size or not ratio or min(size) <= 0 or min(ratio) <= 0:
                raise ValueError(f'level {level}: anchor sizes {size} and ratios {ratio} must be non-empty '
                                 'and positive')
        self.strides = strides
        self.sizes = sizes
        self.ratios = ratios
        self.base_anchors = [self._base_anchors(s, r) for s, r in zip(sizes, ratios)]

    @staticmethod
    def _per_level(values, num_levels: int, name: str) -> list:
        """A list per level: a flat list of numbers is shared by all levels."""
        values = list(values)
        if values and not isinstance(values[0], (list, tuple)):
            return [[float(v) for v in values]] * num_levels
        if len(values) != num_levels:
            raise ValueError(f'{name} has {len(values)} levels, the head {num_levels} (strides)')
        return [[float(v) for v in level] for level in values]

    @staticmethod
    def _base_anchors(sizes, ratios) -> torch.Tensor:
        """``[R*S, 4]`` zero-centred anchors, ratio-major, rounded to pixels."""
        scales = torch.as_tensor(sizes, dtype=torch.float32)
        h_ratios = torch.sqrt(torch.as_tensor(ratios, dtype=torch.float32))
        w_ratios = 1 / h_ratios
        ws = (w_ratios[:, None] * scales[None, :]).view(-1)
        hs = (h_ratios[:, None] * scales[None, :]).view(-1)
        return (torch.stack([-ws, -hs, ws, hs], dim=1) / 2).round()

    @property
    def num_base_anchors(self) -> list:
        """Anchors per position of each level."""
        return [len(b) for b in self.base_anchors]

    def grid_anchors(self, featmap_sizes, device=None) -> list:
        """One ``[H_l*W_l*A_l, 4]`` float32 tensor of xyxy input-pixel anchors per level of size
        ``featmap_sizes[l] = (H_l, W_l)``."""
        if len(featmap_sizes) != len(self.strides):
            raise ValueError(f'{len(featmap_sizes)} feature maps for {len(self.strides)} anchor levels')
        anchors = []
        for (height, width), stride, base in zip(featmap_sizes, self.strides, self.base_anchors):
            shift_x = torch.arange(0, width, dtype=torch.int32, device=device) * stride
            shift_y = torch.arange(0, height, dtype=torch.int32, device=device) * stride
            shift_y, shift_x = torch.meshgrid(shift_y, shift_x, indexing='ij')
            shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
            shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)
            anchors.append((shifts.view(-1, 1, 4) + base.to(device).view(1, -1, 4)).reshape(-1, 4))
        return anchors
