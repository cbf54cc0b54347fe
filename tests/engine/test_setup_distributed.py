"""det.engine.setup_distributed / close_distributed in this process, as one process of a torchrun job
without CUDA (a process group of one); the multi-process runs are in tests/tools/test_distributed.py."""
import socket

import pytest
import torch
import torch.distributed as dist
from mmengine.config import Config
from torch.profiler import ProfilerActivity, profile

from det.engine import close_distributed, setup_distributed


@pytest.fixture
def torchrun_env(monkeypatch):
    """The environment torchrun gives a process (rank 0 of 1), on a machine without CUDA."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    for name, value in dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
                            MASTER_PORT=str(port)).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    yield
    if dist.is_initialized():
        dist.destroy_process_group()


def config(**entries) -> Config:
    return Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl', timeout=60)), **entries))


def test_without_cuda_the_gloo_group_is_ready_before_the_runner(torchrun_env):
    cfg = config(launcher='pytorch', find_unused_parameters=True)
    setup_distributed(cfg)
    assert dist.is_initialized() and dist.get_backend() == 'gloo'
    assert cfg.env_cfg.dist_cfg == dict(backend='gloo', timeout=60)
    # the arguments mmengine's default wrapper passes, less the GPU index a CPU module cannot take
    assert cfg.model_wrapper_cfg == dict(type='MMDistributedDataParallel', device_ids=None,
                                         broadcast_buffers=False, find_unused_parameters=True)
    close_distributed()
    assert not dist.is_initialized()


def test_closing_a_gloo_group_runs_nothing_on_its_worker_threads(torchrun_env):
    """The closing wait completes in the calling thread. ``dist.barrier()`` would run on a gloo worker
    thread, which releases the finished work (tensors with Python objects) after waking the caller, and
    at times only once the interpreter is finalising: ``terminate called without an active exception``
    at exit of an otherwise finished run (det/engine/distributed.py)."""
    setup_distributed(config(launcher='pytorch'))
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        close_distributed()
    assert not dist.is_initialized()
    [caller] = {event.thread for event in prof.events() if event.name.startswith('c10d::')}
    assert {event.name for event in prof.events() if event.thread != caller} == set()


def test_a_wrapper_config_keeps_its_own_settings(torchrun_env):
    cfg = config(launcher='pytorch', model_wrapper_cfg=dict(broadcast_buffers=True))
    setup_distributed(cfg)
    assert cfg.model_wrapper_cfg.broadcast_buffers is True and cfg.model_wrapper_cfg.device_ids is None


def test_one_process_runs_are_left_alone(torchrun_env):
    cfg = config(launcher='none')
    setup_distributed(cfg)
    assert not dist.is_initialized()
    assert cfg.env_cfg.dist_cfg.backend == 'nccl' and 'model_wrapper_cfg' not in cfg


@pytest.mark.parametrize('entries, reason', [
    (dict(launcher='pytorch', sync_bn='torch'), "sync_bn='torch' needs CUDA"),
    (dict(launcher='slurm'), 'with torchrun and --launcher pytorch'),
])
def test_what_cannot_run_without_cuda_is_refused_with_the_reason(torchrun_env, entries, reason):
    with pytest.raises(ValueError, match=reason):
        setup_distributed(config(**entries))
    assert not dist.is_initialized()
