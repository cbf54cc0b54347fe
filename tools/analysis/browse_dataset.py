"""Look at what the network is trained on: samples after a split's pipeline (augmentations applied),
with their boxes and class names, in one grid.

    python tools/analysis/browse_dataset.py CONFIG [--split train] [--n 16] [--start 0] [--seed 0]
        [--out grid.png] [--cfg-options k=v ...]

Each cell is one packed sample (``inputs`` as the model receives it, before normalisation, padding
included) with its ``gt_instances`` drawn as solid boxes in class colours and labelled, and its
``ignored_instances`` (e.g. COCO crowd regions) dashed grey; the cell title names the image and its
box count. The grid has ceil(sqrt(n)) columns of ``--cell`` inches at 100 dpi.
"""
import argparse
import math
import os.path as osp
import sys

from matplotlib.patches import Rectangle
from mmengine.config import DictAction
from mmengine.runner import set_random_seed

from det.analysis.common import build_split_dataset, new_figure, save_figure
from det.engine.config import load_config

DPI = 100


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('--split', default='train', help='dataset split (its own pipeline is applied)')
    parser.add_argument('--n', type=int, default=16, help='number of samples drawn')
    parser.add_argument('--start', type=int, default=0, help='index of the first sample')
    parser.add_argument('--seed', type=int, help='seed of the random augmentations (default: unseeded)')
    parser.add_argument('--cell', type=float, default=3.0, help='side of one grid cell in inches')
    parser.add_argument('--out', default='grid.png', help='PNG to write')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args = parser.parse_args(argv)
    if args.n < 1 or args.start < 0 or args.cell <= 0:
        parser.error('--n must be at least 1, --start at least 0 and --cell positive')
    return args


def grid_shape(n: int) -> tuple:
    """(rows, columns) of the grid for ``n`` cells: ceil(sqrt(n)) columns."""
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def draw(samples: list, classes, cell: float = 3.0):
    """One cell per packed sample (``{'inputs': uint8 [3, H, W] BGR, 'data_samples': DetDataSample}``);
    boxes are matplotlib ``Rectangle`` patches with ``gid`` 'gt' or 'ignored'."""
    rows, cols = grid_shape(len(samples))
    fig = new_figure(cols * cell, rows * cell, DPI)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.3 / (rows * cell), wspace=0.05,
                        hspace=0.15 * 3 / cell)
    for i, packed in enumerate(samples):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(packed['inputs'].numpy().transpose(1, 2, 0)[..., ::-1])  # BGR -> RGB
        sample = packed['data_samples']
        drawn = 0
        for group, style in (('gt_instances', '-'), ('ignored_instances', '--')):
            if group not in sample:
                continue
            instances = sample.get(group)
            for (x1, y1, x2, y2), label in zip(instances.bboxes.tolist(), instances.labels.tolist()):
                colour = f'C{label % 10}' if style == '-' else '0.6'
                ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=colour, linewidth=1,
                                       linestyle=style, gid='gt' if style == '-' else 'ignored'))
                name = classes[label] if label < len(classes) else str(label)
                ax.text(x1, y1, name if style == '-' else f'{name} (ignored)', color='white', fontsize=6,
                        va='bottom', bbox=dict(facecolor=colour, edgecolor='none', pad=0.5, alpha=0.8))
            drawn += len(instances) if group == 'gt_instances' else 0
        name = osp.basename(sample.metainfo.get('img_path', f'sample {i}'))
        ax.set_title(f'{name}: {drawn} boxes', fontsize=7)
        ax.axis('off')
    return fig


def main(argv=None) -> dict:
    args = parse_args(argv)
    try:
        cfg = load_config(args.config, args.cfg_options)
        dataset = build_split_dataset(cfg, args.split)
        if args.start >= len(dataset):
            raise ValueError(f'--start {args.start} is past the end of the {args.split} dataset '
                             f'({len(dataset)} images)')
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f'error: {error}')
    if args.seed is not None:
        set_random_seed(args.seed)
    indices = range(args.start, min(args.start + args.n, len(dataset)))
    samples = [dataset[i] for i in indices]
    classes = dataset.metainfo.get('classes', ())
    fig = draw(samples, classes, args.cell)
    save_figure(fig, args.out)
    counts = [len(s['data_samples'].gt_instances) if 'gt_instances' in s['data_samples'] else 0
              for s in samples]
    print(f'{len(samples)} {args.split} samples (indices {indices.start}-{indices.stop - 1}), '
          f'{sum(counts)} boxes; wrote {args.out}')
    return dict(figure=fig, samples=samples, grid=grid_shape(len(samples)), out=args.out)


if __name__ == '__main__':
    main()
