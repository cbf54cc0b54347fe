"""benchmarks/detr_ablation.py: each row differs from the row it is measured against in its own lever only
(so the table's differences are that lever's), and every row's model builds and trains one step."""
import copy
import importlib.util
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from det.engine.config import set_max_epochs
from det.registry import MODELS
from tests.conftest import make_sample

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location('detr_ablation', REPO / 'benchmarks' / 'detr_ablation.py')
detr_ablation = importlib.util.module_from_spec(spec)
spec.loader.exec_module(detr_ablation)

# row -> (the row it adds its lever to, the top-level config keys / model keys the lever may change)
LEVERS = {
    'pretrained': ('issue10', {'optim_wrapper'}, {'backbone', 'data_preprocessor'}),
    'rtdetr': ('pretrained', set(), {'backbone', 'neck', 'encoder'}),
    'mosaic': ('rtdetr', {'train_dataloader', 'custom_hooks'}, set()),
    'mal': ('rtdetr', set(), {'head'}),
    'deim': ('rtdetr', {'train_dataloader', 'custom_hooks'}, {'head'}),
    'stable-dino': ('rtdetr', set(), {'head'}),
    'one-to-many': ('rtdetr', set(), {'one_to_many'}),
}


# Not settings: the run's folder (named after the config) and the named backbones the RT-DETR config's
# base file defines for configs to pick from.
NOT_SETTINGS = {'filename', 'work_dir'} | set(
    Config.fromfile(str(REPO / detr_ablation.CONFIGS['pretrained_backbones'])).to_dict())


def _plain(cfg) -> dict:
    return {key: value for key, value in copy.deepcopy(cfg.to_dict()).items() if key not in NOT_SETTINGS}


def _changed(a: dict, b: dict) -> set:
    return {key for key in set(a) | set(b) if a.get(key) != b.get(key)}


@pytest.mark.parametrize('row', list(LEVERS))
def test_each_row_changes_its_own_lever_only(row):
    base_name, top_keys, model_keys = LEVERS[row]
    # Every row trains the same epochs (--epochs), whatever its config's own length.
    cfg, base = detr_ablation.row_config(row), detr_ablation.row_config(base_name)
    set_max_epochs(cfg, 2)
    set_max_epochs(base, 2)
    cfg, base = _plain(cfg), _plain(base)
    model, base_model = cfg.pop('model'), base.pop('model')
    assert _changed(cfg, base) == top_keys
    assert _changed(model, base_model) == model_keys
    # Only what the row says changes inside the changed parts too.
    if row in ('mal', 'deim'):
        assert model['head']['loss_cls'] == dict(type='MatchabilityAwareLoss')
        assert _changed(model['head'], base_model['head']) == {'loss_cls'}
    if row == 'stable-dino':
        assert model['head']['loss_cls']['type'] == 'PositionSupervisedLoss'
        assert _changed(model['head'], base_model['head']) == {'loss_cls', 'matcher'}
        assert _changed(model['head']['matcher'], base_model['head']['matcher']) == {'iou_modulation'}
    if row in ('mosaic', 'deim'):
        mixed = cfg['train_dataloader']['dataset']
        assert mixed['type'] == 'MultiImageMixDataset'
        plain = base['train_dataloader']['dataset']
        assert mixed['pipeline'][1:] == plain['pipeline'][2:]
        assert mixed['dataset'] == dict(plain, pipeline=plain['pipeline'][:2])
        hook, = [h for h in cfg['custom_hooks'] if h['type'] == 'NoMixHook']
        assert set(hook['skip_type_keys']) <= {t['type'] for t in mixed['pipeline']}
    if row == 'pretrained':
        assert model['backbone']['out_indices'] == base_model['backbone']['out_indices']
        assert cfg['optim_wrapper']['paramwise_cfg'] == dict(custom_keys=dict(backbone=dict(lr_mult=0.1)))


@pytest.mark.parametrize('row', ['issue10', 'deim', 'stable-dino'])
def test_row_model_builds_and_trains_a_step(row):
    cfg = detr_ablation.row_config(row)
    cfg.model.backbone.pop('init_cfg', None)                 # no weights needed to check the wiring
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    samples = [make_sample([[30, 40, 120, 160], [200, 210, 260, 300]], [1, 3], img_shape=(320, 320)),
               make_sample([[10, 10, 80, 90]], [0], img_shape=(320, 320))]
    data = model.data_preprocessor(dict(inputs=[torch.randint(0, 255, (3, 320, 320), dtype=torch.uint8)] * 2,
                                        data_samples=samples), training=True)
    losses = model(**data, mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
