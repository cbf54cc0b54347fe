"""FiniteLossHook's decision and message on its own; the hook in a training run, with checkpoints, is in
tests/tools/test_training_switches.py."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub

from det.engine import FiniteLossHook, finite_loss_hook


def runner(last_ckpt=None):
    hub = MessageHub(name='finite_loss_hook_test')
    hub.update_info('last_ckpt', last_ckpt)
    return SimpleNamespace(iter=6, epoch=1, message_hub=hub)


def outputs(**values):
    return {k: torch.tensor(v) for k, v in values.items()}


def test_finite_losses_pass():
    FiniteLossHook().after_train_iter(runner(), 0, outputs=outputs(loss=3.0, loss_cls=1.0, loss_bbox=2.0))


def test_the_non_finite_term_is_named_not_only_the_sum():
    diverged = outputs(loss=float('inf'), loss_cls=1.0, loss_bbox=float('inf'))
    with pytest.raises(FloatingPointError) as error:
        FiniteLossHook().after_train_iter(runner('w/epoch_1.pth'), 2, outputs=diverged)
    message = str(error.value)
    assert 'non-finite loss at iteration 7 (epoch 2, batch 3): loss_bbox=inf.' in message
    assert 'w/epoch_1.pth' in message


def test_without_a_checkpoint_yet_the_message_says_so():
    with pytest.raises(FloatingPointError, match='no checkpoint had been written yet'):
        FiniteLossHook().after_train_iter(runner(), 0, outputs=outputs(loss=float('nan')))


def test_every_process_stops_when_one_sees_a_non_finite_loss(monkeypatch):
    """The flag summed over the processes: here another process contributes 1."""
    monkeypatch.setattr(finite_loss_hook, 'all_reduce', lambda flag: flag.add_(1))
    with pytest.raises(FloatingPointError, match='non-finite loss in another process at iteration 7'):
        FiniteLossHook().after_train_iter(runner(), 2, outputs=outputs(loss=1.0, loss_cls=1.0))
