"""Finding the checkpoint to resume from after a crash or a kill (or to test, given a work dir), reading
checkpoints safely, and the checkpoint policy every training run applies (:func:`use_safe_checkpoints`)."""
import os
import pickle
import re
import warnings

from mmengine.logging import print_log

_CKPT_NAME = re.compile(r'^(epoch|iter)_(\d+)\.pth$')


def find_resume_checkpoint(work_dir: str):
    """The latest complete ``epoch_N.pth`` / ``iter_N.pth`` in ``work_dir``, or None.

    ``N`` counts epochs in one name and iterations in the other, so names do not compare across the two
    kinds (epoch 3 may be iteration 300, after ``iter_200.pth``). Each candidate is ranked instead by the
    global iteration mmengine's Runner records in every checkpoint (``meta['iter']``, one scale for both
    kinds), ties by modification time. Only the pickled structure is read (``mmap=True``, the tensors
    stay on disk). A file with no readable ``meta['iter']`` is left out with a warning naming it.

    Checkpoints are written atomically (``AtomicLocalBackend``), so every file with such a name is
    complete. mmengine's ``last_checkpoint`` pointer is written non-atomically and may be stale or
    empty after a kill, so it is not used.
    """
    if not os.path.isdir(work_dir):
        return None
    found = []
    for name in os.listdir(work_dir):
        if _CKPT_NAME.match(name):
            path = os.path.join(work_dir, name)
            iteration = _recorded_iteration(path)
            if iteration is None:
                warnings.warn(f'--resume: {path} records no iteration (meta["iter"]); not a resume point',
                              stacklevel=2)
            else:
                found.append((iteration, os.path.getmtime(path), path))
    return max(found)[2] if found else None


def checkpoint_to_test(path: str) -> str:
    """``path`` itself when it is a file; for a work dir, the best checkpoint (``best_*.pth``, the one the
    ``save_best`` metric kept) of the run that wrote its latest ``epoch_N`` / ``iter_N``, or else that
    latest checkpoint (a best file an earlier run left in the same dir is not taken).

    So a run whose epoch count the data chose (``min_train_iters``) is tested or drawn by its work dir.
    Raises FileNotFoundError naming the path when there is nothing to load.
    """
    if os.path.isfile(path):
        return path
    if not os.path.isdir(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    latest = find_resume_checkpoint(path)
    run = _recorded_meta(latest).get('experiment_name') if latest else None
    best = [os.path.join(path, name) for name in os.listdir(path)
            if name.startswith('best_') and name.endswith('.pth')]
    best = [p for p in best if latest is None or _recorded_meta(p).get('experiment_name') == run]
    found = max(best, key=os.path.getmtime) if best else latest
    if found is None:
        raise FileNotFoundError(f'{path} is a folder with no checkpoint in it (best_*.pth, epoch_N.pth, '
                                'iter_N.pth)')
    print_log(f'checkpoint: {found}', logger='current')
    return found


def _recorded_meta(path: str) -> dict:
    """``meta`` of the checkpoint at ``path`` (the tensors stay on disk), or {} where it cannot be read."""
    import torch

    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True, mmap=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError):
        return {}
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    return meta if isinstance(meta, dict) else {}


def _recorded_iteration(path: str):
    """``meta['iter']`` of the checkpoint at ``path``, or None where the file or the key cannot be read."""
    iteration = _recorded_meta(path).get('iter')
    return int(iteration) if isinstance(iteration, int) else None


def load_checkpoint_safely(path: str):
    """``torch.load(path, weights_only=True)`` on the CPU, with a clear error for a checkpoint that holds
    pickled Python objects (NumPy arrays, mmengine's ``HistoryBuffer`` or ``ConfigDict`` in ``meta`` /
    ``message_hub``, as plain mmengine tools write them): the safe loader refuses those, and
    ``tools/convert_checkpoint.py`` rewrites such a file once into one that loads.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file holds objects the weights-only loader does not accept.
    """
    import torch

    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as error:
        named = re.search(r'GLOBAL (\S+)', str(error))
        reason = f'first refused: {named.group(1)}' if named else str(error).strip().split('\n')[0]
        raise ValueError(
            f'checkpoint {path} holds pickled Python objects that the safe loader '
            f'(torch.load(weights_only=True)) refuses ({reason}); det never loads checkpoints '
            f'any other way. A checkpoint written by plain mmengine tools can be converted once with\n'
            f'    python tools/convert_checkpoint.py {path} CONVERTED.pth --trust-pickled-code\n'
            f'which executes the pickled code in it: only do so for a file you trust.') from error


