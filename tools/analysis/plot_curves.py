"""Curves of loss terms over iterations and of AP over epochs, from a training run's scalar log.

    python tools/analysis/plot_curves.py WORK_DIR [--keys 'loss*' coco/AP50] [--run TIMESTAMP]
        [--out curves.png]

Reads ``WORK_DIR/<timestamp>/vis_data/scalars.json`` (the latest run, or ``--run``; a resumed training
is a new run). ``--keys`` are scalar names or patterns ('loss*', 'coco/AP_*'); a key that matches
nothing is an error listing the scalars the log holds. Curves share a panel when they share a phase
and a family: training losses together, validation 'coco/...' metrics together, any other scalar alone.
"""
import argparse
import math
import sys

from det.analysis.common import new_figure, save_figure
from det.analysis.scalars import find_scalars, load_scalars, series

DEFAULT_KEYS = ['loss*', 'coco/AP50']


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('work_dir', help='the work dir of tools/train.py')
    parser.add_argument('--keys', nargs='+',
                        help="scalar names or fnmatch patterns (default: 'loss*' coco/AP50, those the log "
                             'holds)')
    parser.add_argument('--run', help='timestamp folder of the run (default: the latest)')
    parser.add_argument('--out', default='curves.png', help='PNG to write')
    return parser.parse_args(argv)


def panel_of(curve: dict) -> tuple:
    """(phase, family): 'loss' for loss terms, the prefix before '/' for metrics, else the key."""
    key = curve['key']
    family = 'loss' if key.startswith('loss') else key.split('/')[0] if '/' in key else key
    return curve['phase'], family


def draw(curves: list, title: str):
    """One panel per (phase, family), lines labelled by scalar name."""
    panels = {}
    for curve in curves:
        panels.setdefault(panel_of(curve), []).append(curve)
    cols = min(len(panels), 2)
    rows = math.ceil(len(panels) / cols)
    fig = new_figure(6.5 * cols, 4.2 * rows)
    for i, ((phase, family), members) in enumerate(panels.items()):
        ax = fig.add_subplot(rows, cols, i + 1)
        for curve in members:
            ax.plot(curve['x'], curve['y'], marker='o' if len(curve['x']) < 30 else None, markersize=3,
                    label=curve['key'])
        ax.set_xlabel(members[0]['x_label'])
        ax.set_title(f'{family} ({"training" if phase == "train" else "validation"})', fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def main(argv=None) -> dict:
    args = parse_args(argv)
    try:
        path = find_scalars(args.work_dir, args.run)
        curves = series(load_scalars(path), args.keys or DEFAULT_KEYS, strict=args.keys is not None)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f'error: {error}')
    except KeyError as error:
        sys.exit(f'error: {error.args[0]}')
    for c in curves:
        if c['y']:
            print(f"{c['phase']:<6}{c['key']:<20} {len(c['y']):>5} points, last {c['y'][-1]:.4g} at "
                  f"{c['x_label']} {c['x'][-1]}")
    fig = draw(curves, path)
    save_figure(fig, args.out)
    print(f'wrote {args.out}')
    return dict(figure=fig, curves=curves, scalars=path, out=args.out)


if __name__ == '__main__':
    main()
