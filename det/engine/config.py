"""Config handling shared by the training and testing tools."""
import os.path as osp

from mmengine.config import Config


def load_config(path: str, cfg_options: dict = None, work_dir: str = None) -> Config:
    """Read ``path``, apply ``--cfg-options`` overrides and settle the work dir
    (``--work-dir`` > the config's ``work_dir`` > ``work_dirs/<config name>``)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'config not found: {path}')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.setdefault('default_scope', 'det')
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(path))[0])
    use_safe_checkpoints(cfg)
    return cfg


def use_safe_checkpoints(cfg: Config) -> None:
    """Every run writes checkpoints atomically and in a form torch's weights-only loader accepts, and
    never writes weights after a non-finite loss, whatever the config says: these are properties of
    det's checkpoints, not options."""
    hooks = cfg.setdefault('default_hooks', {})
    ckpt = hooks.setdefault('checkpoint', dict(type='CheckpointHook', interval=1))
    ckpt['backend_args'] = dict(backend='atomic_local')
    # mmengine deletes the oldest checkpoint *before* writing the next one; keep at least two so a
    # kill during that write still leaves a complete one.
    if 0 < ckpt.get('max_keep_ckpts', -1) < 2:
        ckpt['max_keep_ckpts'] = 2
    # A non-finite loss stops the run before those weights can be saved.
    custom = list(cfg.get('custom_hooks', []))
    for hook in ('WeightsOnlyCheckpointHook', 'FiniteLossHook'):
        if not any(h.get('type') == hook for h in custom):
            custom.append(dict(type=hook))
    cfg.custom_hooks = custom
