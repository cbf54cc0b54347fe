"""Training goes on through a VOC folder with invalid boxes and a corrupt image, saying so."""
import cv2
import numpy as np

from .conftest import REPO, run_tool

VOC_CONFIG = """
_base_ = [{runtime!r}]
classes = ('box', 'disc')
pipeline = [dict(type='LoadImageFromFile', on_error='skip'), dict(type='LoadAnnotations'),
            dict(type='Resize', scale=(64, 64)), dict(type='Pad', size=(64, 64)), dict(type='PackDetInputs')]
test_pipeline = [dict(pipeline[0], on_error='raise')] + pipeline[1:]
voc = dict(type='VOCDataset', data_root={root!r}, metainfo=dict(classes=classes))
train_dataloader = dict(batch_size=4, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=True),
                        dataset=dict(voc, split='train', pipeline=pipeline))
val_dataloader = dict(batch_size=4, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(voc, split='val', pipeline=test_pipeline, test_mode=True))
val_evaluator = dict(type='CocoMetric')
model = dict(type='SingleStageDetector', data_preprocessor=dict(type='DetDataPreprocessor'),
             backbone=dict(type='MobileNetV2', widen_factor=0.35, out_indices=(2,)),
             head=dict(type='YOLOV1Head', num_classes=2, feat_channels=16, num_convs=1))
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3))
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=2, val_interval=2)
val_cfg = dict(type='ValLoop')
"""

OBJECT = ('<object><name>{name}</name><difficult>0</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>'
          '<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>')


def _write_voc(root, names, boxes_of):
    for sub in ('Annotations', 'JPEGImages', 'ImageSets/Main'):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        img = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
        cv2.imwrite(str(root / 'JPEGImages' / f'{name}.jpg'), img)
        objects = ''.join(OBJECT.format(name=label, b=box) for label, box in boxes_of(name))
        (root / 'Annotations' / f'{name}.xml').write_text(
            f'<annotation><filename>{name}.jpg</filename><size><width>64</width><height>48</height>'
            f'<depth>3</depth></size>{objects}</annotation>')


def test_training_survives_invalid_boxes_and_corrupt_image(tmp_path):
    root = tmp_path / 'voc'
    names = [f'img{i}' for i in range(10)]

    def boxes_of(name):
        boxes = [('box', (5, 5, 30, 30)), ('disc', (30, 10, 60, 40))]
        if name == 'img1':
            boxes += [('box', (20, 20, 20, 35)), ('disc', (50, 30, 90, 60))]  # empty; partly outside
        if name == 'img2':
            boxes += [('box', (70, 50, 80, 60))]  # wholly outside the 64x48 image
        return boxes

    _write_voc(root, names, boxes_of)
    (root / 'JPEGImages' / 'img3.jpg').write_bytes(b'not a jpeg at all')  # corrupt, in the train split
    (root / 'ImageSets/Main/train.txt').write_text('\n'.join(names[:8]))
    (root / 'ImageSets/Main/val.txt').write_text('\n'.join(names[8:]))
    config = tmp_path / 'bad_voc.py'
    config.write_text(VOC_CONFIG.format(runtime=str(REPO / 'configs/_base_/default_runtime.py'),
                                        root=str(root)))

    proc = run_tool('train', config, '--work-dir', tmp_path / 'wd')
    log = proc.stdout + proc.stderr
    assert (tmp_path / 'wd' / 'epoch_2.pth').exists()
    assert '1 boxes clipped to the image and 2 invalid boxes dropped' in log
    assert log.count('split=train): 1 boxes clipped') == 1  # one warning for the dataset, not per box
    assert 'img3.jpg' in log  # the unreadable image is named when skipped
