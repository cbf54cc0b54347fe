"""A tiny but complete experiment (generated shapes data, MobileNetV2 + YOLO v1 head) for testing the
training and testing tools end to end in seconds, the same experiment on any dataset, and VOC folders."""
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
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


RUNTIME = str(REPO / 'configs/_base_/default_runtime.py')

# A tiny experiment on any dataset: training images that cannot be read are skipped, validation images
# stop the run; MobileNetV2 + YOLO v1, AdamW.
EXPERIMENT = """
_base_ = [{runtime!r}]
pipeline = [dict(type='LoadImageFromFile', on_error='skip'), dict(type='LoadAnnotations'),
            dict(type='Resize', scale=({size}, {size})), dict(type='Pad', size=({size}, {size})),
            dict(type='PackDetInputs')]
test_pipeline = [dict(pipeline[0], on_error='raise')] + pipeline[1:]
data = {dataset}
train_dataloader = dict(batch_size=4, num_workers={workers}, persistent_workers=False,
                        sampler=dict(type='DefaultSampler', shuffle=True),
                        dataset=dict({train}, pipeline=pipeline))
val_dataloader = dict(batch_size=4, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict({val}, pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = {evaluator}
test_evaluator = val_evaluator
model = dict(type='SingleStageDetector', data_preprocessor=dict(type='DetDataPreprocessor'),
             backbone=dict(type='MobileNetV2', widen_factor=0.35, out_indices=(2,)),
             head=dict(type='YOLOV1Head', num_classes={num_classes}, feat_channels=16, num_convs=1))
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3))
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs={epochs}, val_interval={val_interval})
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(logger=dict(type='LoggerHook', interval=1))
"""


def experiment_config(dataset: str, num_classes: int, epochs: int = 1, val_interval: int = None,
                      size: int = 64, workers: int = 0, train: str = "dict(data, split='train')",
                      val: str = "dict(data, split='val')",
                      evaluator: str = "dict(type='CocoMetric')") -> str:
    """The text of a tiny experiment config (:data:`EXPERIMENT`) for the tools' tests. ``dataset`` is the
    Python text of the dataset dict both splits share (named ``data`` in the config); ``train`` and
    ``val`` make each split's dict of it (its pipeline and test mode are added); ``evaluator`` is the
    val and test evaluator; validation every ``val_interval`` epochs (default: after the last)."""
    return EXPERIMENT.format(runtime=RUNTIME, dataset=dataset, num_classes=num_classes, epochs=epochs,
                             val_interval=val_interval or epochs, size=size, workers=workers, train=train,
                             val=val, evaluator=evaluator)


def voc_dataset(root: str, classes) -> str:
    """The Python text of a VOC dataset dict on ``root`` with the class names ``classes``."""
    return f"dict(type='VOCDataset', data_root={str(root)!r}, metainfo=dict(classes={tuple(classes)!r}))"


VOC_OBJECT = ('<object><name>{}</name><difficult>0</difficult><bndbox><xmin>{}</xmin><ymin>{}</ymin>'
              '<xmax>{}</xmax><ymax>{}</ymax></bndbox></object>')


def write_voc_split(root, split: str, objects_of: dict) -> None:
    """A VOC split under ``root``: per image name a 64 x 48 noise JPEG (its content differs by split) and
    an xml of its ``(class name, (x1, y1, x2, y2))`` objects, and ``ImageSets/Main/<split>.txt``."""
    for sub in ('Annotations', 'JPEGImages', 'ImageSets/Main'):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(split))
    for name, objects in objects_of.items():
        cv2.imwrite(str(root / 'JPEGImages' / f'{name}.jpg'), rng.integers(0, 255, (48, 64, 3), np.uint8))
        body = ''.join(VOC_OBJECT.format(label, *box) for label, box in objects)
        (root / 'Annotations' / f'{name}.xml').write_text(
            f'<annotation><filename>{name}.jpg</filename><size><width>64</width><height>48</height>'
            f'</size>{body}</annotation>')
    (root / 'ImageSets/Main' / f'{split}.txt').write_text('\n'.join(objects_of))
