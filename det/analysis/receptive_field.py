"""Receptive fields of a model's output levels: the theoretical one (the input window that can influence
one output pixel, from the kernels, strides and dilations on the path) and the effective one (how much
each input pixel actually moves that output pixel: the gradient of a centre unit with respect to the
input, Luo et al. 2016, "Understanding the Effective Receptive Field in Deep CNNs").

Both are in network-input pixels. ``tools/analysis/complexity.py`` prints the theoretical field of each
backbone / neck level; ``tools/analysis/receptive_field.py`` draws both over a dataset's object sizes.
"""
import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.weak import WeakIdKeyDictionary

TAPS = {'nearest': 1, 'nearest-exact': 1, 'linear': 2, 'bilinear': 2, 'bicubic': 4}


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _arg(args, kwargs, index, name, default=None):
    return args[index] if len(args) > index else kwargs.get(name, default)


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item)


def _window(field, kernel, stride, dilation):
    """A sliding window on a map with receptive field ``r`` and jump ``j`` (per axis):
    r' = r + (k - 1) * d * j, j' = j * s."""
    (r, j), k, s, d = field, _pair(kernel), _pair(stride), _pair(dilation)
    return (tuple(r[a] + (k[a] - 1) * d[a] * j[a] for a in range(2)), tuple(j[a] * s[a] for a in range(2)))


def _conv(field, args, kwargs, out):
    return _window(field, args[1].shape[-2:], _arg(args, kwargs, 3, 'stride', 1),
                   _arg(args, kwargs, 5, 'dilation', 1))


def _pool(field, args, kwargs, out, dilation_index=None):
    kernel = _arg(args, kwargs, 1, 'kernel_size')
    dilation = _arg(args, kwargs, dilation_index, 'dilation', 1) if dilation_index else 1
    return _window(field, kernel, _arg(args, kwargs, 2, 'stride') or kernel, dilation)


def _conv_transpose(field, args, kwargs, out):
    """Each output pixel sees floor((k - 1) * d / s) + 1 neighbouring inputs; j' = j / s."""
    (r, j), k = field, args[1].shape[-2:]
    s, d = _pair(_arg(args, kwargs, 3, 'stride', 1)), _pair(_arg(args, kwargs, 7, 'dilation', 1))
    return (tuple(r[a] + (k[a] - 1) * d[a] // s[a] * j[a] for a in range(2)),
            tuple(j[a] / s[a] for a in range(2)))


def _interpolate(field, args, kwargs, out):
    """Resampling by in/out: j' = j * in / out; r grows by (taps - 1) * j (nearest 1, linear 2 taps)."""
    (r, j), taps = field, TAPS.get(_arg(args, kwargs, 3, 'mode', 'nearest'), 1)
    size_in, size_out = args[0].shape[-2:], out.shape[-2:]
    return (tuple(r[a] + (taps - 1) * j[a] for a in range(2)),
            tuple(j[a] * size_in[a] / size_out[a] for a in range(2)))


def _pixel_shuffle(field, args, kwargs, out):
    """Depth-to-space by factor f: one input pixel per output pixel, j' = j / f."""
    (r, j), f = field, _arg(args, kwargs, 1, 'upscale_factor')
    return r, tuple(j[a] / f for a in range(2))


def _pixel_unshuffle(field, args, kwargs, out):
    factor = _arg(args, kwargs, 1, 'downscale_factor')
    return _window(field, factor, factor, 1)


RULES = {
    'pixel_shuffle': _pixel_shuffle,
    'pixel_unshuffle': _pixel_unshuffle,
    'conv2d': _conv,
    'conv_transpose2d': _conv_transpose,
    'max_pool2d': lambda *a: _pool(*a, dilation_index=4),
    'avg_pool2d': _pool,
    'interpolate': _interpolate,
}


class ReceptiveField(TorchFunctionMode):
    """Theoretical receptive field of every tensor computed inside ``with ReceptiveField() as rf:``.

    Call ``rf.track(image)`` first; afterwards ``rf.field(t)`` is ``((r_h, r_w), (j_h, j_w))``: the side
    of the input window that can influence one pixel of ``t`` and the input pixels between neighbouring
    pixels (its stride). Every torch call is intercepted in execution order, modules and functional code
    alike (channel split/shuffle, FPN adds), and:

    - conv / max-pool / avg-pool (kernel k, stride s, dilation d): r' = r + (k - 1) * d * j, j' = j * s;
      transposed convs, ``interpolate`` and ``pixel_shuffle`` shrink j (see their rules);
    - every other op (add, cat, chunk, views, activations, BN) gives its outputs, per axis, the max r and
      max j of its tracked inputs: parallel branches merged by add / cat take the largest field;
    - adaptive (global) pools are not tracked, so squeeze-excitation / global-context gates do not make
      every field the whole image: the result is the local conv / pool path's field.
    """

    def __init__(self):
        super().__init__()
        self._fields = WeakIdKeyDictionary()

    def track(self, image: torch.Tensor) -> torch.Tensor:
        self._fields[image] = ((1, 1), (1, 1))
        return image

    def field(self, tensor: torch.Tensor):
        return self._fields.get(tensor)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, '__name__', '')
        inputs = [self._fields[t] for t in _tensors((args, kwargs)) if t in self._fields]
        if not inputs or 'adaptive' in name:
            return out
        first = self._fields.get(args[0]) if args and isinstance(args[0], torch.Tensor) else None
        if name in RULES and first is not None:
            field = RULES[name](first, args, kwargs, out)
        else:
            field = tuple(tuple(max(f[i][a] for f in inputs) for a in range(2)) for i in range(2))
        for tensor in _tensors(out):
            self._fields[tensor] = field
        return out


