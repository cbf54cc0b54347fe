"""tools/test.py before any work: a mistyped checkpoint path stops the tool at once, naming the path,
before the config's Runner (model, datasets, work dir) is built."""
import importlib.util
import time

import pytest
from mmengine.runner import Runner

from .conftest import REPO

spec = importlib.util.spec_from_file_location('test_tool', REPO / 'tools/test.py')
test_tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(test_tool)


def test_missing_checkpoint_fails_at_once_naming_the_path(tiny_config, tmp_path, monkeypatch):
    def build_runner(cfg):
        raise AssertionError('the Runner (model and datasets) was built before the checkpoint was checked')

    monkeypatch.setattr(Runner, 'from_cfg', build_runner)
    missing = tmp_path / 'work_dirs' / 'tiny_yolo' / 'epoch_3.pht'
    start = time.perf_counter()
    with pytest.raises(SystemExit) as stop:
        test_tool.main([str(tiny_config), str(missing), '--work-dir', str(tmp_path / 'wd')])
    assert time.perf_counter() - start < 1.0
    assert str(missing) in str(stop.value.code) and 'not found' in str(stop.value.code)
    assert not (tmp_path / 'wd').exists()


def test_a_folder_without_checkpoints_fails_naming_it(tiny_config, tmp_path):
    """A folder stands for a work dir's best or latest checkpoint; one that holds none stops the tool."""
    with pytest.raises(SystemExit) as stop:
        test_tool.main([str(tiny_config), str(tmp_path), '--work-dir', str(tmp_path / 'wd')])
    assert str(tmp_path) in str(stop.value.code) and 'no checkpoint' in str(stop.value.code)
