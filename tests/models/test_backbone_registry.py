"""Registry-driven smoke test: every backbone registered in MODELS is built from a minimal config, run
forward and backward on a tiny image, and checked against its own ``out_channels`` / ``strides``."""
import pytest
import torch

import det.models  # noqa: F401  (registers every module)
from det.models.backbones.base import BaseBackbone
from det.registry import MODELS

# Smallest sensible kwargs per registered backbone; a new backbone needs an entry here.
MINIMAL_CONFIGS = {
    'EfficientNet': dict(arch='b0'),
    'MobileNetV1': dict(widen_factor=0.25),
    'MobileNetV2': dict(widen_factor=0.5),
    'MobileNetV3': dict(arch='small'),
    'SNet': dict(arch='snet49'),
    'TorchvisionBackbone': dict(name='resnet18'),
}


def registered_backbones():
    return sorted(name for name, cls in MODELS.module_dict.items()
                  if isinstance(cls, type) and issubclass(cls, BaseBackbone))


def test_torchvision_backbone_is_covered():
    assert 'TorchvisionBackbone' in registered_backbones()


@pytest.mark.parametrize('name', registered_backbones())
def test_backbone_forward_backward(name):
    assert name in MINIMAL_CONFIGS, (
        f'backbone {name!r} is registered in MODELS but has no entry in MINIMAL_CONFIGS of {__file__}; '
        'add the smallest kwargs that build it')
    model = MODELS.build(dict(type=name, **MINIMAL_CONFIGS[name]))
    model.train()
    x = torch.randn(2, 3, 64, 64)
    outs = model(x)
    assert isinstance(outs, tuple)
    assert len(outs) == len(model.out_channels) == len(model.strides) > 0
    assert model.strides == sorted(model.strides), 'outputs must come by increasing stride'
    for out, channels, stride in zip(outs, model.out_channels, model.strides):
        assert out.shape == (2, channels, 64 // stride, 64 // stride), (out.shape, channels, stride)
    sum(o.float().mean() for o in outs).backward()
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not unused, f'parameters without gradient (break DDP without find_unused_parameters): {unused}'
