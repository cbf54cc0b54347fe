"""CenterNet training targets: a Gaussian-splatted centre heatmap per class plus the size and sub-pixel
offset of each object at its centre pixel (Zhou et al., "Objects as Points", sec. 3)."""
from typing import NamedTuple

import torch

from det.registry import TASK_UTILS


class CenterNetTargets(NamedTuple):
    """Targets of one image for the M objects kept (boxes of zero size after clipping are dropped).

    - ``heatmap`` float32 ``[C, H, W]``: Gaussian bumps, exactly 1 at each object's centre cell;
    - ``inds`` int64 ``[M]``: flat index ``y * W + x`` of each centre cell, the only pixel where size and
      offset are supervised;
    - ``wh`` float32 ``[M, 2]``: (w, h) in output cells;
    - ``offset`` float32 ``[M, 2]``: ``c - floor(c)`` of the centre ``c`` in output cells.
    """

    heatmap: torch.Tensor
    inds: torch.Tensor
    wh: torch.Tensor
    offset: torch.Tensor


def gaussian_radius(det_size, min_overlap: float = 0.7) -> torch.Tensor:
    """Heatmap radius for boxes of size ``det_size = (h, w)`` (floats or tensors ``[N]``), as the
    reference CenterNet / CornerNet code computes it.

    Each of three cases solves ``IoU(gt, box with corners moved by r) = min_overlap`` for r:
    (1) both corners moved the same way, ``r**2 - (h+w) r + hw (1-o)/(1+o) = 0``;
    (2) both moved inwards, ``4 r**2 - 2(h+w) r + (1-o) hw = 0``;
    (3) both moved outwards, ``4o r**2 + 2o(h+w) r + (o-1) hw = 0``;
    and the smallest of the three is returned. The reference's known quirks are kept on purpose, since
    the published models were trained with them: every root is ``(b + sqrt(b**2 - 4ac)) / 2`` (divided
    by 2 instead of 2a, so cases 2 and 3 are a times the true root) and case 1 takes the larger root.
    Computed in float64 like the reference's numpy, so ``int(r)`` truncates at the same place.
    Returns float64, shaped like ``h``.
    """
    h = torch.as_tensor(det_size[0], dtype=torch.float64)
    w = torch.as_tensor(det_size[1], dtype=torch.float64)
    o = min_overlap

    def root(a, b, c):
        return (b + torch.sqrt(b ** 2 - 4 * a * c)) / 2

    r1 = root(1.0, h + w, w * h * (1 - o) / (1 + o))
    r2 = root(4.0, 2 * (h + w), (1 - o) * w * h)
    r3 = root(4 * o, -2 * o * (h + w), (o - 1) * w * h)
    return torch.minimum(torch.minimum(r1, r2), r3)


@TASK_UTILS.register_module()
class CenterNetTargetGenerator:
    """Turns one image's boxes into CenterNet targets on the stride-``stride`` output grid.

    For each box (xyxy input pixels, divided by ``stride`` and clipped to the map): the centre
    ``c = ((x1+x2)/2, (y1+y2)/2)`` in output cells, its integer cell ``floor(c)``, and the radius
    ``max(0, int(gaussian_radius((ceil(h), ceil(w)))))`` with h, w in output cells (as the reference).
    The class channel gets ``exp(-(dx**2 + dy**2) / (2 sigma**2))``, ``sigma = (2r + 1) / 6``, on the
    ``(2r+1) x (2r+1)`` window around the integer centre (peak exactly 1); where boxes of one class
    overlap, the element-wise maximum is kept. Boxes of zero width or height after clipping are dropped.

    Differs from the reference only in clipping to the map's extent ``[0, W]`` rather than ``[0, W-1]``,
    so boxes that reach the image border keep their true size.
    """

    def __init__(self, min_overlap: float = 0.7):
        self.min_overlap = min_overlap

    def __call__(self, bboxes: torch.Tensor, labels: torch.Tensor, num_classes: int, feat_shape,
                 stride: int) -> CenterNetTargets:
        """Args: ``bboxes`` [N, 4] xyxy input pixels, ``labels`` [N] in 0..C-1, ``feat_shape`` (H, W)
        of the output map, ``stride`` of that map in input pixels."""
        height, width = feat_shape
        boxes = torch.as_tensor(bboxes, dtype=torch.float32).reshape(-1, 4) / stride
        labels = torch.as_tensor(labels, dtype=torch.int64, device=boxes.device).reshape(-1)
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
        wh = boxes[:, 2:] - boxes[:, :2]
        keep = (wh > 0).all(dim=1)
        boxes, labels, wh = boxes[keep], labels[keep], wh[keep]

        centers = (boxes[:, :2] + boxes[:, 2:]) / 2
        cells = centers.floor().long()
        cells[:, 0] = cells[:, 0].clamp(0, width - 1)
        cells[:, 1] = cells[:, 1].clamp(0, height - 1)
        radius = gaussian_radius((wh[:, 1].ceil(), wh[:, 0].ceil()), self.min_overlap).floor().clamp(min=0)
        heatmap = self.draw_heatmap(cells, radius, labels, num_classes, feat_shape)
        return CenterNetTargets(heatmap=heatmap, inds=cells[:, 1] * width + cells[:, 0], wh=wh,
                                offset=centers - cells.float())

    @staticmethod
    def draw_heatmap(cells: torch.Tensor, radius: torch.Tensor, labels: torch.Tensor, num_classes: int,
                     feat_shape) -> torch.Tensor:
        """Splat one Gaussian per object at integer ``cells`` [N, 2] (x, y) with integer ``radius`` [N]
        into a ``[C, H, W]`` map, keeping the per-class maximum. Vectorised: the 2-D Gaussian is the
        outer product of its 1-D x and y factors, each cut to ``|d| <= r``."""
        height, width = feat_shape
        device = cells.device
        sigma = ((2 * radius + 1) / 6).float().to(device)[:, None]
        r = radius.float().to(device)[:, None]
        dx = torch.arange(width, device=device)[None] - cells[:, :1]           # [N, W]
        dy = torch.arange(height, device=device)[None] - cells[:, 1:]          # [N, H]
        gx = torch.exp(-dx.float() ** 2 / (2 * sigma ** 2)) * (dx.abs() <= r)
        gy = torch.exp(-dy.float() ** 2 / (2 * sigma ** 2)) * (dy.abs() <= r)
        gauss = (gy[:, :, None] * gx[:, None, :]).flatten(1)                   # [N, H*W]
        heatmap = gauss.new_zeros(num_classes, height * width)
        index = labels.to(device)[:, None].expand_as(gauss)
        heatmap.scatter_reduce_(0, index, gauss, reduce='amax')
        return heatmap.view(num_classes, height, width)
