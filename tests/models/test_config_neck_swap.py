"""Necks are interchangeable by editing only the config: the shipped YOLO v1 and CenterNet configs
build and train (one loss + backward) with each neck in place of their FPN. SPP/SPPF work on the
coarsest level, so there the head also reads that level (``in_index=-1``): a config edit as well."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from det.registry import MODELS
from tests.conftest import make_sample

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
NECKS = {  # name: (neck, head overrides)
    'fpn_bilinear_pafpn': (dict(type='FPN', out_channels=32, upsample='bilinear', bottom_up=True), {}),
    'fpn_pixel_shuffle': (dict(type='FPN', out_channels=32, upsample='pixel_shuffle'), {}),
    'spp': (dict(type='SPP'), dict(in_index=-1)),
    'sppf': (dict(type='SPPF'), dict(in_index=-1)),
    'cem': (dict(type='CEM'), {}),
}


def _sample(size):
    return make_sample([[8.0, 8.0, 40.0, 30.0]], [1], (size, size))


@pytest.mark.parametrize('neck', sorted(NECKS))
@pytest.mark.parametrize('config', ['yolo_v1.py', 'centernet_mobilenetv2_fpn_320_shapes.py'])
def test_shipped_config_trains_with_any_neck(config, neck):
    init_default_scope('det')
    cfg = Config.fromfile(CONFIGS / config)
    cfg.model.neck, head_overrides = NECKS[neck]
    cfg.model.head.update(head_overrides)
    model = MODELS.build(cfg.model)
    data = model.data_preprocessor(
        dict(inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)] * 2,
             data_samples=[_sample(64), _sample(64)]), training=True)
    losses = model(**data, mode='loss')
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.neck.parameters())
    model.eval()
    with torch.no_grad():
        preds = model(**data, mode='predict')
    assert preds[0].pred_instances.bboxes.shape[1] == 4
