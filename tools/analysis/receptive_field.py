"""Which output level can see which objects: theoretical and effective receptive fields of every backbone
and neck level, drawn over the dataset's object-size histogram.

    python tools/analysis/receptive_field.py CONFIG [--checkpoint CKPT] [--split train] [--out rf.png]
        [--images 8] [--fraction 0.95] [--hist-images N] [--seed 0] [--cfg-options k=v ...]

- theoretical RF: the input window that can influence one output pixel (kernels, strides, dilations on
  the path; branches merged by add / cat take the largest), as ``tools/analysis/complexity.py`` prints it;
- effective RF (ERF): |gradient| of the centre unit of each level with respect to the input, summed over
  channels and averaged over the first ``--images`` samples of the split (after its pipeline and the
  model's data preprocessor); its size is the side of the smallest square, centred where the unit
  looks (the middle of the non-zero gradient), that holds ``--fraction`` of the gradient mass;
- object sizes: sqrt(area) of the split's ground-truth boxes after the split's pipeline, i.e. in the
  network-input pixels the receptive fields are measured in (log x-axis).

Without ``--checkpoint`` the model is initialised as training starts it (``init_weights``, the
config's ``init_cfg``): the ERF then shows what the architecture gives before any learning; a trained
checkpoint shows what training made of it.
"""
import argparse
import logging
import sys

import numpy as np
import torch
from matplotlib.patches import Rectangle
from mmengine.config import DictAction
from mmengine.dataset import pseudo_collate
from mmengine.logging import MMLogger
from mmengine.runner import set_random_seed

from det.analysis.common import build_split_dataset, new_figure, save_figure
from det.analysis.receptive_field import effective_receptive_field, level_fields, mass_radius
from det.apis import init_detector
from det.engine.config import load_config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('--checkpoint', help='trained weights (default: the initial weights)')
    parser.add_argument('--split', default='train', help='dataset split whose images and boxes are used')
    parser.add_argument('--out', default='rf.png', help='PNG to write')
    parser.add_argument('--images', type=int, default=8, help='images the ERF is averaged over')
    parser.add_argument('--fraction', type=float, default=0.95, help='gradient mass inside the ERF window')
    parser.add_argument('--hist-images', type=int,
                        help='images whose boxes make the histogram (default: all)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the initial weights and the random augmentations')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args = parser.parse_args(argv)
    if args.images < 1:
        parser.error('--images must be at least 1')
    if not 0 < args.fraction <= 1:
        parser.error('--fraction must be in (0, 1]')
    return args


def object_sizes(dataset, num_images: int = None) -> np.ndarray:
    """sqrt(area) in network-input pixels of every ground-truth box of the first ``num_images`` samples
    (all by default), after the dataset's pipeline."""
    sizes = []
    for i in range(len(dataset) if num_images is None else min(num_images, len(dataset))):
        sample = dataset[i]['data_samples']
        if 'gt_instances' in sample:
            boxes = sample.gt_instances.bboxes.double()
            sizes.append(((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).clamp(min=0).sqrt())
    return torch.cat(sizes).numpy() if sizes else np.zeros(0)


def network_inputs(model, dataset, num_images: int) -> torch.Tensor:
    """The first ``num_images`` samples as the network sees them: [N, 3, H, W] after the split's
    pipeline and the model's data preprocessor (normalised, padded)."""
    batch = pseudo_collate([dataset[i] for i in range(min(num_images, len(dataset)))])
    preprocessor = getattr(model, 'data_preprocessor', None)
    if preprocessor is None:
        return torch.stack(batch['inputs']).float()
    with torch.no_grad():
        return preprocessor(batch, False)['inputs']


def analyse(model, dataset, num_images: int = 8, fraction: float = 0.95, hist_images: int = None) -> dict:
    """Receptive fields of ``model``'s output levels on ``dataset``'s first ``num_images`` samples.

    Returns ``levels``: one dict per backbone / neck output with the theoretical ``field`` / ``jump``
    (see ``level_fields``), ``erf`` ([H, W] map), ``erf_centre`` (y, x), ``erf_side`` (pixels) and
    ``support`` (h, w of the non-zero gradient's bounding box: never more than the field, else an op
    of the model has no receptive-field rule); ``sizes``: the object sizes; ``input_shape``: (H, W)
    of the network input."""
    inputs = network_inputs(model, dataset, num_images)
    levels = level_fields(model, inputs[:1])
    for level, erf in zip(levels, effective_receptive_field(model, inputs)):
        centre, radius = mass_radius(erf, fraction)
        rows, cols = np.nonzero(erf)
        support = (int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1))
        level.update(erf=erf, erf_centre=centre, erf_side=2 * radius + 1, support=support)
    return dict(levels=levels, sizes=object_sizes(dataset, hist_images), input_shape=tuple(inputs.shape[-2:]),
                num_images=len(inputs), fraction=fraction)


def _name(level: dict) -> str:
    return f"{level['part']} {level['level']} (s{level['stride']:g})"


