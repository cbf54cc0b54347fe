"""``use_safe_checkpoints`` (det/engine/checkpoints.py), the checkpoint step of a training run, apart from
loading a config: the atomic local backend is added where the config chose no backend, and a storage the
config chose (its ``backend_args``, ``file_client_args`` or a remote ``out_dir``) is kept as written;
what it sets is logged. The resulting hook config is built by mmengine's ``CheckpointHook`` and
``get_file_backend``, which must accept it."""
from pathlib import Path

from mmengine.config import Config
from mmengine.fileio import get_file_backend
from mmengine.hooks import CheckpointHook

from det.engine import AtomicLocalBackend, checkpoints, use_safe_checkpoints
from det.engine.config import load_config

REPO = Path(__file__).resolve().parents[2]


def _apply(monkeypatch, **ckpt) -> tuple:
    """(checkpoint hook config after ``use_safe_checkpoints``, the messages it logged)."""
    logged = []
    monkeypatch.setattr(checkpoints, 'print_log', lambda msg, *a, **k: logged.append(msg))
    cfg = Config(dict(default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1, **ckpt))))
    assert use_safe_checkpoints(cfg) == logged
    return cfg.default_hooks.checkpoint, logged


def _backend(ckpt, out_dir='work_dirs/x'):
    return get_file_backend(ckpt.get('out_dir', out_dir), backend_args=ckpt.get('backend_args'))


def test_no_backend_chosen_gets_the_atomic_one_and_says_so(monkeypatch):
    ckpt, logged = _apply(monkeypatch)
    assert ckpt.backend_args == dict(backend='atomic_local')
    assert isinstance(_backend(ckpt), AtomicLocalBackend)
    assert any('atomic_local' in msg for msg in logged)


def test_the_plain_local_backend_becomes_atomic(monkeypatch):
    ckpt, logged = _apply(monkeypatch, backend_args=dict(backend='local'))
    assert ckpt.backend_args == dict(backend='atomic_local')
    assert any("'local' -> 'atomic_local'" in msg for msg in logged)


def test_another_backend_chosen_by_the_config_is_kept(monkeypatch):
    chosen = dict(backend='petrel', path_mapping={'work_dirs/': 's3://bucket/work_dirs/'})
    ckpt, logged = _apply(monkeypatch, backend_args=chosen)
    assert ckpt.backend_args == chosen
    assert any('petrel' in msg and 'kept' in msg for msg in logged)


def test_a_remote_out_dir_keeps_its_backend_args(monkeypatch):
    """No ``backend`` key: mmengine picks the backend from ``out_dir``'s prefix (s3 -> petrel), with the
    config's keys; adding ``backend='atomic_local'`` would write to a local folder named ``s3:``."""
    mapping = dict(path_mapping={'s3://bucket/': 'cluster:s3://bucket/'})
    ckpt, logged = _apply(monkeypatch, out_dir='s3://bucket/ckpts', backend_args=mapping)
    assert ckpt.backend_args == mapping
    assert any('s3://bucket/ckpts' in msg and 'kept' in msg for msg in logged)


def test_file_client_args_are_not_combined_with_backend_args(monkeypatch):
    """mmengine refuses ``file_client_args`` together with ``backend_args``: the config's choice stays."""
    ckpt, logged = _apply(monkeypatch, file_client_args=dict(backend='disk'))
    assert 'backend_args' not in ckpt
    CheckpointHook(**{k: v for k, v in ckpt.items() if k != 'type'})  # raises if both are set
    assert any('file_client_args' in msg for msg in logged)


def test_a_local_out_dir_without_backend_key_gets_the_atomic_backend(monkeypatch):
    ckpt, _ = _apply(monkeypatch, out_dir='/tmp/ckpts', backend_args=dict())
    assert ckpt.backend_args == dict(backend='atomic_local')
    assert isinstance(_backend(ckpt), AtomicLocalBackend)


def test_one_kept_checkpoint_becomes_two_and_the_hooks_are_added_once_each(monkeypatch):
    logged = []
    monkeypatch.setattr(checkpoints, 'print_log', lambda msg, *a, **k: logged.append(msg))
    cfg = Config(dict(default_hooks=dict(checkpoint=dict(type='CheckpointHook', max_keep_ckpts=1)),
                      custom_hooks=[dict(type='FiniteLossHook')]))
    use_safe_checkpoints(cfg)
    assert cfg.default_hooks.checkpoint.max_keep_ckpts == 2
    assert [h['type'] for h in cfg.custom_hooks] == ['FiniteLossHook', 'WeightsOnlyCheckpointHook']
    assert any('max_keep_ckpts 1 -> 2' in msg for msg in logged)
    assert any('WeightsOnlyCheckpointHook' in msg and 'FiniteLossHook' not in msg for msg in logged)


def test_loading_a_config_leaves_its_checkpoints_alone():
    """The policy is the training run's explicit step, not a side effect of reading a config."""
    path = REPO / 'configs/yolov1_mobilenetv2_fpn_416_bccd.py'
    plain = Config.fromfile(str(path))
    cfg = load_config(path)
    assert cfg.default_hooks.checkpoint == plain.default_hooks.checkpoint
    assert cfg.get('custom_hooks', []) == plain.get('custom_hooks', [])
