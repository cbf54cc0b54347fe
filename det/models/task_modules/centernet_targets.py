"""CenterNet training targets: a Gaussian-splatted centre heatmap per class plus the size and sub-pixel
offset of each object at its centre pixel (Zhou et al., "Objects as Points", sec. 3); TTFNet's variant
(Liu et al., "Training-Time-Friendly Network for Real-Time Object Detection", AAAI 2020, sec. 3) with
elliptical Gaussians and box targets at every pixel of a Gaussian area around each centre, weighted for a
GIoU loss; and the mask of ignored regions (crowd / difficult boxes) where heatmap negatives carry no
loss."""
import math
from typing import NamedTuple

import torch

from det.registry import TASK_UTILS


class CenterNetTargets(NamedTuple):
    """Targets of one image for the M objects kept (boxes of zero size after clipping are dropped).

    - ``heatmap`` float32 ``[C, H, W]``: Gaussian bumps, exactly 1 at each object's centre cell;
    - ``inds`` int64 ``[M]``: flat index ``y * W + x`` of each centre cell, the only pixel where size and
      offset are supervised;
    - ``wh`` float32 ``[M, 2]``: (w, h) in output cells;
    - ``offset`` float32 ``[M, 2]``: ``c - floor(c)`` of the centre ``c`` in output cells;
    - ``ignore`` bool ``[H, W]``: pixels inside ignored boxes (see :func:`ignore_mask`).
    """

    heatmap: torch.Tensor
    inds: torch.Tensor
    wh: torch.Tensor
    offset: torch.Tensor
    ignore: torch.Tensor


class TTFNetTargets(NamedTuple):
    """TTFNet targets of one image on an ``H x W`` output map.

    - ``heatmap`` float32 ``[C, H, W]``: elliptical Gaussian bumps, exactly 1 at each object's centre cell;
    - ``bbox_target`` float32 ``[H*W, 4]``: the xyxy box (input pixels) a pixel regresses, zero where
      ``bbox_weight`` is 0;
    - ``bbox_weight`` float32 ``[H*W]``: the pixel's weight in the GIoU loss, 0 outside every object's
      regression area;
    - ``ignore`` bool ``[H, W]``: pixels inside ignored boxes (see :func:`ignore_mask`).
    """

    heatmap: torch.Tensor
    bbox_target: torch.Tensor
    bbox_weight: torch.Tensor
    ignore: torch.Tensor


def ignore_mask(ignored_bboxes, feat_shape, stride: int, device=None) -> torch.Tensor:
    """Bool ``[H, W]``: the output pixels an ignored box (xyxy input pixels, ``[K, 4]`` or ``None``)
    covers, i.e. whose centre ``((x + 0.5) * stride, (y + 0.5) * stride)`` lies inside it (borders
    included), plus the pixel holding the box's own centre so that boxes smaller than a pixel still
    mark one. Crowd regions and difficult objects are neither objects nor background: the heads give
    their negatives zero weight there."""
    height, width = feat_shape
    mask = torch.zeros(height, width, dtype=torch.bool, device=device)
    if ignored_bboxes is None or len(ignored_bboxes) == 0:
        return mask
    boxes = torch.as_tensor(ignored_bboxes, dtype=torch.float32).reshape(-1, 4).to(mask.device)
    xs = (torch.arange(width, device=mask.device) + 0.5) * stride
    ys = (torch.arange(height, device=mask.device) + 0.5) * stride
    in_x = (xs[None] >= boxes[:, 0:1]) & (xs[None] <= boxes[:, 2:3])             # [K, W]
    in_y = (ys[None] >= boxes[:, 1:2]) & (ys[None] <= boxes[:, 3:4])             # [K, H]
    mask |= (in_y[:, :, None] & in_x[:, None, :]).any(dim=0)
    centres = ((boxes[:, :2] + boxes[:, 2:]) / 2 / stride).floor().long()
    inside = (centres[:, 0] >= 0) & (centres[:, 0] < width) & (centres[:, 1] >= 0) & (centres[:, 1] < height)
    mask[centres[inside, 1], centres[inside, 0]] = True
    return mask


