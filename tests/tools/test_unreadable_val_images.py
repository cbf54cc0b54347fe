"""A validation image that cannot be read stops nothing by default: tools/train.py and tools/test.py
name it in the data check, leave it out of evaluation and say what the metric covers (log, printed
results, the run's json); --strict-data stops as before. A JPEG cut short is read and listed as a
warning; a training image whose pixel data is broken behind a sound header passes the header-only check
and is skipped and named by the loader."""
import importlib.util
import json
import re

import cv2
import numpy as np
import pytest

from ..datasets.test_image_decoding import broken_png_bytes
from .conftest import REPO, run_tool

CONFIG = """
_base_ = [{runtime!r}]
pipeline = [dict(type='LoadImageFromFile', on_error='skip'), dict(type='LoadAnnotations'),
            dict(type='Resize', scale=(64, 64)), dict(type='Pad', size=(64, 64)), dict(type='PackDetInputs')]
test_pipeline = [dict(pipeline[0], on_error='raise')] + pipeline[1:]
voc = dict(type='VOCDataset', data_root={root!r}, metainfo=dict(classes=('circle', 'square')))
train_dataloader = dict(batch_size=4, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=True),
                        dataset=dict(voc, split='train', pipeline=pipeline))
val_dataloader = dict(batch_size=4, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(voc, split='val', pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric')
test_evaluator = val_evaluator
model = dict(type='SingleStageDetector', data_preprocessor=dict(type='DetDataPreprocessor'),
             backbone=dict(type='MobileNetV2', widen_factor=0.35, out_indices=(2,)),
             head=dict(type='YOLOV1Head', num_classes=2, feat_channels=16, num_convs=1))
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3))
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
"""
OBJECTS = ('<object><name>circle</name><bndbox><xmin>5</xmin><ymin>5</ymin><xmax>30</xmax><ymax>30</ymax>'
           '</bndbox></object>')
STRICT_ERROR = ('val dataset VOCDataset: 1 images cannot be read ({path}); a test-mode dataset would stop '
                'on them mid-run: fix or remove them')


def write_split(root, split, names):
    rng = np.random.default_rng(len(split))
    for name in names:
        cv2.imwrite(str(root / 'JPEGImages' / f'{name}.jpg'), rng.integers(0, 255, (48, 64, 3), np.uint8))
        (root / 'Annotations' / f'{name}.xml').write_text(
            f'<annotation><filename>{name}.jpg</filename><size><width>64</width><height>48</height>'
            f'</size>{OBJECTS}</annotation>')
    (root / 'ImageSets/Main' / f'{split}.txt').write_text('\n'.join(names))


@pytest.fixture(scope='module')
def experiment(tmp_path_factory):
    """(config, data root) of a VOC folder whose val split has 4 images: one empty file, one JPEG cut
    short, two sound ones; the train split has 6, one a PNG with noise for pixel data."""
    folder = tmp_path_factory.mktemp('unreadable_val')
    root = folder / 'voc'
    for sub in ('Annotations', 'JPEGImages', 'ImageSets/Main'):
        (root / sub).mkdir(parents=True)
    write_split(root, 'train', [f'img{i}' for i in range(6)])
    (root / 'JPEGImages/img5.jpg').unlink()
    (root / 'JPEGImages/img5.png').write_bytes(broken_png_bytes())
    xml = root / 'Annotations/img5.xml'
    xml.write_text(xml.read_text().replace('img5.jpg', 'img5.png'))
    write_split(root, 'val', [f'val{i}' for i in range(4)])
    (root / 'JPEGImages/val1.jpg').write_bytes(b'')
    cut = root / 'JPEGImages/val2.jpg'
    cut.write_bytes(cut.read_bytes()[:-20])
    config = folder / 'voc.py'
    config.write_text(CONFIG.format(runtime=str(REPO / 'configs/_base_/default_runtime.py'), root=str(root)))
    return config, root


@pytest.fixture(scope='module')
def trained(experiment, tmp_path_factory):
    config, root = experiment
    work_dir = tmp_path_factory.mktemp('wd')
    proc = run_tool('train', config, '--work-dir', work_dir)
    return work_dir, proc.stdout + proc.stderr


@pytest.mark.slow
def test_training_leaves_the_unreadable_val_image_out_and_says_so(experiment, trained):
    _, root = experiment
    work_dir, log = trained
    assert (work_dir / 'epoch_1.pth').exists()
    table = log[log.index('Data check'):]
    assert re.search(r'val +unreadable image +1 +\S+/val1\.jpg \(empty file\)', table)
    assert re.search(r'val +truncated image, read +1 +\S+/val2\.jpg', table)  # a warning, not an error
    assert 'val: 1 of 4 images cannot be read; they are left out of evaluation' in log
    assert 'CocoMetric: evaluated on 3 of 4 images; 1 unreadable, listed above' in log
    assert re.search(r'coco/images_evaluated: 3\.0+ +coco/images_unreadable: 1\.0+', log)
    # The training PNG passed the header-only check; the loader skipped it and named it, with the reason.
    assert 'train +unreadable image' not in table
    assert f'cannot read image {root}/JPEGImages/img5.png (broken PNG data (' in log


@pytest.mark.slow
def test_test_tool_prints_and_writes_what_the_metric_covers(experiment, trained, tmp_path):
    config, _ = experiment
    work_dir, _ = trained
    proc = run_tool('test', config, work_dir / 'epoch_1.pth', '--work-dir', tmp_path)
    out = proc.stdout + proc.stderr
    assert re.search(r'test +unreadable image +1 +\S+/val1\.jpg \(empty file\)', out)
    assert 'coco/coverage: evaluated on 3 of 4 images; 1 unreadable, listed above' in out
    [results] = [p for p in tmp_path.glob('*/*.json') if p.stem == p.parent.name]  # <timestamp>.json
    written = json.loads(results.read_text())
    assert written['coco/coverage'] == 'evaluated on 3 of 4 images; 1 unreadable, listed above'
    assert written['coco/images_evaluated'] == 3 and written['coco/images_unreadable'] == 1


def _tool(name):
    """tools/<name>.py as a module, to run its ``main`` in this process (a subprocess spends ~10 s on
    imports before the check that stops it)."""
    spec = importlib.util.spec_from_file_location(f'det_tool_{name}', REPO / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_strict_data_stops_both_tools_as_before(experiment, tmp_path, monkeypatch):
    """--strict-data on tools/train.py, the config key on tools/test.py: today's error, before any step."""
    config, root = experiment
    error = STRICT_ERROR.format(path=f'{root}/JPEGImages/val1.jpg')
    # leave pytest's malloc settings alone
    monkeypatch.setattr('det.engine.machine.keep_freed_memory', lambda: None)
    train = _tool('train')
    with pytest.raises(SystemExit, match=re.escape(error)):
        train.main([str(config), '--work-dir', str(tmp_path / 'wd'), '--strict-data'])
    assert not list((tmp_path / 'wd').glob('*.pth'))
    test = _tool('test')
    (tmp_path / 'none.pth').write_bytes(b'')  # exists, so the tool gets past its checkpoint-path check
    monkeypatch.setattr(test, 'check_checkpoint_matches', lambda *args: pytest.fail('the check should stop'))
    with pytest.raises(SystemExit, match=re.escape(error.replace('val dataset', 'test dataset'))):
        test.main([str(config), str(tmp_path / 'none.pth'), '--work-dir', str(tmp_path / 'test'),
                   '--cfg-options', 'strict_data=True'])
