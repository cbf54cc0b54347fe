"""Keeps mmengine checkpoints loadable with torch's safe loading (``torch.load(weights_only=True)``,
the default since torch 2.6) without allow-listing anything.

mmengine 0.10.7 stores its message hub's ``HistoryBuffer`` objects (whose pickled state includes
bound functions, reached through ``builtins.getattr``) and NumPy arrays/scalars in every checkpoint,
which the safe unpickler rejects. Rather than allow-listing ``getattr`` and NumPy internals, this hook
writes those values as tensors and plain numbers, and rebuilds the buffers when a checkpoint is loaded.
It also stores the Python, NumPy and torch RNG states so that ``--resume`` continues the same random
stream as an uninterrupted run; loading weights to fine-tune or test (``load_from``) leaves the run's own
seeded random state alone.
"""
import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer

from det.registry import HOOKS

_BUFFER_TAG = '__history_buffer__'


def to_safe(value):
    """Recursively replace NumPy values and ``HistoryBuffer`` objects by tensors / Python numbers."""
    if isinstance(value, HistoryBuffer):
        logs, counts = value.data
        return {_BUFFER_TAG: True, 'max_length': value.max_length,
                'logs': torch.from_numpy(np.asarray(logs, dtype=np.float64).copy()),
                'counts': torch.from_numpy(np.asarray(counts, dtype=np.float64).copy())}
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: to_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_safe(v) for v in value)
    return value


def from_safe(value):
    """Inverse of :func:`to_safe` for the message hub's buffers."""
    if isinstance(value, dict):
        if value.get(_BUFFER_TAG):
            return HistoryBuffer(value['logs'].numpy(), value['counts'].numpy(), value['max_length'])
        return {k: from_safe(v) for k, v in value.items()}
    return value


@HOOKS.register_module()
class WeightsOnlyCheckpointHook(Hook):
    """Makes saved checkpoints safe-loadable and restores what :func:`to_safe` changed on load."""

    priority = 'VERY_LOW'  # after every other hook has added its state to the checkpoint

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        version, internal, gauss = random.getstate()
        checkpoint['rng_state'] = {
            'python': (version, list(internal), gauss),
            'numpy': to_safe(np.random.get_state(legacy=True)),
            'torch': torch.get_rng_state(),
        }
        for key in ('meta', 'message_hub'):
            if key in checkpoint:
                checkpoint[key] = to_safe(checkpoint[key])

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if 'message_hub' in checkpoint:
            checkpoint['message_hub'] = from_safe(checkpoint['message_hub'])
        state = checkpoint.pop('rng_state', None)
        if state is not None and getattr(runner, '_resume', False):
            version, internal, gauss = state['python']
            random.setstate((version, tuple(internal), gauss))
            name, keys, pos, has_gauss, cached = state['numpy']
            np.random.set_state((name, keys.numpy(), pos, has_gauss, cached))
            torch.set_rng_state(state['torch'])