def _boxes_on_map(bboxes, labels, feat_shape, stride: int) -> tuple:
    """Boxes (xyxy input pixels) -> (boxes in output cells clipped to ``[0, W] x [0, H]``, labels,
    (w, h) in cells, kept mask), dropping boxes of zero width or height after clipping."""
    height, width = feat_shape
    boxes = torch.as_tensor(bboxes, dtype=torch.float32).reshape(-1, 4) / stride
    labels = torch.as_tensor(labels, dtype=torch.int64, device=boxes.device).reshape(-1)
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    wh = boxes[:, 2:] - boxes[:, :2]
    keep = (wh > 0).all(dim=1)
    return boxes[keep], labels[keep], wh[keep], keep


def _centre_cells(boxes: torch.Tensor, feat_shape) -> tuple:
    """Centres ``[N, 2]`` (x, y) in cells of boxes in cells, and their integer cells clamped to the map."""
    height, width = feat_shape
    centers = (boxes[:, :2] + boxes[:, 2:]) / 2
    cells = centers.floor().long()
    cells[:, 0] = cells[:, 0].clamp(0, width - 1)
    cells[:, 1] = cells[:, 1].clamp(0, height - 1)
    return centers, cells


def gaussian_windows(cells: torch.Tensor, radius: torch.Tensor, feat_shape) -> torch.Tensor:
    """One truncated 2-D Gaussian per object, flattened to ``[N, H*W]``.

    ``cells`` ``[N, 2]`` integer (x, y) centres; ``radius`` integer ``[N]`` (round) or ``[N, 2]``
    (rx, ry, elliptical). Each Gaussian is ``exp(-dx**2 / (2 sx**2) - dy**2 / (2 sy**2))`` with
    ``s = (2r + 1) / 6`` on the ``(2rx+1) x (2ry+1)`` window around the centre (peak exactly 1).
    Vectorised as the outer product of its 1-D x and y factors."""
    height, width = feat_shape
    device = cells.device
    radius = radius.float().to(device)
    radius = radius[:, None].expand(-1, 2) if radius.dim() == 1 else radius
    rx, ry = radius[:, :1], radius[:, 1:]
    sx, sy = (2 * rx + 1) / 6, (2 * ry + 1) / 6
    dx = (torch.arange(width, device=device)[None] - cells[:, :1]).float()       # [N, W]
    dy = (torch.arange(height, device=device)[None] - cells[:, 1:]).float()      # [N, H]
    gx = torch.exp(-dx ** 2 / (2 * sx ** 2)) * (dx.abs() <= rx)
    gy = torch.exp(-dy ** 2 / (2 * sy ** 2)) * (dy.abs() <= ry)
    return (gy[:, :, None] * gx[:, None, :]).flatten(1)


def splat_max(gauss: torch.Tensor, labels: torch.Tensor, num_classes: int, feat_shape) -> torch.Tensor:
    """Per-class element-wise maximum of ``gauss`` ``[N, H*W]`` -> heatmap ``[C, H, W]``."""
    height, width = feat_shape
    heatmap = gauss.new_zeros(num_classes, height * width)
    index = labels.to(gauss.device)[:, None].expand_as(gauss)
    heatmap.scatter_reduce_(0, index, gauss, reduce='amax')
    return heatmap.view(num_classes, height, width)


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
                 stride: int, ignored_bboxes=None) -> CenterNetTargets:
        """Args: ``bboxes`` [N, 4] xyxy input pixels, ``labels`` [N] in 0..C-1, ``feat_shape`` (H, W)
        of the output map, ``stride`` of that map in input pixels, ``ignored_bboxes`` [K, 4] xyxy input
        pixels or None."""
        width = feat_shape[1]
        boxes, labels, wh, _ = _boxes_on_map(bboxes, labels, feat_shape, stride)
        centers, cells = _centre_cells(boxes, feat_shape)
        radius = gaussian_radius((wh[:, 1].ceil(), wh[:, 0].ceil()), self.min_overlap).floor().clamp(min=0)
        heatmap = self.draw_heatmap(cells, radius, labels, num_classes, feat_shape)
        return CenterNetTargets(heatmap=heatmap, inds=cells[:, 1] * width + cells[:, 0], wh=wh,
                                offset=centers - cells.float(),
                                ignore=ignore_mask(ignored_bboxes, feat_shape, stride, heatmap.device))

    @staticmethod
    def draw_heatmap(cells: torch.Tensor, radius: torch.Tensor, labels: torch.Tensor, num_classes: int,
                     feat_shape) -> torch.Tensor:
        """Splat one Gaussian per object at integer ``cells`` [N, 2] (x, y) with integer ``radius`` [N]
        into a ``[C, H, W]`` map, keeping the per-class maximum (:func:`gaussian_windows`)."""
        return splat_max(gaussian_windows(cells, radius, feat_shape), labels, num_classes, feat_shape)


