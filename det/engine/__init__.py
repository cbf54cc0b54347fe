"""Training-engine pieces det adds to mmengine's runner: crash-safe checkpoint files, checkpoints that
load under torch's safe (weights-only) unpickler, a stop on non-finite losses, Conv-BN folding for
testing, an allocator setting that keeps freed memory for the next step, the loader and allocator
settings a machine gets by default, and multi-process runs on machines with or without CUDA."""
from .atomic_backend import AtomicLocalBackend, write_atomic
from .autocast_optim_wrapper import AutocastOptimWrapper
from .checkpoints import (
    check_checkpoint_matches,
    checkpoint_to_test,
    find_resume_checkpoint,
    use_safe_checkpoints,
)
from .distributed import close_distributed, setup_distributed
from .finite_loss_hook import FiniteLossHook
from .fuse_conv_bn_hook import FuseConvBNHook
from .machine import apply_machine_defaults
from .malloc import keep_freed_memory
from .no_mix_hook import NoMixHook
from .show_predictions_hook import ShowPredictionsHook
from .weights_only_checkpoint_hook import WeightsOnlyCheckpointHook

__all__ = ['AtomicLocalBackend', 'AutocastOptimWrapper', 'FiniteLossHook', 'FuseConvBNHook', 'NoMixHook',
           'ShowPredictionsHook', 'WeightsOnlyCheckpointHook', 'apply_machine_defaults',
           'check_checkpoint_matches', 'checkpoint_to_test', 'close_distributed', 'find_resume_checkpoint',
           'keep_freed_memory', 'setup_distributed', 'use_safe_checkpoints', 'write_atomic']
