"""tools/dist_train.sh with two processes on the CPUs (gloo) against one process with the same global batch:
the same training, one set of checkpoints, one evaluation over the whole val set, exact resume; and, given
two GPUs, sync_bn. (Without CUDA sync_bn is refused: tests/engine/test_setup_distributed.py.)"""
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys

import pytest
import torch

from .conftest import REPO, TINY_CONFIG

# 48 train images: an epoch is 6 steps of 8 images in one process, or of 2 x 4 in two. 9 val images, so the
# distributed sampler pads the second process's share with a repeat that the evaluation must not count.
# DumpResults keeps what the evaluator collected, i.e. what CocoMetric computed its numbers on.
DIST_CONFIG = """
_base_ = ['tiny_yolo.py']
train_dataloader = dict(batch_size=4, dataset=dict(num_train=48, num_val=9))
val_dataloader = dict(dataset=dict(num_train=48, num_val=9))
test_dataloader = val_dataloader
val_evaluator = [_base_.val_evaluator, dict(type='DumpResults', out_file_path={dump!r})]
"""

# A step over 2 x 4 images equals the step over those 8 when nothing depends on the batch split: no random
# flip (each process would draw its own), BatchNorm statistics frozen and no BatchNorm in the head; SGD
# rather than Adam, which would magnify rounding differences of near-zero gradients.
EXACT_CONFIG = """
_base_ = ['dist_yolo.py']
train_dataloader = dict(dataset=dict(pipeline=_base_.pipeline))
model = dict(backbone=dict(norm_eval=True), head=dict(num_convs=0))
optim_wrapper = dict(optimizer=dict(_delete_=True, type='SGD', lr=0.01, momentum=0.9))
train_cfg = dict(max_epochs=4)
log_processor = dict(window_size=1)  # log each step's loss, not a running mean
"""


