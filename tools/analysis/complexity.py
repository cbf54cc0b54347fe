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
from mmengine.config import DictAction
from mmengine.registry import init_default_scope
from torch import nn

from det.analysis.receptive_field import ReceptiveField, output_levels
from det.engine.config import load_config
from det.registry import MODELS

__all__ = ['ReceptiveField', 'analyse', 'output_levels']


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
    cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.default_scope)
    print(analyse(MODELS.build(cfg.model), tuple(args.shape), args.max_depth))


if __name__ == '__main__':
    main()
