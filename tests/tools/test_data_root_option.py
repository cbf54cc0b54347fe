"""``--data-root DIR`` moves the train, val and test datasets (and an evaluator json under the old root)
in one option, in det.engine.config.set_data_root and end to end through tools/test.py."""
import torch
from mmengine.config import Config

from det.engine.config import load_config, set_data_root
from det.registry import MODELS

from .conftest import REPO, TINY_CONFIG, run_tool


def test_shipped_voc_config_moves_every_split():
    cfg = load_config(str(REPO / 'configs/yolov1_mobilenetv2_fpn_416_bccd.py'))
    set_data_root(cfg, '/data/BCCD')
    for split in ('train', 'val', 'test'):
        assert cfg[f'{split}_dataloader'].dataset.data_root == '/data/BCCD'
    assert cfg.val_evaluator.get('ann_file') is None  # the metric reads the dataset's own annotations


def test_evaluator_json_follows_when_under_the_old_root_or_relative(tmp_path):
    config = tmp_path / 'c.py'
    config.write_text("""
coco = dict(type='CocoDataset', data_root='/old/root')
train_dataloader = dict(dataset=dict(type='RepeatDataset', times=2,
                                     dataset=dict(coco, ann_file='annotations/train.json')))
val_dataloader = dict(dataset=dict(coco, ann_file='annotations/val.json'))
test_dataloader = dict(dataset=dict(coco, ann_file='annotations/test.json'))
val_evaluator = [dict(type='CocoMetric', ann_file='/old/root/annotations/val.json'),
                 dict(type='CocoMetric', ann_file='/elsewhere/val.json')]
test_evaluator = dict(type='CocoMetric', ann_file='annotations/test.json')
""")
    cfg = Config.fromfile(str(config))
    set_data_root(cfg, '/new')
    set_data_root(cfg, '/new')  # idempotent
    assert cfg.train_dataloader.dataset.dataset.data_root == '/new'  # under the dataset wrapper
    assert cfg.val_dataloader.dataset.data_root == cfg.test_dataloader.dataset.data_root == '/new'
    assert [m.ann_file for m in cfg.val_evaluator] == ['/new/annotations/val.json', '/elsewhere/val.json']
    assert cfg.test_evaluator.ann_file == 'annotations/test.json'  # relative: read from the new root


def test_test_tool_evaluates_the_data_at_data_root(tmp_path):
    old_root, new_root = tmp_path / 'not_there', tmp_path / 'moved' / 'shapes'
    config = tmp_path / 'tiny.py'
    config.write_text(TINY_CONFIG.format(runtime=str(REPO / 'configs/_base_/default_runtime.py'),
                                         data_root=str(old_root)))
    model = MODELS.build(Config.fromfile(str(config)).model)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, tmp_path / 'random.pth')

    proc = run_tool('test', config, tmp_path / 'random.pth', '--data-root', new_root,
                    '--work-dir', tmp_path / 'wd')
    log = proc.stdout + proc.stderr
    assert 'coco/AP50' in log  # evaluated against the json under the new root
    assert (new_root / 'annotations' / 'val.json').is_file() and not old_root.exists()