@pytest.fixture(scope='module')
def configs(tmp_path_factory):
    """(realistic config, exact-equality config, folder); their data are generated on first use."""
    folder = tmp_path_factory.mktemp('dist_experiment')
    (folder / 'tiny_yolo.py').write_text(TINY_CONFIG.format(
        runtime=str(REPO / 'configs/_base_/default_runtime.py'), data_root=str(folder / 'shapes')))
    (folder / 'dist_yolo.py').write_text(DIST_CONFIG.format(dump=str(folder / 'val_results.pkl')))
    (folder / 'exact_yolo.py').write_text(EXACT_CONFIG)
    return folder / 'dist_yolo.py', folder / 'exact_yolo.py', folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def train(config, nproc: int, *args) -> subprocess.CompletedProcess:
    """``tools/train.py CONFIG ARGS`` (one process) or ``tools/dist_train.sh CONFIG NPROC ARGS`` on a free
    port, on the CPUs whatever the machine (gloo), one thread per process (as torchrun sets it; a second
    OpenMP thread slows these tiny steps many times over when the other core is busy), from the config's
    folder (mmengine's result collection writes a ``.dist_test`` folder in the working directory)."""
    env = dict(os.environ, PORT=str(free_port()), CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1',
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', ''))
    if nproc == 1:
        command = [sys.executable, str(REPO / 'tools' / 'train.py'), str(config)]
    else:
        command = ['bash', str(REPO / 'tools' / 'dist_train.sh'), str(config), str(nproc)]
    proc = subprocess.run([*command, *map(str, args)], cwd=config.parent, env=env, capture_output=True,
                          text=True, timeout=600)
    if proc.returncode != 0:
        raise AssertionError(
            f'training failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}')
    return proc


def logged_losses(work_dir) -> dict:
    """step -> loss from the run's scalars.json (written by rank 0 only)."""
    [scalars] = work_dir.glob('*/vis_data/scalars.json')
    records = [json.loads(line) for line in scalars.read_text().splitlines()]
    return {r['step']: r['loss'] for r in records if 'loss' in r}


def weights(path) -> dict:
    return torch.load(path, weights_only=True)['state_dict']


@pytest.fixture(scope='module')
def exact_pair(configs, tmp_path_factory):
    """Work dirs of the exact config trained by one process x batch 8 and by two processes x batch 4."""
    _, exact, _ = configs
    one, two = tmp_path_factory.mktemp('one_process'), tmp_path_factory.mktemp('two_processes')
    train(exact, 1, '--work-dir', one, '--cfg-options', 'train_dataloader.batch_size=8')
    train(exact, 2, '--work-dir', two)
    return one, two


@pytest.fixture(scope='module')
def two_processes(configs, tmp_path_factory):
    """An uninterrupted two-process run of the realistic config (BatchNorm, random flip, AdamW)."""
    config, _, folder = configs
    work_dir = tmp_path_factory.mktemp('two_processes_bn')
    proc = train(config, 2, '--work-dir', work_dir)
    shutil.copy(folder / 'val_results.pkl', work_dir / 'val_results.pkl')  # the last validation's results
    return work_dir, proc.stdout + proc.stderr


def test_two_processes_train_like_one_with_twice_the_batch(exact_pair):
    one, two = exact_pair
    # The same steps, and after 24 of them the same weights: gradients averaged over the processes are
    # the gradient of the whole batch, and the sampler splits each batch of 8 between the processes.
    single, double = logged_losses(one), logged_losses(two)
    assert sorted(single) == sorted(double) == list(range(1, 25))
    final_one, final_two = weights(one / 'epoch_4.pth'), weights(two / 'epoch_4.pth')
    for key in final_one:
        torch.testing.assert_close(final_two[key], final_one[key], rtol=1e-4, atol=1e-5, msg=key)
    # The logged curve of two processes is rank 0's half of each batch: the same curve within sampling noise.
    mean_one, mean_two = (sum(c.values()) / len(c) for c in (single, double))
    assert mean_two == pytest.approx(mean_one, rel=0.15)


def test_only_rank_zero_writes_one_set_of_checkpoints(two_processes):
    work_dir, log = two_processes
    names = {p.name for p in work_dir.iterdir() if p.suffix == '.pth'}
    assert {n for n in names if n.startswith('epoch_')} == {'epoch_1.pth', 'epoch_2.pth', 'epoch_3.pth'}
    assert len([n for n in names if n.startswith('best_')]) == 1
    assert not [p for p in work_dir.rglob('.tmp_*')], 'no half-written checkpoint left behind'
    assert len([p for p in work_dir.iterdir() if p.is_dir()]) == 1  # one log folder
    assert torch.load(work_dir / 'epoch_3.pth', weights_only=True)['meta']['epoch'] == 3
    assert 'Distributed training: True' in log
    dumped = (work_dir / 'dist_yolo.py').read_text()  # the config as the run used it
    assert "backend='gloo'" in dumped and 'device_ids=None' in dumped


def test_validation_evaluates_each_val_image_once(two_processes):
    work_dir, log = two_processes
    with open(work_dir / 'val_results.pkl', 'rb') as f:
        results = pickle.load(f)
    img_ids = sorted(int(r['img_id']) for r in results)
    assert img_ids == list(range(1, 10))  # all 9, the padding repeat dropped
    assert log.count('Epoch(val) [3][1/1]    coco/AP:') == 1  # one metric, from rank 0


def test_resume_with_two_processes_matches_uninterrupted_run(configs, two_processes, tmp_path):
    config, _, _ = configs
    full_dir, _ = two_processes
    shutil.copy(full_dir / 'epoch_1.pth', tmp_path / 'epoch_1.pth')
    proc = train(config, 2, '--work-dir', tmp_path, '--resume')
    assert 'resumed epoch: 1, iter: 6' in proc.stdout + proc.stderr
    resumed, reference = weights(tmp_path / 'epoch_3.pth'), weights(full_dir / 'epoch_3.pth')
    assert resumed.keys() == reference.keys()
    for key in reference:
        torch.testing.assert_close(resumed[key], reference[key], rtol=0, atol=0, msg=key)


def test_test_tool_with_two_processes_writes_the_detections_once(configs, two_processes, tmp_path):
    """``tools/test.py --launcher pytorch --out``: rank 0 alone gathers the results and writes the json,
    which holds detections of the val images only (the sampler's padding repeat is not written twice)."""
    config, _, _ = configs
    work_dir, _ = two_processes
    out = tmp_path / 'dets.json'
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1',
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', ''))
    proc = subprocess.run(['torchrun', '--nproc_per_node', '2', '--master_port', str(free_port()),
                           str(REPO / 'tools' / 'test.py'), str(config), str(work_dir / 'epoch_3.pth'),
                           '--launcher', 'pytorch', '--out', str(out), '--work-dir', str(tmp_path / 'wd')],
                          cwd=config.parent, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert (proc.stdout + proc.stderr).count(f'detections written to {out}') == 1
    dets = json.loads(out.read_text())
    assert {d['image_id'] for d in dets} <= set(range(1, 10))
    per_image = [sum(d['image_id'] == i for d in dets) for i in range(1, 10)]
    assert max(per_image) <= 100  # max_per_img: no image's detections written twice
    assert not list(tmp_path.glob('dets.bbox.json'))


SYNC_BN_PROBE = """
import sys

import torch
from mmengine.runner import Runner

from det.engine import close_distributed, setup_distributed, use_safe_checkpoints
from det.engine.config import load_config

cfg = load_config(sys.argv[1], dict(sync_bn='torch', train_cfg=dict(max_epochs=1)), sys.argv[2])
use_safe_checkpoints(cfg)
cfg.launcher = 'pytorch'
setup_distributed(cfg)
runner = Runner.from_cfg(cfg)
norms = {type(m).__name__ for m in runner.model.module.modules()
         if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}
print('norm layers:', sorted(norms))
runner.train()
close_distributed()
"""


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason='torch SyncBatchNorm needs two GPUs')
def test_sync_bn_converts_every_batchnorm_and_trains(configs, tmp_path):
    config, _, _ = configs
    probe = tmp_path / 'probe.py'
    probe.write_text(SYNC_BN_PROBE)
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', ''))
    proc = subprocess.run(['torchrun', '--nproc_per_node', '2', '--master_port', str(free_port()), str(probe),
                           str(config), str(tmp_path / 'wd')], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert "norm layers: ['SyncBatchNorm']" in proc.stdout