def _fmt(pair):
    values = [int(v) if float(v).is_integer() else round(v, 2) for v in pair]
    return str(values[0]) if values[0] == values[1] else f'{values[0]}x{values[1]}'


def feature_parts(model: nn.Module, image: torch.Tensor) -> list:
    """``[(part, module, outputs)]`` for the backbone and, if the model has one, the neck, run on
    ``image`` [B, 3, H, W]. ``model`` is a detector (``backbone`` / ``neck`` attributes) or a bare
    backbone; each module exposes ``strides`` (one per output, finest first)."""
    backbone, neck = getattr(model, 'backbone', model), getattr(model, 'neck', None)
    feats = backbone(image)
    parts = [('backbone', backbone, tuple(feats))]
    if neck is not None:
        parts.append(('neck', neck, tuple(neck(feats))))
    return parts


def level_fields(model: nn.Module, image: torch.Tensor) -> list:
    """One dict per backbone and neck output: ``part``, ``level``, ``stride`` (the module's),
    ``channels``, ``field`` (r_h, r_w) and ``jump`` (j_h, j_w), in input pixels (see
    :class:`ReceptiveField`)."""
    rows = []
    with torch.no_grad(), ReceptiveField() as rf:
        for part, module, outs in feature_parts(model, rf.track(image)):
            for level, (feat, stride) in enumerate(zip(outs, module.strides)):
                field, jump = rf.field(feat)
                rows.append(dict(part=part, level=level, stride=stride, channels=feat.shape[1],
                                 field=field, jump=jump))
    return rows


def output_levels(model: nn.Module, image: torch.Tensor) -> list:
    """Rows ``(part, level, stride, channels, receptive field)`` for each backbone and neck output; a
    jump that differs from the module's stride is flagged (resolution changed by an op with no rule)."""
    rows = []
    for row in level_fields(model, image):
        stride, jump = row['stride'], row['jump']
        note = '' if jump == (stride, stride) else f' (jump {_fmt(jump)}: an op without a rule?)'
        rows.append((row['part'], row['level'], stride, row['channels'], _fmt(row['field']) + note))
    return rows


def effective_receptive_field(model: nn.Module, images) -> list:
    """Effective receptive field of every backbone and neck output level, averaged over ``images``.

    For each image ``x`` [3, H, W] (as the network sees it: normalised, padded) and each level's output
    ``f`` [C, h, w], the map is ``sum_c |d(sum_c' f[c', h // 2, w // 2]) / d x[c]|``: how strongly each
    input pixel moves the centre unit. Maps are summed over the images and divided by their number.
    ``model`` should be in eval mode (BatchNorm statistics fixed), so each image is its own batch.

    Args:
        model: a detector with ``backbone`` (and optional ``neck``), or a bare backbone.
        images: a tensor [N, 3, H, W] or a sequence of [3, H, W] tensors of one size.

    Returns:
        One float64 ``[H, W]`` numpy map per level, in :func:`level_fields`' order.
    """
    images = list(images)
    if not images:
        raise ValueError('effective_receptive_field needs at least one image')
    shapes = {tuple(img.shape) for img in images}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3:
        raise ValueError(f'images must all be [3, H, W] of one size, got shapes {sorted(shapes)}')
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device('cpu')
    maps = None
    for img in images:
        x = img.detach().float().to(device)[None].requires_grad_(True)
        outs = [feat for _, _, feats in feature_parts(model, x) for feat in feats]
        grads = []
        for k, feat in enumerate(outs):
            h, w = feat.shape[-2:]
            unit = feat[0, :, h // 2, w // 2].sum()
            grad, = torch.autograd.grad(unit, x, retain_graph=k < len(outs) - 1)
            grads.append(grad[0].abs().sum(0).double().cpu().numpy())
        maps = grads if maps is None else [m + g for m, g in zip(maps, grads)]
    return [m / len(images) for m in maps]


def mass_radius(erf: np.ndarray, fraction: float = 0.95) -> tuple:
    """``(centre (y, x), radius)``: the smallest square window around the map's centre that holds
    ``fraction`` of the map's total, as its half side ``radius`` (Chebyshev distance from the centre to
    the farthest pixel centre inside); the window's side ``2 * radius + 1`` pixels compares with a
    theoretical receptive field.

    The centre is that of the bounding box of the non-zero pixels: the gradient's support is the
    centre unit's theoretical window (cut by the image border), so this is where the unit looks; with
    fraction 1 the window is at most the theoretical field.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f'fraction must be in (0, 1], got {fraction}')
    erf = np.asarray(erf, dtype=np.float64)
    total = erf.sum() if erf.ndim == 2 and (erf >= 0).all() else 0.0
    if not total > 0:
        raise ValueError(f'expected a non-negative [H, W] map with positive mass, got shape {erf.shape}, '
                         f'sum {erf.sum()}')
    rows, cols = np.nonzero(erf)
    cy, cx = (rows.min() + rows.max()) / 2, (cols.min() + cols.max()) / 2
    ys, xs = np.indices(erf.shape)
    dist = np.maximum(np.abs(ys - cy), np.abs(xs - cx)).ravel()
    order = np.argsort(dist, kind='stable')
    cum = np.cumsum(erf.ravel()[order])
    idx = min(int(np.searchsorted(cum, fraction * total * (1 - 1e-12))), len(cum) - 1)
    return (float(cy), float(cx)), float(dist[order][idx])
