"""Settings that depend on the machine a run is on, decided in one place and logged: how many loader
processes each dataloader gets when the config leaves ``num_workers`` out, and glibc's freed-memory
setting (:func:`det.engine.malloc.keep_freed_memory`), which helps where the model computes on the CPU.

The shipped configs were tuned on a 2-core CPU, where a loader process competes with the two compute
threads (a YOLO v1 step took 394 instead of 356 ms with one, ``benchmarks/profile_train_step.py``). They
leave ``num_workers`` out, so that a GPU machine or a many-core CPU gets loaders without editing them;
a config or ``--cfg-options`` that sets ``num_workers`` is kept.
"""
import os

from mmengine.device import get_device
from mmengine.logging import print_log

from .malloc import keep_freed_memory

SPLITS = ('train', 'val', 'test')
MAX_WORKERS = 4


def usable_cpus() -> int:
    """CPU cores this process may run on (its affinity mask, which container limits set), shared among
    the processes of a multi-process run on this node (``LOCAL_WORLD_SIZE``, set by torchrun)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1
    return max(1, cores // max(1, int(os.environ.get('LOCAL_WORLD_SIZE', 1))))


def default_num_workers(device_type: str, cpus: int) -> int:
    """Loader processes per dataloader for a model computing on ``device_type`` with ``cpus`` cores.

    - Accelerator (``'cuda'``, ...): the CPU only loads, so loaders on all cores but the main process's,
      at most ``MAX_WORKERS``: ``min(4, cpus - 1)``.
    - CPU: the step's compute threads already use every core, so no loader process below 8 cores (the
      2-core measurement above), then one per 4 cores beyond the first 4, at most ``MAX_WORKERS``.
    """
    if device_type != 'cpu':
        return max(0, min(MAX_WORKERS, cpus - 1))
    return max(0, min(MAX_WORKERS, (cpus - 4) // 4))


def apply_machine_defaults(cfg, device_type: str = None, cpus: int = None) -> list:
    """Fill in, for the device the Runner will put the model on (``device_type``, default mmengine's
    ``get_device()``) and ``cpus`` cores (default :func:`usable_cpus`):

    - ``num_workers`` of every ``{train,val,test}_dataloader`` that does not set it, from
      :func:`default_num_workers` (with ``persistent_workers=True`` when > 0 and not set, so loaders are
      not restarted every epoch);
    - on the CPU, glibc's freed-memory setting (each step reuses the last step's activation buffers);
      on an accelerator the activations are not in host memory and the process keeps its default.

    Returns the decisions, one line each, also logged. Call before building the Runner."""
    device_type = device_type or get_device()
    cpus = cpus or usable_cpus()
    workers = default_num_workers(device_type, cpus)
    lines = []
    for split in SPLITS:
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            continue
        if 'num_workers' in loader:
            lines.append(f'{split}_dataloader.num_workers={loader["num_workers"]} (set by the config)')
            continue
        loader['num_workers'] = workers
        if workers > 0:
            loader.setdefault('persistent_workers', True)
        lines.append(f'{split}_dataloader.num_workers={workers} (model on {device_type}, {cpus} cores)')
    if device_type == 'cpu':
        kept = keep_freed_memory()
        lines.append('glibc keeps freed memory for the next step' if kept else
                     'freed-memory setting not applied (the C library is not glibc)')
    else:
        lines.append(f'glibc freed-memory setting not applied (model on {device_type})')
    for line in lines:
        print_log(f'machine defaults: {line}', logger='current')
    return lines
