"""Boxes go back to original pixels in one place, the detector, for any resize: ``tools/test.py`` on
non-square images, letterboxed and stretched (``scale_factor`` not 1 and different per axis), writes
detections that land on rectangles drawn at known positions.

The model is a test double that reads the boxes off the network input itself: it finds the bright
rectangles of each (resized, padded) input image and returns them in input pixels, as every head does.
So the only thing between those boxes and the json is the detector's rescaling, checked here against
the drawing coordinates, which nothing else in the pipeline sees.
"""
import importlib.util
import json

import cv2
import numpy as np
import pytest
import torch

from ..inference.bright_regions import BrightRegionHead, PassThroughBackbone  # noqa: F401  (registers them)
from .conftest import REPO

# (width, height) of each image and the rectangles drawn on it, xyxy in original pixels.
IMAGES = [((200, 120), [[10, 12, 60, 50], [120, 70, 190, 110]]),
          ((90, 161), [[5, 5, 40, 30], [30, 90, 85, 150]]),
          ((333, 251), [[40, 30, 140, 100], [200, 150, 320, 240], [20, 180, 70, 230]]),
          ((64, 300), [[8, 20, 56, 90], [10, 200, 50, 290]])]
INPUT = 128


CONFIG = """
default_scope = 'det'
data_root = {root!r}
pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
            dict(type='Resize', scale=({size}, {size}), keep_ratio={keep_ratio}),
            dict(type='Pad', size=({size}, {size})), dict(type='PackDetInputs')]
test_dataloader = dict(batch_size=2, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
                       dataset=dict(type='CocoDataset', data_root=data_root, ann_file='ann.json',
                                    pipeline=pipeline, test_mode=True))
test_evaluator = dict(type='CocoMetric', backend='pycocotools')
test_cfg = dict(type='TestLoop')
model = dict(type='SingleStageDetector',
             data_preprocessor=dict(type='DetDataPreprocessor', mean=(0, 0, 0), std=(1, 1, 1),
                                    bgr_to_rgb=False, pad_size_divisor=32),
             backbone=dict(type='PassThroughBackbone'),
             head=dict(type='BrightRegionHead', num_classes=1))
"""


def _write_dataset(root) -> dict:
    images, anns = [], []
    for img_id, ((w, h), boxes) in enumerate(IMAGES, start=1):
        img = np.zeros((h, w, 3), np.uint8)
        for x1, y1, x2, y2 in boxes:
            img[y1:y2, x1:x2] = 255
            anns.append(dict(id=len(anns) + 1, image_id=img_id, category_id=1, iscrowd=0,
                             bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1)))
        cv2.imwrite(str(root / f'{img_id}.png'), img)
        images.append(dict(id=img_id, file_name=f'{img_id}.png', width=w, height=h))
    gt = dict(images=images, annotations=anns, categories=[dict(id=1, name='rectangle')])
    (root / 'ann.json').write_text(json.dumps(gt))
    return gt


def _test_tool():
    spec = importlib.util.spec_from_file_location('det_tools_test', REPO / 'tools' / 'test.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('keep_ratio', [True, False], ids=['letterbox', 'stretch'])
def test_test_tool_writes_boxes_in_original_pixels(tmp_path, keep_ratio):
    data = tmp_path / 'data'
    data.mkdir()
    _write_dataset(data)
    config = tmp_path / 'rectangles.py'
    config.write_text(CONFIG.format(root=str(data), size=INPUT, keep_ratio=keep_ratio))
    checkpoint = tmp_path / 'empty.pth'
    torch.save({'state_dict': {}, 'meta': {}}, checkpoint)
    out = tmp_path / 'dets.json'
    metrics = _test_tool().main([str(config), str(checkpoint), '--out', str(out), '--work-dir',
                                 str(tmp_path / 'wd'), '--show-dir', str(tmp_path / 'show')])

    dets = json.loads(out.read_text())
    for img_id, ((w, h), boxes) in enumerate(IMAGES, start=1):
        ratio = min(INPUT / w, INPUT / h)
        sx, sy = (round(w * ratio) / w, round(h * ratio) / h) if keep_ratio else (INPUT / w, INPUT / h)
        assert sx != 1 and sy != 1 and sx != sy
        found = np.array([d['bbox'] for d in dets if d['image_id'] == img_id]).reshape(-1, 4)
        found[:, 2:] += found[:, :2]
        assert len(found) == len(boxes), (img_id, found)
        for box in boxes:
            err = np.abs(found - np.array(box)) / np.array([1 / sx, 1 / sy, 1 / sx, 1 / sy])
            best = err.max(axis=1).min()     # in input pixels: edges blur by about one under resizing
            assert best <= 1.0, (img_id, box, found)
    assert metrics['coco/AP50'] == pytest.approx(1.0)
    assert len(list((tmp_path / 'show').glob('*.jpg'))) == len(IMAGES)
