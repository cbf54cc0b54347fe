"""Epoch-based schedules without a written end run to ``train_cfg.max_epochs``
(det.engine.schedules.end_schedules_with_training, applied by load_config): mmengine's own schedulers
against the cosine formula."""
from pathlib import Path

import pytest
from mmengine.config import Config

from det.engine.config import load_config
from det.engine.schedules import end_schedules_with_training
from tests.engine.test_set_max_epochs import _cosine, _lr_per_epoch

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted({p.resolve() for p in (REPO / 'configs').glob('*.py')})


def _schedule(**train_cfg) -> Config:
    return Config(dict(
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3)), train_cfg=train_cfg,
        param_scheduler=[dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
                         dict(type='CosineAnnealingLR', by_epoch=True, begin=0, eta_min=1e-5)]))


def test_a_cosine_without_end_decays_over_max_epochs():
    cfg = _schedule(type='EpochBasedTrainLoop', max_epochs=7)
    end_schedules_with_training(cfg)
    assert cfg.param_scheduler[1].end == 7
    assert cfg.param_scheduler[0].end == 100, 'an iteration-based warm-up keeps its end'
    assert _lr_per_epoch(cfg) == pytest.approx(_cosine(1e-3, 1e-5, 7))


def test_written_ends_and_iteration_loops_stay():
    cfg = _schedule(max_epochs=7)
    cfg.param_scheduler[1].end = 4
    end_schedules_with_training(cfg)
    assert cfg.param_scheduler[1].end == 4
    cfg = _schedule(type='IterBasedTrainLoop', max_iters=100)
    end_schedules_with_training(cfg)
    assert 'end' not in cfg.param_scheduler[1]


def test_max_epochs_from_the_command_line_moves_the_shipped_schedule():
    """``--cfg-options train_cfg.max_epochs=3`` on the main job: its cosine decays over the 3 epochs (a
    written end would stop it at 0.65x the base rate)."""
    cfg = load_config(str(REPO / 'configs/yolo_v1.py'), {'train_cfg.max_epochs': 3})
    base, floor = cfg.optim_wrapper.optimizer.lr, cfg.param_scheduler[1].eta_min
    assert cfg.param_scheduler[1].end == 3
    assert _lr_per_epoch(cfg) == pytest.approx(_cosine(base, floor, 3))


@pytest.mark.parametrize('config', CONFIGS, ids=lambda p: p.name)
def test_every_shipped_epoch_schedule_ends_with_its_training(config, tmp_path):
    """Configs that train for another number of epochs than their schedule base (e.g. the 3-epoch
    ThunderNet ones) set max_epochs alone."""
    cfg = load_config(str(config), work_dir=str(tmp_path))
    by_epoch = [s for s in cfg.param_scheduler if s.get('by_epoch', True)]
    assert by_epoch and all(s.end == cfg.train_cfg.max_epochs for s in by_epoch), cfg.param_scheduler
