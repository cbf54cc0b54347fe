"""Random COCO cases and a direct pycocotools reference (the oracle), shared by the evaluation tests."""
import contextlib
import copy
import io

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

CAT_IDS = (1, 3, 7, 12)  # non-contiguous on purpose; 12 never has ground truth


def random_case(seed: int, num_images: int = 5):
    """(gt dict, detections list) with boxes whose sqrt(area) spans 3..300 px (every size tier), one
    iscrowd box, one image without ground truth, one image without detections, false positives and
    detections of a category (12) that has no ground truth."""
    rng = np.random.default_rng(seed)
    images, anns, dets = [], [], []
    for img_id in range(1, num_images + 1):
        w, h = int(rng.integers(320, 640)), int(rng.integers(320, 640))
        images.append({'id': img_id, 'width': w, 'height': h, 'file_name': f'{img_id}.jpg'})
        num_gt = 0 if img_id == 2 else int(rng.integers(3, 10))
        for _ in range(num_gt):
            side = float(np.exp(rng.uniform(np.log(3), np.log(300))))
            aspect = float(rng.uniform(0.6, 1.6))
            bw, bh = min(side * aspect, w - 1), min(side / aspect, h - 1)
            x, y = float(rng.uniform(0, w - bw)), float(rng.uniform(0, h - bh))
            cat = int(rng.choice(CAT_IDS[:3]))
            anns.append({'id': len(anns) + 1, 'image_id': img_id, 'category_id': cat,
                         'bbox': [x, y, bw, bh], 'area': bw * bh, 'iscrowd': 0})
            if img_id != 3 and rng.random() < 0.85:  # image 3 gets no detections
                jitter = rng.normal(0, 0.12, 4) * [bw, bh, bw, bh]
                dets.append({'image_id': img_id, 'category_id': cat, 'score': float(rng.random()),
                             'bbox': [x + jitter[0], y + jitter[1], max(bw + jitter[2], 1.0),
                                      max(bh + jitter[3], 1.0)]})
        if img_id == 3:
            continue
        for _ in range(int(rng.integers(1, 5))):  # false positives, some of category 12
            side = float(np.exp(rng.uniform(np.log(3), np.log(200))))
            dets.append({'image_id': img_id, 'category_id': int(rng.choice(CAT_IDS)),
                         'score': float(rng.random()),
                         'bbox': [float(rng.uniform(0, w - side)), float(rng.uniform(0, h - side)),
                                  side, side]})
    crowd_img = 1
    anns.append({'id': len(anns) + 1, 'image_id': crowd_img, 'category_id': CAT_IDS[0],
                 'bbox': [10.0, 10.0, 150.0, 120.0], 'area': 150.0 * 120.0, 'iscrowd': 1})
    dets.append({'image_id': crowd_img, 'category_id': CAT_IDS[0], 'score': 0.5,
                 'bbox': [20.0, 15.0, 40.0, 30.0]})  # inside the crowd box: ignored, not a false positive
    categories = [{'id': c, 'name': f'class{c}'} for c in CAT_IDS]
    return {'images': images, 'annotations': anns, 'categories': categories}, dets


def pycocotools_stats(gt: dict, dets: list, area_rng=None, cat_ids=None, img_ids=None, return_text=False):
    """``COCOeval.summarize()`` stats ``[12]`` of a plain pycocotools run (and its printed summary lines).
    ``area_rng=[lo2, hi2]`` replaces each of small/medium/large by that single range, so stats[3] /
    stats[9] are its AP / AR100."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        if dets:
            coco_dt = coco_gt.loadRes(copy.deepcopy(dets))
        else:
            coco_dt = COCO()
            coco_dt.dataset = {'images': gt['images'], 'categories': gt['categories'], 'annotations': []}
            coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, 'bbox')
        if area_rng is not None:
            ev.params.areaRng = [[0, 1e10]] + [list(area_rng)] * 3
        if cat_ids is not None:
            ev.params.catIds = list(cat_ids)
        if img_ids is not None:
            ev.params.imgIds = list(img_ids)
        ev.evaluate()
        ev.accumulate()
        start = len(out.getvalue())
        ev.summarize()
    if return_text:
        return np.asarray(ev.stats), out.getvalue()[start:].rstrip('\n')
    return np.asarray(ev.stats)

