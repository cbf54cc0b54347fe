"""Confusion matrix of a COCO-format detections file, with a background row and column.

    python tools/analysis/confusion_matrix.py ANN_JSON DETS_JSON [--score-thr 0.3] [--iou-thr 0.5]
        [--out cm.png]

Rows are ground-truth classes plus 'background' (detections that match no box: false positives);
columns are detected classes plus 'background' (boxes no detection matched: missed). Cells show counts;
the colour is the count divided by its row's total, so rows of rare and common classes read alike.
Matching rules: ``det.analysis.confusion``. DETS_JSON is what ``tools/test.py --out`` writes.
"""
import argparse
import os.path as osp
import sys

import numpy as np

from det.analysis.common import load_detections, new_figure, save_figure
from det.analysis.confusion import confusion_matrix


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('ann_json', help='COCO annotations (ground truth) json')
    parser.add_argument('dets_json', help='COCO results json: list of {image_id, category_id, bbox, score}')
    parser.add_argument('--score-thr', type=float, default=0.3, help='detections scoring less are dropped')
    parser.add_argument('--iou-thr', type=float, default=0.5, help='IoU for a detection to match a box')
    parser.add_argument('--out', default='cm.png', help='PNG to write')
    return parser.parse_args(argv)


def draw(matrix: np.ndarray, classes: list, title: str):
    """Counts in every cell over a row-normalised colour map."""
    names = list(classes) + ['background']
    side = max(5.0, 0.6 * len(names) + 2.5)
    fig = new_figure(side + 1, side)
    ax = fig.add_subplot(1, 1, 1)
    totals = matrix.sum(1, keepdims=True)
    share = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    image = ax.imshow(share, cmap='Blues', vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label='share of the row')
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha='center', va='center', fontsize=8,
                color='white' if share[i, j] > 0.6 else 'black')
    ax.set_xticks(range(len(names)), names, rotation=45, ha='right')
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel('detected as')
    ax.set_ylabel('ground truth')
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def main(argv=None) -> dict:
    args = parse_args(argv)
    try:
        dets = load_detections(args.dets_json, args.ann_json)
        result = confusion_matrix(args.ann_json, dets, args.score_thr, args.iou_thr)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f'error: {error}')
    matrix, names = result['matrix'], result['classes'] + ['background']
    width = max(len(n) for n in names) + 1
    print('gt \\ detected'.ljust(width) + ''.join(f'{n:>{width}}' for n in names))
    for name, row in zip(names, matrix):
        print(f'{name:<{width}}' + ''.join(f'{v:>{width}d}' for v in row))
    title = (f'{osp.basename(args.dets_json)}: score >= {args.score_thr:g}, IoU >= {args.iou_thr:g}; '
             f'rows: ground truth, columns: detections')
    result['figure'] = draw(matrix, result['classes'], title)
    save_figure(result['figure'], args.out)
    print(f'wrote {args.out}')
    return result


if __name__ == '__main__':
    main()
