"""Recall of sliced inference against one whole-image pass on a large image made of built-in tiles.

An 8 x 8 grid of shapes val images (320 x 320 each) makes a 2560 x 2560 image whose objects are the
tiles' objects shifted by each tile's corner. A whole-image pass shrinks it to the config's 320 input,
so most objects fall under a pixel or two; sliced inference (tiles of ``--slice`` pixels with
``--overlap``, plus the whole-image pass, merged by class-wise NMS) sees them at their own size.

    python benchmarks/sliced_recall.py CONFIG CKPT [--grid 8] [--slice 320] [--overlap 0.2]

Prints recall at IoU 0.5 (class-aware, detections scoring at least ``--score-thr``) per size tier for
both ways, and the time each took.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torchvision.ops import box_iou

from det.apis import init_detector
from det.datasets.transforms import LoadImageFromFile
from det.engine.config import load_config
from det.inference.slicing import sliced_predict
from det.inference.views import split_test_pipeline
from det.registry import DATASETS

TIERS = (('very tiny <8', 0, 8), ('tiny 8-16', 8, 16), ('small 16-32', 16, 32), ('medium 32-96', 32, 96),
         ('large >=96', 96, np.inf))


def mosaic_of_val_images(ann_file: Path, img_dir: Path, grid: int) -> tuple:
    """The first ``grid**2`` val images tiled row by row -> (BGR image, gt boxes [N, 4] xyxy, labels [N])."""
    coco = json.loads(ann_file.read_text())
    cat_index = {c['id']: i for i, c in enumerate(coco['categories'])}
    images = sorted(coco['images'], key=lambda im: im['id'])[:grid * grid]
    if len(images) < grid * grid:
        raise ValueError(f'{ann_file} has {len(images)} images; a {grid}x{grid} grid needs {grid * grid}')
    size = images[0]['height']
    canvas = np.zeros((grid * size, grid * size, 3), np.uint8)
    boxes, labels = [], []
    loader = LoadImageFromFile(on_error='raise')
    for k, image in enumerate(images):
        y0, x0 = (k // grid) * size, (k % grid) * size
        canvas[y0:y0 + size, x0:x0 + size] = loader(dict(img_path=str(img_dir / image['file_name'])))['img']
        for ann in coco['annotations']:
            if ann['image_id'] == image['id'] and not ann.get('iscrowd', 0):
                x, y, w, h = ann['bbox']
                boxes.append([x + x0, y + y0, x + x0 + w, y + y0 + h])
                labels.append(cat_index[ann['category_id']])
    return canvas, torch.tensor(boxes, dtype=torch.float32), torch.tensor(labels)


def recall_by_tier(pred, gt_boxes, gt_labels, score_thr: float, iou_thr: float = 0.5) -> dict:
    """Fraction of ground-truth boxes with a same-class detection (score >= ``score_thr``) at IoU >=
    ``iou_thr``, overall and per size tier (sqrt(area) in pixels)."""
    keep = pred.scores >= score_thr
    iou = box_iou(gt_boxes, pred.bboxes[keep])
    same_class = gt_labels[:, None] == pred.labels[keep][None, :]
    found = ((iou >= iou_thr) & same_class).any(1) if iou.numel() else torch.zeros(len(gt_boxes), dtype=bool)
    sizes = ((gt_boxes[:, 2] - gt_boxes[:, 0]) * (gt_boxes[:, 3] - gt_boxes[:, 1])).sqrt()
    result = {'all': (found.float().mean().item(), len(found))}
    for name, low, high in TIERS:
        in_tier = (sizes >= low) & (sizes < high)
        result[name] = (found[in_tier].float().mean().item() if in_tier.any() else float('nan'),
                        int(in_tier.sum()))
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--grid', type=int, default=8, help='tiles per side of the large image')
    parser.add_argument('--slice', type=int, default=320, help='tile size of sliced inference')
    parser.add_argument('--overlap', type=float, default=0.2)
    parser.add_argument('--score-thr', type=float, default=0.3)
    args = parser.parse_args(argv)

    cfg = load_config(args.config)
    dataset = cfg.val_dataloader.dataset
    data_root = Path(dataset.data_root)
    model = init_detector(cfg, args.checkpoint)
    DATASETS.build(dataset)  # generates the shapes data on a fresh clone
    image, gt_boxes, gt_labels = mosaic_of_val_images(data_root / 'annotations/val.json', data_root / 'val',
                                                      args.grid)
    view_pipeline = split_test_pipeline(cfg)[1]
    rows = {}
    with torch.no_grad():
        for name, kwargs in (('whole image', dict(slice_size=max(image.shape), overlap_ratio=0.0,
                                                   full_image=False)),
                             (f'sliced {args.slice} + whole', dict(slice_size=args.slice,
                                                                   overlap_ratio=args.overlap))):
            start = time.perf_counter()
            pred = sliced_predict(model, image, view_pipeline, max_per_img=10000, **kwargs)
            seconds = time.perf_counter() - start
            rows[name] = (recall_by_tier(pred, gt_boxes, gt_labels, args.score_thr), seconds)
    tiers = ['all'] + [t[0] for t in TIERS]
    first = next(iter(rows.values()))[0]
    print(f'{image.shape[1]}x{image.shape[0]} image of {args.grid}x{args.grid} val tiles, '
          f'{len(gt_boxes)} objects; recall at IoU 0.5, score >= {args.score_thr}')
    print('| inference | time | ' + ' | '.join(f'{t} ({first[t][1]})' for t in tiers) + ' |')
    print('|---|---|' + '---|' * len(tiers))
    for name, (recall, seconds) in rows.items():
        print(f'| {name} | {seconds:.1f} s | ' + ' | '.join(f'{recall[t][0]:.3f}' for t in tiers) + ' |')


if __name__ == '__main__':
    main()
