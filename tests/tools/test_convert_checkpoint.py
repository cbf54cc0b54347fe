"""A checkpoint written by plain mmengine tools (NumPy values, HistoryBuffer, ConfigDict) is refused by
det's weights-only loading with a message naming tools/convert_checkpoint.py, and loads once converted."""
import importlib.util
import pickle

import numpy as np
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.logging import HistoryBuffer, MessageHub

from det.engine.checkpoints import check_checkpoint_matches, load_checkpoint_safely
from det.engine.weights_only_checkpoint_hook import from_safe

from .conftest import REPO


def _tool():
    spec = importlib.util.spec_from_file_location('convert_checkpoint', REPO / 'tools/convert_checkpoint.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def mmengine_checkpoint(tmp_path):
    """What mmengine's ``Runner.save_checkpoint`` writes without det's hook: the message hub's state
    (HistoryBuffer objects, NumPy scalars) and ``meta`` with ConfigDict and NumPy values."""
    model = torch.nn.Linear(3, 2)
    hub = MessageHub.get_instance('convert_checkpoint_test')
    for loss in (0.9, 0.7, 0.4):
        hub.update_scalar('train/loss', loss)
    hub.update_info('iter', np.int64(3))
    checkpoint = {
        'meta': {'epoch': 1, 'iter': 3, 'seed': np.int64(0), 'cfg': "model = dict(type='X')",
                 'dataset_meta': ConfigDict(classes=('circle', 'square')), 'mean': np.array([1.5, 2.5])},
        'message_hub': hub.state_dict(),
        'state_dict': model.state_dict(),
        'optimizer': torch.optim.SGD(model.parameters(), lr=0.1).state_dict(),
    }
    path = tmp_path / 'mmengine.pth'
    torch.save(checkpoint, path)  # torch pickles every object as it is
    return path, model, hub


def test_weights_only_loading_names_the_converter(mmengine_checkpoint):
    path, model, _ = mmengine_checkpoint
    with pytest.raises(pickle.UnpicklingError):  # the premise: torch's safe loader refuses the file
        torch.load(path, weights_only=True)
    with pytest.raises(ValueError, match=r'tools/convert_checkpoint.py .* --trust-pickled-code') as error:
        check_checkpoint_matches(model, str(path))
    assert 'executes the pickled code' in str(error.value)


def test_converter_requires_explicit_trust_and_says_why(mmengine_checkpoint, tmp_path, capsys):
    tool = _tool()
    with pytest.raises(SystemExit, match='executes the pickled code'):
        tool.main([str(mmengine_checkpoint[0]), str(tmp_path / 'out.pth')])
    assert not (tmp_path / 'out.pth').exists()
    with pytest.raises(SystemExit):
        tool.main(['--help'])
    assert 'executes any code its pickled objects name' in ' '.join(capsys.readouterr().out.split())


def test_converted_checkpoint_loads_weights_only_with_the_same_content(mmengine_checkpoint, tmp_path):
    path, model, hub = mmengine_checkpoint
    out = tmp_path / 'converted.pth'
    assert _tool().main([str(path), str(out), '--trust-pickled-code']) == 0

    converted = load_checkpoint_safely(str(out))  # weights_only=True, nothing allow-listed
    original = torch.load(path, weights_only=False)
    for key, value in original['state_dict'].items():
        assert torch.equal(converted['state_dict'][key], value)
    assert converted['optimizer']['param_groups'] == original['optimizer']['param_groups']
    meta = converted['meta']
    assert meta['seed'] == 0 and type(meta['seed']) is int
    assert meta['dataset_meta'] == {'classes': ('circle', 'square')} and type(meta['dataset_meta']) is dict
    assert torch.equal(meta['mean'], torch.tensor([1.5, 2.5], dtype=torch.float64))
    # Resuming rebuilds the message hub's buffers (det's WeightsOnlyCheckpointHook.after_load_checkpoint).
    restored = from_safe(converted['message_hub'])['log_scalars']['train/loss']
    assert isinstance(restored, HistoryBuffer)
    logs, counts = hub.log_scalars['train/loss'].data
    np.testing.assert_array_equal(restored.data[0], logs)
    np.testing.assert_array_equal(restored.data[1], counts)
    check_checkpoint_matches(model, str(out))  # the tools' check accepts it


def test_values_without_a_weights_only_form_are_named(tmp_path):
    torch.save({'state_dict': {}, 'meta': {'when': {1, 2}}}, tmp_path / 'odd.pth')
    with pytest.raises(SystemExit, match=r"checkpoint\['meta'\]\['when'\]: builtins.set"):
        _tool().main([str(tmp_path / 'odd.pth'), str(tmp_path / 'out.pth'), '--trust-pickled-code'])
    assert not (tmp_path / 'out.pth').exists()
