"""Precision-recall curves per class and per size tier of a COCO-format detections file.

    python tools/analysis/pr_curves.py ANN_JSON DETS_JSON [--out pr.png] [--iou-thr 0.5]
        [--tiers vt:0:8 t:8:16 s:16:32 m:32:96 l:96:1e5] [--backend pycocotools]

Left: one curve per class over all sizes; right: one curve per size tier (sqrt(area) in pixels) over
all classes. The legends give each curve's AP at that IoU (the mean of the curve over COCO's 101 recall
points) and its number of ground-truth boxes. The curves come from the same COCOeval run as
``tools/eval_dets.py``'s numbers (``det.analysis.pr_curves``); DETS_JSON is what ``tools/test.py --out``
writes.
"""
import argparse
import os.path as osp
import sys

from det.analysis.common import load_detections, new_figure, save_figure
from det.analysis.pr_curves import precision_recall
from det.evaluation.coco_eval import BACKENDS, DEFAULT_BACKEND, DEFAULT_TIERS, parse_tier


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('ann_json', help='COCO annotations (ground truth) json')
    parser.add_argument('dets_json', help='COCO results json: list of {image_id, category_id, bbox, score}')
    parser.add_argument('--out', default='pr.png', help='PNG to write')
    parser.add_argument('--iou-thr', type=float, default=0.5, help='IoU threshold of a true positive')
    parser.add_argument('--tiers', nargs='+', type=parse_tier,
                        help='size tiers name:lo:hi on sqrt(area) in pixels (default: '
                             + ' '.join(f'{n}:{lo:g}:{hi:g}' for n, lo, hi in DEFAULT_TIERS) + ')')
    parser.add_argument('--backend', choices=BACKENDS, default=DEFAULT_BACKEND)
    return parser.parse_args(argv)


def _label(curve: dict) -> str:
    """A class's name, or a tier's name and its sqrt(area) range."""
    if 'lo' not in curve:
        return curve['name']
    return f"{curve['name']} {curve['lo']:g}-" + ('inf' if curve['hi'] >= 1e5 else f"{curve['hi']:g}") + ' px'


def draw(result: dict, title: str):
    """Two panels of precision over recall: per class (all sizes), per size tier (all classes)."""
    fig = new_figure(13, 5.5)
    ap_name = f"AP{100 * result['iou_thr']:.0f}"
    for i, (panel, curves) in enumerate((('per class (all sizes)', result['classes']),
                                         ('per size tier (all classes)', result['tiers']))):
        ax = fig.add_subplot(1, 2, i + 1)
        for curve in curves:
            if curve['precision'] is None:
                ax.plot([], [], ' ', label=f'{_label(curve)}: no ground truth')
            else:
                ax.plot(result['recall'], curve['precision'],
                        label=f"{_label(curve)}: {ap_name} {curve['ap']:.3f} ({curve['num_gt']} gt)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel('recall')
        ax.set_ylabel('precision')
        ax.set_title(f"{panel}, IoU {result['iou_thr']:g}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc='lower left')
    fig.suptitle(title, fontsize=10)
    return fig


def main(argv=None) -> dict:
    args = parse_args(argv)
    try:
        dets = load_detections(args.dets_json, args.ann_json)
        result = precision_recall(args.ann_json, dets, args.iou_thr, args.tiers or DEFAULT_TIERS,
                                  args.backend)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f'error: {error}')
    for group in ('classes', 'tiers'):
        print(', '.join(f"{c['name']} {c['ap']:.3f}" for c in result[group]))
    result['figure'] = draw(result, f'{osp.basename(args.dets_json)} vs {osp.basename(args.ann_json)}')
    save_figure(result['figure'], args.out)
    print(f'wrote {args.out}')
    return result


if __name__ == '__main__':
    main()