def draw(result: dict, title: str):
    """Top row: each level's ERF map (input pixels around the centre unit) with its theoretical RF
    (dashed) and ERF window (solid) as squares; bottom: object-size histogram with both sizes of every
    level as vertical lines."""
    levels, sizes = result['levels'], result['sizes']
    ncols = max(len(levels), 3)
    fig = new_figure(2.6 * ncols, 7.5)
    grid = fig.add_gridspec(2, ncols, height_ratios=(1, 1.25), hspace=0.35, right=0.86)
    colours = [f'C{i % 10}' for i in range(len(levels))]
    for i, (level, colour) in enumerate(zip(levels, colours)):
        ax = fig.add_subplot(grid[0, i])
        erf, (cy, cx) = level['erf'], level['erf_centre']
        # Show the theoretical window with a margin (the whole map for fields larger than the input).
        half = 0.6 * max(level['field'])
        y0, x0 = max(0, int(cy - half)), max(0, int(cx - half))
        y1, x1 = min(erf.shape[0], int(cy + half) + 1), min(erf.shape[1], int(cx + half) + 1)
        ax.imshow(erf[y0:y1, x0:x1], cmap='magma', extent=(x0 - 0.5, x1 - 0.5, y1 - 0.5, y0 - 0.5))
        for side, style in ((max(level['field']), '--'), (level['erf_side'], '-')):
            ax.add_patch(_square(cy, cx, side, colour, style))
        ax.set_xlim(x0 - 0.5, x1 - 0.5)
        ax.set_ylim(y1 - 0.5, y0 - 0.5)
        ax.set_title(f"{_name(level)}\nRF {max(level['field']):g}, ERF {level['erf_side']:.0f}", fontsize=9)
        ax.tick_params(labelsize=7)
    ax = fig.add_subplot(grid[1, :])
    if len(sizes):
        lo, hi = max(sizes.min(), 1.0), max(sizes.max(), 2.0)
        ax.hist(sizes, bins=np.geomspace(lo, hi, 40), color='0.75', edgecolor='0.5')
    ax.set_xscale('log')
    for level, colour in zip(levels, colours):
        ax.axvline(max(level['field']), color=colour, linestyle='--')
        ax.axvline(level['erf_side'], color=colour, linestyle='-', label=_name(level))
    ax.set_xlabel('object size sqrt(area), network-input pixels (log)')
    ax.set_ylabel('objects')
    ax.set_title(f"{len(sizes)} objects; dashed: theoretical RF; solid: ERF, the window holding "
                 f"{100 * result['fraction']:g}% of |grad| of the centre unit, {result['num_images']} "
                 f"images of {result['input_shape'][1]}x{result['input_shape'][0]}", fontsize=9)
    ax.legend(fontsize=8, loc='upper left', bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(title, fontsize=10)
    return fig


def _square(cy: float, cx: float, side: float, colour: str, style: str) -> Rectangle:
    return Rectangle((cx - side / 2, cy - side / 2), side, side, fill=False, edgecolor=colour,
                     linestyle=style)


def table(result: dict) -> str:
    """The levels as text (RF and ERF sides in input pixels) and the object-size percentiles."""
    lines = [f'{"part":<10}{"level":>6}{"stride":>8}{"channels":>10}{"RF":>10}{"ERF":>8}']
    for lv in result['levels']:
        (h, w) = lv['field']
        rf = f'{h:g}' if h == w else f'{h:g}x{w:g}'
        note = '' if all(s <= f for s, f in zip(lv['support'], lv['field'])) else (
            f"  (gradient reaches {lv['support'][0]}x{lv['support'][1]} px, beyond the theoretical field: "
            'an op without a receptive-field rule?)')
        lines.append(f"{lv['part']:<10}{lv['level']:>6}{lv['stride']:>8g}{lv['channels']:>10}{rf:>10}"
                     f"{lv['erf_side']:>8.0f}{note}")
    sizes = result['sizes']
    if len(sizes):
        q = np.percentile(sizes, [10, 50, 90])
        lines.append(f'{len(sizes)} objects, sqrt(area) px: p10 {q[0]:.1f}, median {q[1]:.1f}, '
                     f'p90 {q[2]:.1f}')
    return '\n'.join(lines)


def initialise(model) -> None:
    """The weights training starts from (``init_weights``: the config's ``init_cfg``), without
    mmengine's per-parameter report in the log."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)


def main(argv=None) -> dict:
    args = parse_args(argv)
    set_random_seed(args.seed)
    try:
        cfg = load_config(args.config, args.cfg_options)
        dataset = build_split_dataset(cfg, args.split)
        model = init_detector(cfg, args.checkpoint)
        if args.checkpoint is None:
            initialise(model)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f'error: {error}')
    result = analyse(model, dataset, args.images, args.fraction, args.hist_images)
    print(table(result))
    weights = args.checkpoint or 'initial weights'
    save_figure(draw(result, f'{args.config} ({weights}), {args.split} split'), args.out)
    print(f'wrote {args.out}')
    result['out'] = args.out
    return result


if __name__ == '__main__':
    main()
