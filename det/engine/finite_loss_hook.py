"""Stops training at the first NaN or infinite loss, before any checkpoint can hold the broken weights."""
import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook

from det.registry import HOOKS


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Raise ``FloatingPointError`` naming the iteration and the loss terms as soon as a loss is not finite.

    By ``after_train_iter`` the optimizer has already stepped with that loss's gradients, so the weights in
    memory are lost; the error comes before ``CheckpointHook`` (lowest priority) or ``EMAHook`` see them,
    so the newest checkpoint on disk is the last good one, and ``--resume`` starts from it. Under several
    processes every process stops at the same iteration (one flag is summed across them), so none waits
    in a collective for a process that has stopped.
    """

    priority = 'VERY_HIGH'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        losses = {k: torch.as_tensor(v).detach() for k, v in (outputs or {}).items() if 'loss' in k}
        bad = {k: v.item() for k, v in losses.items() if not torch.isfinite(v).all()}
        flag = torch.tensor([float(bool(bad))])
        all_reduce(flag)  # no-op in a single process
        if not flag.item():
            return
        where = f'iteration {runner.iter + 1} (epoch {runner.epoch + 1}, batch {batch_idx + 1})'
        if bad:
            terms = {k: v for k, v in bad.items() if k != 'loss'} or bad  # name the term, not only the sum
            what = ', '.join(f'{k}={v}' for k, v in terms.items())
            problem = f'non-finite loss at {where}: {what}'
        else:
            problem = f'non-finite loss in another process at {where}'
        last = runner.message_hub.get_info('last_ckpt')
        kept = (f'the newest checkpoint, {last}, holds the last good weights (resume with --resume)' if last
                else 'no checkpoint had been written yet')
        raise FloatingPointError(f'{problem}. Training stopped without saving these weights; {kept}. '
                                 f'Lower the learning rate, enable gradient clipping '
                                 f'(optim_wrapper.clip_grad) or check the data of this batch.')