@TASK_UTILS.register_module()
class TTFNetTargetGenerator:
    """TTFNet's targets (Liu et al. 2020, sec. 3.2-3.3) for one image on the stride-``stride`` map.

    For each box (xyxy input pixels; in cells ``/ stride``, clipped to the map, zero-size boxes dropped),
    with w, h its size in cells and ``c`` its integer centre cell:

    - heatmap: an elliptical Gaussian at ``c`` with radii ``(int(alpha * w / 2), int(alpha * h / 2))``
      and ``sigma = (2r + 1) / 6`` per axis, so the bump follows the box's aspect ratio (CenterNet's is
      round); per-class maximum where objects of a class overlap;
    - box regression: every pixel of the same kind of Gaussian with ``beta`` instead of ``alpha``
      regresses the whole box, with weight ``G(pixel) * log(area) / sum(G over the object's window)``:
      each object's weights sum to ``log(area)`` (area in input pixels, floored at ``e`` so that tiny
      boxes weigh at least 1), so large objects, which own many pixels, neither dominate nor vanish,
      and pixels near the centre, whose boxes are most accurate, count most. Where regression areas
      overlap, the smaller object owns the pixel (boxes are drawn from the largest to the smallest).

    The GIoU loss is then normalised by the sum of all weights of the batch, as in the paper's code.
    """

    def __init__(self, alpha: float = 0.54, beta: float = 0.54):
        if not (0 < alpha <= 1 and 0 < beta <= 1):
            raise ValueError(f'alpha and beta are fractions of the box in (0, 1], got {alpha}, {beta}')
        self.alpha = alpha
        self.beta = beta

    def __call__(self, bboxes: torch.Tensor, labels: torch.Tensor, num_classes: int, feat_shape,
                 stride: int, ignored_bboxes=None) -> TTFNetTargets:
        """Args as :class:`CenterNetTargetGenerator`; returns :class:`TTFNetTargets`."""
        height, width = feat_shape
        input_boxes = torch.as_tensor(bboxes, dtype=torch.float32).reshape(-1, 4)
        boxes, labels, wh, _ = _boxes_on_map(input_boxes, labels, feat_shape, stride)
        input_boxes = boxes * stride        # the clipped box in input pixels is what a pixel regresses
        _, cells = _centre_cells(boxes, feat_shape)
        heat_radius = (wh * self.alpha / 2).floor()
        heatmap = splat_max(gaussian_windows(cells, heat_radius, feat_shape), labels, num_classes, feat_shape)

        reg = gaussian_windows(cells, (wh * self.beta / 2).floor(), feat_shape)       # [N, H*W]
        area = (input_boxes[:, 2:] - input_boxes[:, :2]).prod(dim=1)
        # Each window holds its centre cell (value 1), so the per-object sum is at least 1.
        per_object = reg * area.clamp(min=math.e).log()[:, None] / reg.sum(dim=1, keepdim=True)
        bbox_target = input_boxes.new_zeros(height * width, 4)
        bbox_weight = input_boxes.new_zeros(height * width)
        if len(area):
            # Owner of each pixel: the smallest-area object whose regression window covers it.
            order = area.argsort(descending=True)                          # drawing order, largest first
            rank = torch.empty_like(order)
            rank[order] = torch.arange(len(order), device=order.device)
            owner_rank = torch.where(reg > 0, rank[:, None], -1).amax(dim=0)           # [H*W], -1: none
            pixels = (owner_rank >= 0).nonzero(as_tuple=True)[0]
            owner = order[owner_rank[pixels]]
            bbox_target[pixels] = input_boxes[owner]
            bbox_weight[pixels] = per_object[owner, pixels]
        return TTFNetTargets(heatmap=heatmap, bbox_target=bbox_target, bbox_weight=bbox_weight,
                             ignore=ignore_mask(ignored_bboxes, feat_shape, stride, heatmap.device))
