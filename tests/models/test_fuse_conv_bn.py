"""Conv-BN fusion (det.models.utils.fuse_conv_bn) against the unfused model: every shipped single-stage
detector gives the same raw outputs within 1e-4 with no BatchNorm left, and a ConvTranspose2d + BN pair
(CenterNet's deconv blocks) fuses as well."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from torch import nn

import det.models  # noqa: F401  (registers the modules)
from det.engine.config import set_num_classes
from det.models.utils import fuse_conv_bn
from det.registry import MODELS

REPO = Path(__file__).resolve().parents[2]
SINGLE_STAGE = sorted(p for p in {c.resolve() for c in (REPO / 'configs').glob('*.py')}
                      if Config.fromfile(str(p)).model.type == 'SingleStageDetector')


def _randomise_batchnorms(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial running statistics and affine parameters, as after training (fresh ones would make the
    BN nearly the identity and the test weak)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.5)
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=gen) * 1.5)
                m.weight.copy_(0.5 + torch.rand(m.num_features, generator=gen))
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.2)


@pytest.mark.parametrize('config', SINGLE_STAGE, ids=lambda p: p.name)
def test_fused_detector_gives_the_same_raw_outputs(config):
    cfg = Config.fromfile(str(config))
    set_num_classes(cfg, 3)  # configs for one's own data take the class count from it
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('det'):
        model = MODELS.build(cfg.model)
    _randomise_batchnorms(model)
    model.eval()
    inputs = torch.randn(2, 3, 128, 160)
    with torch.no_grad():
        expected = model(inputs, mode='tensor')
        num_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
        fused = fuse_conv_bn(model)
        outputs = fused(inputs, mode='tensor')
    assert fused is model and num_bn > 0
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules()), 'a BatchNorm was not fused'
    for out, ref in zip(outputs, expected):
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('transpose', [False, True])
def test_conv_bn_pairs_in_a_sequential(transpose):
    """Conv (or 4x4 stride-2 transposed conv) + BN + ReLU, and a BN that follows no conv (left as is)."""
    conv = (nn.ConvTranspose2d(6, 5, 4, stride=2, padding=1, bias=False) if transpose
            else nn.Conv2d(6, 5, 3, padding=1, groups=1))
    model = nn.Sequential(nn.BatchNorm2d(6), conv, nn.BatchNorm2d(5), nn.ReLU())
    _randomise_batchnorms(model, seed=1)
    model.eval()
    x = torch.randn(2, 6, 9, 11)
    with torch.no_grad():
        expected = model(x)
        fuse_conv_bn(model)
        out = model(x)
    assert isinstance(model[0], nn.BatchNorm2d)  # nothing before it to fold into
    assert isinstance(model[2], nn.Identity) and model[1].bias is not None
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_training_mode_is_refused():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    with pytest.raises(RuntimeError, match='eval'):
        fuse_conv_bn(model)
