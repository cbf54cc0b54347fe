"""Parameters and FLOPs per module of a config's model, and the stride, channels and theoretical
receptive field of every output level of its backbone and neck.

    python tools/analysis/complexity.py CONFIG [--shape H W] [--max-depth N] [--cfg-options k=v ...]

``model`` in the config may be a detector (FLOPs of ``extract_feat``, plus the head when 'tensor'
mode runs) or a bare backbone. FLOPs come from ``mmengine.analysis.FlopAnalyzer``, which counts one
multiply-add as one flop (BatchNorm elements are counted too; the per-operator split is printed).
"""
import argparse

import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.analysis.print_helper import complexity_stats_table
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.weak import WeakIdKeyDictionary

from det.registry import MODELS

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


def output_levels(model: nn.Module, image: torch.Tensor) -> list:
    """Rows ``(part, level, stride, channels, receptive field)`` for each backbone and neck output; a
    jump that differs from the module's stride is flagged (resolution changed by an op with no rule)."""
    backbone, neck = getattr(model, 'backbone', model), getattr(model, 'neck', None)
    rows = []
    with torch.no_grad(), ReceptiveField() as rf:
        feats = backbone(rf.track(image))
        parts = [('backbone', backbone, feats)]
        if neck is not None:
            parts.append(('neck', neck, neck(feats)))
        for part, module, outs in parts:
            for level, (feat, stride) in enumerate(zip(outs, module.strides)):
                (field, jump) = rf.field(feat)
                note = '' if jump == (stride, stride) else f' (jump {_fmt(jump)}: an op without a rule?)'
                rows.append((part, level, stride, feat.shape[1], _fmt(field) + note))
    return rows


class FeaturePath(nn.Module):
    """A detector's ``extract_feat`` (backbone + neck) as a module's forward, for FlopAnalyzer."""

    def __init__(self, detector):
        super().__init__()
        self.detector = detector

    def forward(self, inputs):
        return self.detector.extract_feat(inputs)


def flop_target(model: nn.Module, image: torch.Tensor):
    """The module whose forward FlopAnalyzer traces, and what it covers."""
    if not hasattr(model, 'extract_feat'):
        return model, 'the whole model'
    try:
        with torch.no_grad():
            model(image, mode='tensor')
        return model, "extract_feat + head ('tensor' mode)"
    except Exception as err:  # a head that cannot run without data samples: report backbone + neck only
        print(f"head left out of FLOPs: 'tensor' mode failed with {type(err).__name__}: {err}")
        return FeaturePath(model), 'extract_feat (backbone + neck)'


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters()) if module is not None else 0


def analyse(model: nn.Module, shape=(224, 224), max_depth: int = 3) -> str:
    """The report as text: per-module table, totals, per-operator FLOPs and the output-level table."""
    model.eval()
    image = torch.rand(1, 3, *shape)
    target, covers = flop_target(model, image)
    flops = FlopAnalyzer(target, (image,))
    flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    lines = [complexity_stats_table(flops, max_depth=max_depth, show_param_shapes=False)]
    lines.append(f'input 1x3x{shape[0]}x{shape[1]}; FLOPs cover {covers}')
    lines.append(f'FLOPs (multiply-adds): {flops.total() / 1e9:.4f} G = {flops.total() / 1e6:.2f} M')
    by_op = flops.by_operator().items()
    lines.append('by operator: ' + ', '.join(f'{op} {n / 1e6:.2f} M' for op, n in by_op))
    if flops.unsupported_ops():
        lines.append('not counted (no flop handle): ' + ', '.join(sorted(flops.unsupported_ops())))
    parts = ['backbone', 'neck', 'head']
    counts = {p: _count(getattr(model, p, None)) for p in parts if getattr(model, p, None) is not None}
    lines.append(' '.join([f'Params: {_count(model) / 1e6:.4f} M = {_count(model)}',
                           *(f'({p} {n})' for p, n in counts.items())]))
    lines += ['', 'Output levels (receptive field in input pixels; branches merged by add/cat take the max):',
              f'{"part":<10}{"level":>6}{"stride":>8}{"channels":>10}{"RF":>10}']
    lines += [f'{p:<10}{lvl:>6}{s:>8}{c:>10}{rf:>10}' for p, lvl, s, c, rf in output_levels(model, image)]
    return '\n'.join(lines)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--shape', type=int, nargs=2, default=(224, 224), metavar=('H', 'W'))
    parser.add_argument('--max-depth', type=int, default=3, help='module depth of the FLOPs table')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    return parser.parse_args()


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'det'))
    print(analyse(MODELS.build(cfg.model), tuple(args.shape), args.max_depth))


if __name__ == '__main__':
    main()
