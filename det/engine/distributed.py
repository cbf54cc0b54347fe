"""Multi-process runs on machines with or without CUDA, through torch.distributed and mmengine's
launcher flow.

mmengine 0.10.7's ``init_dist`` calls ``torch.cuda.set_device`` before creating the process group, so
``--launcher pytorch`` fails on a CPU-only machine. ``Runner.setup_env`` only calls ``init_dist`` when
``torch.distributed`` is not initialised yet; without CUDA det therefore creates the gloo group itself,
from torchrun's environment, and the Runner uses it as it is.
"""
import datetime

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.registry import MODEL_WRAPPERS
from torch.nn.parallel import DistributedDataParallel


def setup_distributed(cfg: Config) -> None:
    """Prepare ``cfg`` (``cfg.launcher`` already set) for this machine; call before building the Runner.

    With CUDA, or with ``launcher='none'``, nothing changes: mmengine initialises
    ``env_cfg.dist_cfg.backend`` (nccl by default) and puts each process on GPU ``LOCAL_RANK``.
    Without CUDA (torchrun, ``launcher='pytorch'``):

    - the gloo process group is initialised here and ``env_cfg.dist_cfg.backend`` says ``'gloo'``;
    - DDP wraps the model with ``device_ids=None``: mmengine passes ``[LOCAL_RANK]``, which torch
      refuses for a CPU module (other settings as mmengine's default wrapper: ``broadcast_buffers=False``,
      ``find_unused_parameters`` from the config);
    - ``sync_bn`` is refused with an explanation: torch's ``SyncBatchNorm`` only runs on GPUs.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise ValueError(f'--launcher {launcher} needs CUDA; on a machine without GPUs start the processes '
                         f'with torchrun and --launcher pytorch (tools/dist_train.sh does)')
    if cfg.get('sync_bn'):
        raise ValueError(f"sync_bn={cfg.sync_bn!r} needs CUDA: torch's SyncBatchNorm (and DDP around it) "
                         f'refuses CPU tensors. Remove sync_bn to train on CPUs (each process then '
                         f'normalises with its own batch statistics)')
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = dict(env_cfg.get('dist_cfg') or {}, backend='gloo')
    env_cfg['dist_cfg'] = dist_cfg
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper_type = wrapper['type']
    if isinstance(wrapper_type, str):
        wrapper_type = MODEL_WRAPPERS.get(wrapper_type)
    if issubclass(wrapper_type, DistributedDataParallel):
        wrapper.update(device_ids=None)
        wrapper.setdefault('broadcast_buffers', False)
        wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper
    if not dist.is_initialized():
        kwargs = {k: v for k, v in dist_cfg.items() if k != 'backend'}
        if kwargs.get('timeout') is not None:  # seconds in the config, as mmengine's init_dist takes it
            kwargs['timeout'] = datetime.timedelta(seconds=kwargs['timeout'])
        dist.init_process_group(backend='gloo', **kwargs)


def close_distributed() -> None:
    """After a run that ended normally: wait for every process, then close the process group.

    Only for the normal end: after an error the process should exit at once, so that torchrun stops the
    others instead of this one waiting for them in a barrier.

    With gloo the wait is ``monitored_barrier`` (a send/recv with rank 0, completed in this thread), not
    ``barrier``. ``dist.barrier()`` runs on one of gloo's worker threads, which drops its reference to
    the finished work (and the work's tensors, which hold Python objects) only after waking this thread.
    When that thread is descheduled for a moment, this process can reach interpreter finalisation first;
    the worker then blocks on the GIL, Python ends it with ``pthread_exit`` inside the work's ``noexcept``
    destructor, and the process aborts with ``terminate called without an active exception`` (rank 1 of
    about one two-process CPU run in ten, after the run finished; torchrun then reports it as failed). The
    worker threads do not stop at ``destroy_process_group`` (the model's DDP wrapper still holds the
    group), so the last work they run must not be one that ends the process.
    """
    if not dist.is_initialized():
        return
    if dist.get_backend() == 'gloo':
        dist.monitored_barrier()
    else:
        dist.barrier()
    dist.destroy_process_group()
