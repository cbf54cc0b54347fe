"""Time det's COCO evaluation end to end (results loading included) against pycocotools as its users
run it, on the same random ground truth and detections, and check that the 12 stats are identical.

    python benchmarks/coco_eval_speed.py [--images 5000] [--dets-per-image 100] [--repeats 1]

Three runs compute the same numbers (the 12 COCO stats over COCO's area ranges plus det's five size
tiers, i.e. one COCOeval over seven area ranges):

- ``pycocotools``: ``COCO.loadRes(list of result dicts)``, ``COCOeval`` with the same area ranges,
  ``evaluate()``, ``accumulate()``, ``summarize()``;
- ``det (dicts)``: ``det.evaluation.evaluate_coco(gt, list of result dicts)`` (faster-coco-eval backend,
  detections loaded from arrays in one pass), which also returns the tier and per-class tables;
- ``det (array)``: the same with the detections as an ``[N, 7]`` array.
"""
import argparse
import contextlib
import io
import time

import numpy as np

from det.evaluation import DEFAULT_TIERS, evaluate_coco
from det.evaluation.coco_eval import STAT_NAMES


def random_case(num_images: int, dets_per_image: int, num_classes: int = 10, seed: int = 0):
    """COCO ground truth (dict) and exactly ``dets_per_image`` detections per image as an ``[N, 7]`` array
    of ``(image_id, x, y, w, h, score, category_id)``: ground-truth boxes of 4-300 px on 640x480 images
    (0 to 2/3 of ``dets_per_image`` per image), each detected as a jittered copy, the rest random boxes
    with lower scores."""
    rng = np.random.default_rng(seed)
    num_gt = rng.integers(0, 2 * dets_per_image // 3 + 1, num_images)
    gt_img = np.repeat(np.arange(1, num_images + 1), num_gt)
    wh = np.exp(rng.uniform(np.log(4), np.log(300), (len(gt_img), 2)))
    xy = rng.uniform(0, 1, (len(gt_img), 2)) * (np.array([640, 480]) - wh)
    gt_boxes = np.concatenate([xy, wh], axis=1)
    gt_cat = rng.integers(1, num_classes + 1, len(gt_img))
    images = [dict(id=i, width=640, height=480) for i in range(1, num_images + 1)]
    anns = [dict(id=k + 1, image_id=img, category_id=cat, bbox=box, area=box[2] * box[3], iscrowd=0)
            for k, (img, cat, box) in enumerate(zip(gt_img.tolist(), gt_cat.tolist(), gt_boxes.tolist()))]
    gt = dict(images=images, annotations=anns,
              categories=[dict(id=c, name=f'class{c}') for c in range(1, num_classes + 1)])

    hit_boxes = gt_boxes + rng.normal(0, 0.1, gt_boxes.shape) * gt_boxes[:, [2, 3, 2, 3]]
    hits = np.column_stack([gt_img, hit_boxes, rng.uniform(0.3, 1, len(gt_img)), gt_cat])
    noise_img = np.repeat(np.arange(1, num_images + 1), dets_per_image - num_gt)
    noise_wh = rng.uniform(4, 200, (len(noise_img), 2))
    noise_xy = rng.uniform(0, 1, (len(noise_img), 2)) * np.array([600, 440])
    noise = np.column_stack([noise_img, noise_xy, noise_wh, rng.uniform(0, 0.6, len(noise_img)),
                             rng.integers(1, num_classes + 1, len(noise_img))])
    rows = np.concatenate([hits, noise])
    return gt, rows[np.argsort(rows[:, 0], kind='stable')]


def rows_to_dicts(rows: np.ndarray) -> list:
    """``[N, 7]`` rows -> COCO result dicts (what a detector writes to a results json)."""
    return [dict(image_id=int(i), bbox=[x, y, w, h], score=s, category_id=int(c))
            for i, x, y, w, h, s, c in rows.tolist()]


def pycocotools_stats(gt: dict, dets: list, tiers=DEFAULT_TIERS) -> dict:
    """The 12 stats by pycocotools alone: ``loadRes``, then one ``COCOeval`` over COCO's area ranges
    and the tiers' (the work ``evaluate_coco`` does), ``summarize()``."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(dets)
        coco_eval = COCOeval(coco_gt, coco_dt, 'bbox')
        p = coco_eval.params
        ranges, labels = list(p.areaRng), list(p.areaRngLbl)
        for name, lo, hi in tiers:
            if [lo ** 2, hi ** 2] not in ranges:
                ranges.append([lo ** 2, hi ** 2])
                labels.append(f'tier_{name}')
        p.areaRng, p.areaRngLbl = ranges, labels
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return dict(zip(STAT_NAMES, coco_eval.stats.tolist()))


def measure(images: int, dets_per_image: int, repeats: int = 1, with_dicts: bool = True) -> dict:
    """{'case': description, 'runs': {name: (median wall seconds, median CPU seconds, stats)}, 'max_diff':
    largest stat difference to pycocotools}. CPU time (``time.process_time``, all threads of this
    process) is the number to compare on a shared machine: other jobs stretch wall time, not it. The
    result dicts are built before the clocks start, as a detector's output would be."""
    gt, rows = random_case(images, dets_per_image)
    dicts = rows_to_dicts(rows)  # loadRes adds keys to them in place, which later runs ignore
    runs = {
        'pycocotools': lambda: pycocotools_stats(gt, dicts),
        'det (array)': lambda: evaluate_coco(gt, rows).stats,
    }
    if with_dicts:
        runs['det (dicts)'] = lambda: evaluate_coco(gt, dicts).stats
    out = {}
    for name, fn in runs.items():
        wall, cpu = [], []
        for _ in range(repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            stats = fn()
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        out[name] = (float(np.median(wall)), float(np.median(cpu)), stats)
    ref = out['pycocotools'][2]
    diff = max(abs(stats[k] - ref[k]) for *_, stats in out.values() for k in ref)
    case = f"{images} images, {len(gt['annotations'])} boxes, {len(rows)} detections"
    return dict(case=case, runs=out, max_diff=diff)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', type=int, default=5000)
    parser.add_argument('--dets-per-image', type=int, default=100)
    parser.add_argument('--repeats', type=int, default=1)
    args = parser.parse_args()
    result = measure(args.images, args.dets_per_image, args.repeats)
    base_wall, base_cpu, _ = result['runs']['pycocotools']
    print(f"{result['case']}; median of {args.repeats} run(s), results loading included")
    print(f"{'run':<14}{'wall s':>9}{'CPU s':>9}{'speed-up (wall)':>17}{'speed-up (CPU)':>16}")
    for name, (wall, cpu, _) in result['runs'].items():
        print(f'{name:<14}{wall:>9.2f}{cpu:>9.2f}{base_wall / wall:>16.1f}x{base_cpu / cpu:>15.1f}x')
    print(f"largest difference to pycocotools over the 12 stats: {result['max_diff']:.2e}")


if __name__ == '__main__':
    main()
