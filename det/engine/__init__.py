"""Training-engine pieces det adds to mmengine's runner: crash-safe checkpoint files and checkpoints
that load under torch's safe (weights-only) unpickler."""
from .atomic_backend import AtomicLocalBackend, write_atomic
from .autocast_optim_wrapper import AutocastOptimWrapper
from .checkpoints import check_checkpoint_matches, find_resume_checkpoint
from .show_predictions_hook import ShowPredictionsHook
from .weights_only_checkpoint_hook import WeightsOnlyCheckpointHook

__all__ = ['AtomicLocalBackend', 'AutocastOptimWrapper', 'ShowPredictionsHook', 'WeightsOnlyCheckpointHook',
           'check_checkpoint_matches', 'find_resume_checkpoint', 'write_atomic']
