"""The training switches a config turns on: weight EMA, gradient accumulation, gradient clipping, early
stopping and the non-finite loss guard. Each run trains the tiny experiment in this process, through the
same config handling as tools/train.py, so that test hooks can watch the weights and gradients."""
import shutil

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

import det.engine  # noqa: F401  (registers det's hooks)
from det.engine import use_safe_checkpoints
from det.engine.config import load_config

# BatchNorm statistics frozen and no BatchNorm in the head: nothing depends on how a batch is split.
NO_BATCH_STATS = {'model.backbone.norm_eval': True, 'model.head.num_convs': 0}
ONE_EPOCH = {'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 2}  # 24 images, no validation


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread for these tiny models: as fast, and a second OpenMP thread slows each step many
    times over when the other core is busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def train(config, work_dir, hooks=(), **options) -> Runner:
    """Train like ``tools/train.py CONFIG --work-dir WORK_DIR --cfg-options OPTIONS``, with extra hook
    objects registered."""
    cfg = load_config(str(config), options, str(work_dir))
    use_safe_checkpoints(cfg)
    cfg.experiment_name = work_dir.name  # mmengine keys its logger and message hub by this name
    runner = Runner.from_cfg(cfg)
    for hook in hooks:
        runner.register_hook(hook)
    runner.train()
    return runner


def assert_same_tensors(actual: dict, expected: dict):
    assert actual.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=0, msg=key)


class ValidatedWeights(Hook):
    """The model's state dict at the start of each validation, after EMAHook (NORMAL) swapped its weights
    in."""

    priority = 'LOW'

    def __init__(self):
        self.weights = []

    def before_val_epoch(self, runner) -> None:
        self.weights.append({k: v.clone() for k, v in runner.model.state_dict().items()})


class StepGradients(Hook):
    """The gradients each optimizer step applies (after clipping), by parameter name."""

    def __init__(self):
        self.grads = []

    def before_train(self, runner) -> None:
        named = dict(runner.model.named_parameters())
        runner.optim_wrapper.optimizer.register_step_pre_hook(lambda *_: self.grads.append(
            {n: p.grad.clone() for n, p in named.items() if p.grad is not None}))


class NaNLossAt(Hook):
    """Multiplies one loss term by NaN at iteration ``at`` (1-based), as a diverging run would."""

    def __init__(self, at: int):
        self.at, self.term = at, None

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if runner.iter + 1 != self.at:
            return
        model, loss = runner.model, runner.model.loss

        def poisoned_loss(*args, **kwargs):
            losses = loss(*args, **kwargs)
            self.term = sorted(k for k in losses if k.startswith('loss_'))[0]
            losses[self.term] = losses[self.term] * float('nan')
            del model.loss  # back to the class's method for the next iterations
            return losses

        model.loss = poisoned_loss


def test_ema_weights_are_validated_saved_and_resumed(tiny_config, tmp_path):
    ema = {'custom_hooks': [dict(type='EMAHook', momentum=0.5)], 'train_cfg.max_epochs': 2}
    validated = ValidatedWeights()
    train(tiny_config, tmp_path / 'full', hooks=[validated], **ema)
    checkpoint = torch.load(tmp_path / 'full' / 'epoch_2.pth', weights_only=True)
    # The checkpoint's state_dict holds the EMA weights, which are the ones validated; EMAHook keeps the
    # trained weights under ema_state_dict ('module.' + name) to resume from.
    assert_same_tensors(checkpoint['state_dict'], validated.weights[-1])
    trained = {k[len('module.'):]: v for k, v in checkpoint['ema_state_dict'].items() if k != 'steps'}
    assert not all(torch.equal(trained[k], v) for k, v in checkpoint['state_dict'].items())

    resumed_dir = tmp_path / 'resumed'
    resumed_dir.mkdir()
    shutil.copy(tmp_path / 'full' / 'epoch_1.pth', resumed_dir / 'epoch_1.pth')
    train(tiny_config, resumed_dir, resume=True, load_from=str(resumed_dir / 'epoch_1.pth'), **ema)
    resumed = torch.load(resumed_dir / 'epoch_2.pth', weights_only=True)
    assert_same_tensors(resumed['state_dict'], checkpoint['state_dict'])
    assert_same_tensors(resumed['ema_state_dict'], checkpoint['ema_state_dict'])


def test_accumulating_two_batches_of_4_steps_with_the_gradient_of_8(tiny_config, tmp_path):
    steps = {}
    accumulate = {'train_dataloader.batch_size': 4, 'optim_wrapper.accumulative_counts': 2}
    for name, options in (('batch_8', {'train_dataloader.batch_size': 8}), ('2x4', accumulate)):
        recorder = StepGradients()
        train(tiny_config, tmp_path / name, hooks=[recorder], **NO_BATCH_STATS, **ONE_EPOCH, **options)
        steps[name] = recorder.grads
    assert len(steps['2x4']) == len(steps['batch_8']) == 3  # 24 images: 3 steps either way
    first, reference = steps['2x4'][0], steps['batch_8'][0]
    assert first.keys() == reference.keys()
    for key in reference:
        torch.testing.assert_close(first[key], reference[key], rtol=1e-5, atol=1e-5, msg=key)


def test_clip_grad_limits_the_gradient_norm_of_each_step(tiny_config, tmp_path):
    recorder = StepGradients()
    runner = train(tiny_config, tmp_path, hooks=[recorder], **ONE_EPOCH,
                   **{'optim_wrapper.clip_grad': dict(max_norm=0.5)})
    before_clipping = runner.message_hub.get_scalar('train/grad_norm').data[0]  # logged by mmengine
    assert len(before_clipping) == len(recorder.grads) == 3
    assert min(before_clipping) > 0.5  # so every step was clipped
    for grads in recorder.grads:
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads.values()]))
        assert norm.item() == pytest.approx(0.5, rel=1e-4)


def test_early_stopping_ends_the_run_when_the_metric_stops_improving(tiny_config, tmp_path):
    # min_delta=1: no AP50 (at most 1) improves on the first epoch's by that much, so every later epoch
    # counts as no improvement and patience=1 stops the run after epoch 2 of 5.
    stop = dict(type='EarlyStoppingHook', monitor='coco/AP50', rule='greater', min_delta=1.0, patience=1)
    runner = train(tiny_config, tmp_path, custom_hooks=[stop], **{'train_cfg.max_epochs': 5})
    assert runner.epoch == 2
    assert {p.name for p in tmp_path.glob('epoch_*.pth')} == {'epoch_1.pth', 'epoch_2.pth'}


def test_finite_loss_guard_stops_at_the_first_nan_and_keeps_the_last_good_checkpoint(tiny_config, tmp_path):
    poison = NaNLossAt(5)  # 3 iterations per epoch: epoch 2, batch 2
    with pytest.raises(FloatingPointError) as error:
        train(tiny_config, tmp_path, hooks=[poison], custom_hooks=[dict(type='FiniteLossHook')])
    message = str(error.value)
    assert f'non-finite loss at iteration 5 (epoch 2, batch 2): {poison.term}=nan' in message
    assert str(tmp_path / 'epoch_1.pth') in message
    assert {p.name for p in tmp_path.glob('*.pth')} == {'epoch_1.pth', 'best_coco_AP50_epoch_1.pth'}
    saved = torch.load(tmp_path / 'epoch_1.pth', weights_only=True)['state_dict']
    assert all(torch.isfinite(v).all() for v in saved.values() if v.is_floating_point())