def check_checkpoint_matches(model, path: str) -> dict:
    """Raise a clear ``ValueError`` when the checkpoint at ``path`` was saved from another model:
    parameter names or shapes that differ from ``model``'s (an ``nn.Module``, possibly wrapped).
    The file is read with torch's safe loader (``weights_only=True``, see :func:`load_checkpoint_safely`);
    returns what it read, so that a caller that loads the weights reads the file once."""
    checkpoint = load_checkpoint_safely(path)
    saved = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(saved, dict):
        raise ValueError(f'{path} holds no state dict')
    own = getattr(model, 'module', model).state_dict()
    missing = sorted(set(own) - set(saved))
    unexpected = sorted(set(saved) - set(own))
    wrong_shape = sorted(k for k in set(own) & set(saved)
                         if hasattr(saved[k], 'shape') and tuple(saved[k].shape) != tuple(own[k].shape))
    if missing or unexpected or wrong_shape:
        def head(keys):
            return ', '.join(keys[:5]) + (f' ... ({len(keys)} in all)' if len(keys) > 5 else '')
        shapes = [f'{k} {tuple(saved[k].shape)} vs {tuple(own[k].shape)}' for k in wrong_shape]
        problems = [f'{what}: {head(keys)}' for what, keys in (
            ('missing from the checkpoint', missing), ('not in this model', unexpected),
            ('shape differs', shapes)) if keys]
        raise ValueError(f'checkpoint {path} was not saved from this model ({"; ".join(problems)})')
    return checkpoint


def use_safe_checkpoints(cfg) -> list:
    """det's checkpoint policy, a step of every training run (tools/train.py calls it after loading the
    config): checkpoints are written in a form torch's weights-only loader accepts and never after a
    non-finite loss, whatever the config says. Local checkpoints are written atomically
    (``backend='atomic_local'``, the local backend with write-then-rename) unless the config chose another
    storage: another ``backend`` in ``backend_args``, ``file_client_args`` (which mmengine refuses beside
    ``backend_args``) or a remote ``out_dir`` (``s3://...``, whose backend mmengine picks from the prefix);
    those are kept as written. Changes ``cfg`` (an mmengine ``Config``) in place and logs each line it
    returns."""
    hooks = cfg.setdefault('default_hooks', {})
    ckpt = hooks.setdefault('checkpoint', dict(type='CheckpointHook', interval=1))
    backend_args = dict(ckpt.get('backend_args') or {})
    chosen = backend_args.get('backend')
    if ckpt.get('file_client_args') is not None:
        lines = ['checkpoints: the config sets file_client_args, kept as written (writes are atomic only '
                 "with backend_args=dict(backend='atomic_local'))"]
    elif chosen is None and '://' in str(ckpt.get('out_dir') or ''):
        lines = [f"checkpoints: out_dir {ckpt['out_dir']} picks its own backend, kept as written "
                 f'(backend_args {backend_args})']
    elif chosen in (None, 'local', 'atomic_local'):
        ckpt['backend_args'] = dict(backend_args, backend='atomic_local')
        was = f'{chosen!r} -> ' if chosen not in (None, 'atomic_local') else ''
        lines = [f"checkpoints: backend {was}'atomic_local' (written to a temporary file, then renamed), "
                 f"backend_args {ckpt['backend_args']}"]
    else:
        lines = [f"checkpoints: backend {chosen!r} chosen by the config kept (its writes are not det's "
                 'atomic ones)']
    # mmengine deletes the oldest checkpoint *before* writing the next one; keep at least two so a
    # kill during that write still leaves a complete one.
    if 0 < ckpt.get('max_keep_ckpts', -1) < 2:
        lines.append(f"checkpoints: max_keep_ckpts {ckpt['max_keep_ckpts']} -> 2 (a kill while the next "
                     'one is written still leaves a complete one)')
        ckpt['max_keep_ckpts'] = 2
    # Safe-loadable files; a non-finite loss stops the run before those weights can be saved.
    custom = list(cfg.get('custom_hooks', []))
    added = [hook for hook in ('WeightsOnlyCheckpointHook', 'FiniteLossHook')
             if not any(h.get('type') == hook for h in custom)]
    custom += [dict(type=hook) for hook in added]
    cfg.custom_hooks = custom
    if added:
        lines.append(f"checkpoints: custom_hooks + {', '.join(added)} (files torch.load(weights_only=True) "
                     'reads; no weights written after a non-finite loss)')
    for line in lines:
        print_log(line, logger='current')
    return lines
