"""Evaluate a COCO-format detections file against COCO annotations.

Prints pycocotools' 12-line summary, AP / AR100 per size tier and per-class AP, computed by
det.evaluation.evaluate_coco (the code CocoMetric uses during training).

    python tools/eval_dets.py annotations.json detections.json [--out metrics.json]
        [--tiers vt:0:8 t:8:16 s:16:32 m:32:96 l:96:1e5] [--backend pycocotools]
"""
import argparse
import json
import os.path as osp
import sys

from det.evaluation.coco_eval import (
    BACKENDS,
    DEFAULT_BACKEND,
    DEFAULT_TIERS,
    evaluate_coco,
    format_report,
    load_coco_gt,
    parse_tier,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('ann_json', help='COCO annotations (ground truth) json')
    parser.add_argument('dets_json',
                        help='COCO results json: list of {image_id, category_id, bbox xywh, score}')
    parser.add_argument('--out', help='write the metrics (12 stats, tiers, per-class AP) to this json')
    parser.add_argument('--tiers', nargs='+', type=parse_tier,
                        help='size tiers name:lo:hi on sqrt(area) in pixels (default: '
                             + ' '.join(f'{n}:{lo:g}:{hi:g}' for n, lo, hi in DEFAULT_TIERS) + ')')
    parser.add_argument('--backend', choices=BACKENDS, default=DEFAULT_BACKEND)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    for path in (args.ann_json, args.dets_json):
        if not osp.isfile(path):
            sys.exit(f'error: no such file: {path}')
    with open(args.dets_json) as f:
        dets = json.load(f)
    if not isinstance(dets, list):
        sys.exit(f'error: {args.dets_json} must hold a list of detections (COCO results format), '
                 f'got {type(dets).__name__}')
    gt = load_coco_gt(args.ann_json, args.backend)
    try:
        result = evaluate_coco(gt, dets, tiers=args.tiers or DEFAULT_TIERS, backend=args.backend)
    except ValueError as e:
        sys.exit(f'error: {args.dets_json}: {e}')
    print(format_report(result))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result.to_dict(), f, indent=2)
        print(f'\nwrote {args.out}')


if __name__ == '__main__':
    main()
