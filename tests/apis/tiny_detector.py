"""A tiny detector experiment for the inference tests: generated shapes data (96 px), a narrow
MobileNetV2 + YOLO v1 head, and a checkpoint of its random weights in mmengine's format."""
from pathlib import Path

import torch
from mmengine.config import Config

from det.datasets.shapes import SHAPE_CLASSES
from det.registry import MODELS

REPO = Path(__file__).resolve().parents[2]

TINY_CONFIG = """
_base_ = [{runtime!r}]
img_scale = (96, 96)
test_pipeline = [dict(type='LoadImageFromFile', on_error='raise'), dict(type='LoadAnnotations'),
                 dict(type='Resize', scale=img_scale, keep_ratio=True), dict(type='Pad', size=img_scale),
                 dict(type='PackDetInputs')]
test_dataloader = dict(
    batch_size=4, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='ShapesDataset', data_root={data_root!r}, split='val', num_train=0, num_val=4,
                 img_size=96, seed=5, pipeline=test_pipeline, test_mode=True))
test_evaluator = dict(type='CocoMetric', ann_file={data_root!r} + '/annotations/val.json')
test_cfg = dict(type='TestLoop')
model = dict(
    type='SingleStageDetector',
    data_preprocessor=dict(type='DetDataPreprocessor', pad_size_divisor=32),
    backbone=dict(type='MobileNetV2', widen_factor=0.35, out_indices=(2, 3)),
    head=dict(type='YOLOV1Head', num_classes=5, in_index=0, feat_channels=32, num_convs=1,
              bbox_coder=dict(type='YOLOV1BBoxCoder', wh_norm=96),
              test_cfg=dict(score_thr=0.05, nms=dict(iou_thr=0.5), max_per_img=50, topk=400)))
"""


def write_tiny_experiment(folder: Path, seed: int = 0) -> tuple:
    """Write ``folder/tiny.py`` and ``folder/tiny.pth`` (random weights drawn with ``seed``, with the
    shapes classes as ``meta.dataset_meta``); the data is generated under ``folder/shapes`` on first
    use of the dataset. Returns (config path, checkpoint path).

    The head's output layer is redrawn with large weights and no bias: at random initialisation the
    features are so small that every score would equal the prior, and equal scores make box order
    arbitrary; these give distinct scores and box sizes.
    """
    config = folder / 'tiny.py'
    config.write_text(TINY_CONFIG.format(runtime=str(REPO / 'configs/_base_/default_runtime.py'),
                                         data_root=str(folder / 'shapes')))
    torch.manual_seed(seed)
    model = MODELS.build(Config.fromfile(str(config)).model)
    torch.nn.init.normal_(model.head.out.weight, std=100.0)
    torch.nn.init.zeros_(model.head.out.bias)
    checkpoint = folder / 'tiny.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {'dataset_meta': {'classes': SHAPE_CLASSES}}},
               checkpoint)
    return config, checkpoint
