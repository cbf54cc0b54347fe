"""``load_config`` (det/engine/config.py), the one loader of det's tools, ``det.apis`` and
``det.analysis``: a path or a Config (copied), overrides, the registry scope and the work dir, and
nothing else."""
from pathlib import Path

import pytest
from mmengine.config import Config

from det.engine.config import load_config

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / 'configs/yolov1_mobilenetv2_fpn_416_bccd.py'


def test_a_path_is_read_with_its_overrides_and_a_work_dir_named_after_it():
    cfg = load_config(CONFIG, {'train_dataloader.batch_size': 3})
    assert cfg.train_dataloader.batch_size == 3
    assert cfg.default_scope == 'det'
    assert cfg.work_dir == 'work_dirs/yolov1_mobilenetv2_fpn_416_bccd'
    assert load_config(str(CONFIG), work_dir='elsewhere').work_dir == 'elsewhere'


def test_a_config_object_is_copied_not_changed():
    original = Config.fromfile(str(CONFIG))
    cfg = load_config(original, {'train_dataloader.batch_size': 3})
    assert cfg.train_dataloader.batch_size == 3
    assert original.train_dataloader.batch_size != 3 and 'work_dir' not in original
    assert cfg.model == original.model


def test_what_is_not_a_config_is_named():
    with pytest.raises(FileNotFoundError, match='config not found: no/such.py'):
        load_config('no/such.py')
    with pytest.raises(TypeError, match='a path or an mmengine Config, got dict'):
        load_config({'model': {}})
