"""``apply_machine_defaults`` (det/engine/machine.py): loader processes from the device and the core
count where a config leaves ``num_workers`` out (the shipped ones do), a config's own choice kept, and
glibc's freed-memory setting only where the model computes on the CPU; each decision logged."""
import pytest

from det.engine import machine
from det.engine.config import load_config
from det.engine.machine import apply_machine_defaults, default_num_workers

from ..tools.conftest import REPO

SHIPPED = REPO / 'configs/yolov1_mobilenetv2_fpn_320_shapes.py'


@pytest.mark.parametrize('device_type, cpus, workers', [
    ('cuda', 1, 0), ('cuda', 2, 1), ('cuda', 8, 4), ('cuda', 64, 4),
    ('cpu', 2, 0), ('cpu', 4, 0), ('cpu', 8, 1), ('cpu', 16, 3), ('cpu', 64, 4)])
def test_worker_policy(device_type, cpus, workers):
    assert default_num_workers(device_type, cpus) == workers


@pytest.fixture
def glibc_calls(monkeypatch):
    calls = []
    monkeypatch.setattr(machine, 'keep_freed_memory', lambda: calls.append(1) or True)
    monkeypatch.setattr(machine, 'print_log', lambda msg, *a, **k: calls.append(msg))
    return calls


def test_a_gpu_machine_gets_loaders_and_no_allocator_setting(tmp_path, glibc_calls):
    cfg = load_config(str(SHIPPED), work_dir=str(tmp_path))
    lines = apply_machine_defaults(cfg, device_type='cuda', cpus=16)
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        assert (loader.num_workers, loader.persistent_workers) == (4, True), split
    assert 1 not in glibc_calls  # keep_freed_memory not called
    assert 'glibc freed-memory setting not applied (model on cuda)' in lines
    assert all(f'machine defaults: {line}' in glibc_calls for line in lines)


def test_a_two_core_cpu_loads_in_the_main_process_and_keeps_freed_memory(tmp_path, glibc_calls):
    cfg = load_config(str(SHIPPED), work_dir=str(tmp_path))
    lines = apply_machine_defaults(cfg, device_type='cpu', cpus=2)
    assert cfg.train_dataloader.num_workers == 0 and 'persistent_workers' not in cfg.train_dataloader
    assert glibc_calls.count(1) == 1
    assert 'train_dataloader.num_workers=0 (model on cpu, 2 cores)' in lines


def test_a_config_that_sets_num_workers_keeps_it(tmp_path, glibc_calls):
    cfg = load_config(str(SHIPPED), dict(train_dataloader=dict(num_workers=1)), str(tmp_path))
    lines = apply_machine_defaults(cfg, device_type='cuda', cpus=16)
    assert cfg.train_dataloader.num_workers == 1 and cfg.val_dataloader.num_workers == 4
    assert 'train_dataloader.num_workers=1 (set by the config)' in lines
