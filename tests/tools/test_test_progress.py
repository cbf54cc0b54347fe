"""tools/test.py reports its progress about ten times, even when the test set has fewer batches than the
runtime's logger interval (20)."""
import importlib.util

import torch
from mmengine.config import Config

from det.registry import MODELS

from .conftest import REPO, TINY_CONFIG


def test_test_tool_logs_progress_on_a_few_batches(tmp_path):
    config = tmp_path / 'tiny.py'
    config.write_text(TINY_CONFIG.format(runtime=str(REPO / 'configs/_base_/default_runtime.py'),
                                         data_root=str(tmp_path / 'shapes')))
    model = MODELS.build(Config.fromfile(str(config)).model)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, tmp_path / 'random.pth')
    spec = importlib.util.spec_from_file_location('det_tools_test', REPO / 'tools' / 'test.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    work_dir = tmp_path / 'wd'
    tool.main([str(config), str(tmp_path / 'random.pth'), '--work-dir', str(work_dir), '--cfg-options',
               'default_hooks.logger.interval=20', 'test_dataloader.batch_size=2'])  # 8 images: 4 batches
    log = next(work_dir.glob('*/*.log')).read_text()
    for done in (1, 2, 3):
        assert f'Epoch(test) [{done}/4]' in log
