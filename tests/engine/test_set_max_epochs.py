"""``tools/train.py --epochs N`` (det.engine.config.set_max_epochs): the cosine schedule of a shipped
config, loaded as tools/train.py loads it, runs its whole curve over the new number of epochs: mmengine's
own scheduler against the cosine formula."""
import math
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import CosineAnnealingLR

from det.engine.config import load_config, set_max_epochs

REPO = Path(__file__).resolve().parents[2]


def _lr_per_epoch(cfg: Config) -> list:
    """The learning rate each epoch trains with under the config's cosine scheduler (mmengine's own)."""
    cosine = cfg.param_scheduler[1]
    assert cosine.type == 'CosineAnnealingLR'
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.optim_wrapper.optimizer.lr)
    scheduler = CosineAnnealingLR(optimizer, by_epoch=True, begin=cosine.begin, end=cosine.end,
                                  T_max=cosine.get('T_max'), eta_min=cosine.eta_min)
    rates = []
    for _ in range(cfg.train_cfg.max_epochs):
        rates.append(optimizer.param_groups[0]['lr'])
        optimizer.step()
        scheduler.step()
    return rates


def _cosine(base: float, floor: float, epochs: int) -> list:
    return [floor + (base - floor) * (1 + math.cos(math.pi * e / epochs)) / 2 for e in range(epochs)]


@pytest.mark.parametrize('epochs', [3, 9])
def test_the_whole_cosine_runs_over_the_new_number_of_epochs(epochs):
    cfg = load_config(str(REPO / 'configs/yolo_v1.py'))
    old = cfg.train_cfg.max_epochs
    base, floor = cfg.optim_wrapper.optimizer.lr, cfg.param_scheduler[1].eta_min
    changes = set_max_epochs(cfg, epochs)
    assert cfg.train_cfg.max_epochs == epochs
    assert changes == [f'train_cfg.max_epochs: {old} -> {epochs}',
                       f'param_scheduler.1.end: {old} -> {epochs}']
    assert cfg.param_scheduler[0].end == 100, 'the iteration-based warm-up must not move'
    assert _lr_per_epoch(cfg) == pytest.approx(_cosine(base, floor, epochs))


def test_max_epochs_alone_is_the_trap_the_shortcut_avoids():
    """Only ``train_cfg.max_epochs=3`` stops the config's 5-epoch cosine partway: the last epoch at 0.65x
    the base rate instead of 0.25x."""
    cfg = load_config(str(REPO / 'configs/yolo_v1.py'))
    base, floor = cfg.optim_wrapper.optimizer.lr, cfg.param_scheduler[1].eta_min
    full = cfg.train_cfg.max_epochs
    cfg.train_cfg.max_epochs = 3
    assert _lr_per_epoch(cfg) == pytest.approx(_cosine(base, floor, full)[:3])
    assert _lr_per_epoch(cfg)[-1] > 2 * _cosine(base, floor, 3)[-1]


def test_iteration_based_configs_are_refused_with_the_fix():
    cfg = Config(dict(train_cfg=dict(type='IterBasedTrainLoop', max_iters=100)))
    with pytest.raises(ValueError, match='max_iters'):
        set_max_epochs(cfg, 3)
    with pytest.raises(ValueError, match='>= 1'):
        set_max_epochs(Config(dict(train_cfg=dict(max_epochs=6))), 0)


def test_a_validation_at_the_end_only_stays_at_the_end():
    """The pretrained CenterNet validates after its last epoch only (val_interval = max_epochs): with
    ``--epochs 12`` it still validates once, at epoch 12, not at 9 (mmengine always validates the last)."""
    cfg = load_config(str(REPO / 'configs/centernet_efficientnetlite0_fpn_416_bccd.py'))
    old = cfg.train_cfg.max_epochs
    assert cfg.train_cfg.val_interval == old
    changes = set_max_epochs(cfg, 12)
    assert cfg.train_cfg.val_interval == 12
    assert f'train_cfg.val_interval: {old} -> 12' in changes
    yolo = load_config(str(REPO / 'configs/yolo_v1.py'))
    interval = yolo.train_cfg.val_interval
    set_max_epochs(yolo, 12)
    assert yolo.train_cfg.val_interval == interval, 'a per-epoch validation must not move'
