"""A tiny but complete experiment (generated shapes data, MobileNetV2 + YOLO v1 head) for testing the
training and testing tools end to end in seconds."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

TINY_CONFIG = """
_base_ = [{runtime!r}]
data_root = {data_root!r}
shapes = dict(type='ShapesDataset', data_root=data_root, num_train=24, num_val=8, img_size=96, seed=3)
pipeline = [dict(type='LoadImageFromFile', on_error='raise'), dict(type='LoadAnnotations'),
            dict(type='Resize', scale=(96, 96)), dict(type='Pad', size=(96, 96)), dict(type='PackDetInputs')]
flip = dict(type='Albu', transforms=[dict(type='HorizontalFlip', p=0.5)])
train_pipeline = pipeline[:2] + [flip] + pipeline[2:]
train_dataloader = dict(batch_size=8, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=True),
                        dataset=dict(shapes, split='train', pipeline=train_pipeline))
val_dataloader = dict(batch_size=8, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(shapes, split='val', pipeline=pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric', ann_file=data_root + '/annotations/val.json')
test_evaluator = val_evaluator
model = dict(
    type='SingleStageDetector',
    data_preprocessor=dict(type='DetDataPreprocessor', pad_size_divisor=32),
    backbone=dict(type='MobileNetV2', widen_factor=0.35, out_indices=(2,)),
    head=dict(type='YOLOV1Head', num_classes=5, in_index=0, feat_channels=32, num_convs=1))
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[2], gamma=0.5)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=3, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(logger=dict(type='LoggerHook', interval=1))
"""


@pytest.fixture(scope='session')
def tiny_config(tmp_path_factory) -> Path:
    """Path of a tiny experiment config; its data is generated on first use under the same folder."""
    folder = tmp_path_factory.mktemp('tiny_experiment')
    path = folder / 'tiny_yolo.py'
    path.write_text(TINY_CONFIG.format(runtime=str(REPO / 'configs/_base_/default_runtime.py'),
                                       data_root=str(folder / 'shapes')))
    return path


def run_tool(tool: str, *args, check=True) -> subprocess.CompletedProcess:
    """Run ``tools/<tool>.py`` as a user would, from the repository root."""
    proc = subprocess.run([sys.executable, str(REPO / 'tools' / f'{tool}.py'), *map(str, args)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(
            f'{tool} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}')
    return proc
