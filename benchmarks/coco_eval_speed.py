"""Time det's COCO evaluation with its default backend (faster-coco-eval) against pycocotools, on the
same random ground truth and detections, and check both give the same 12 stats.

    python benchmarks/coco_eval_speed.py [--images 1500] [--dets-per-image 8] [--repeats 3]
"""
import argparse
import time

import numpy as np

from det.evaluation import evaluate_coco


def random_case(num_images: int, dets_per_image: int, num_classes: int = 10, seed: int = 0):
    """COCO ground truth and detections: boxes of 4-300 px, detections jittered copies plus noise."""
    rng = np.random.default_rng(seed)
    images, anns, dets = [], [], []
    for img_id in range(1, num_images + 1):
        images.append(dict(id=img_id, width=640, height=480))
        for _ in range(rng.integers(0, 2 * dets_per_image // 3 + 1)):
            w, h = np.exp(rng.uniform(np.log(4), np.log(300), 2))
            x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
            cat = int(rng.integers(1, num_classes + 1))
            anns.append(dict(id=len(anns) + 1, image_id=img_id, category_id=cat, bbox=[x, y, w, h],
                             area=w * h, iscrowd=0))
            jitter = rng.normal(0, 0.1, 4) * [w, h, w, h]
            dets.append(dict(image_id=img_id, category_id=cat, score=float(rng.uniform(0.3, 1)),
                             bbox=[float(v) for v in np.array([x, y, w, h]) + jitter]))
        for _ in range(dets_per_image // 3):
            w, h = rng.uniform(4, 200, 2)
            dets.append(dict(image_id=img_id, category_id=int(rng.integers(1, num_classes + 1)),
                             score=float(rng.uniform(0, 0.6)),
                             bbox=[float(rng.uniform(0, 600)), float(rng.uniform(0, 440)), w, h]))
    gt = dict(images=images, annotations=anns,
              categories=[dict(id=c, name=f'class{c}') for c in range(1, num_classes + 1)])
    return gt, dets


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', type=int, default=1500)
    parser.add_argument('--dets-per-image', type=int, default=8)
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args()
    gt, dets = random_case(args.images, args.dets_per_image)
    timings, stats = {}, {}
    for backend in ('pycocotools', 'faster_coco_eval'):
        runs = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = evaluate_coco(gt, dets, backend=backend)
            runs.append(time.perf_counter() - start)
        timings[backend], stats[backend] = float(np.median(runs)), result.stats
    diff = max(abs(stats['pycocotools'][k] - stats['faster_coco_eval'][k]) for k in stats['pycocotools'])
    print(f"{args.images} images, {len(gt['annotations'])} boxes, {len(dets)} detections; "
          f'median of {args.repeats} runs (12 stats + 5 size tiers + per-class AP)')
    print(f"{'backend':<18}{'seconds':>9}{'ratio to pycocotools':>22}")
    for backend, seconds in timings.items():
        print(f'{backend:<18}{seconds:>9.3f}{seconds / timings["pycocotools"]:>22.3f}')
    print(f'largest difference between the two backends over the 12 stats: {diff:.2e}')


if __name__ == '__main__':
    main()
