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
    'EfficientNetLite': dict(arch='lite0'),
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


# Every registered family, built with all its stages as outputs.
STRIDE_RULE_CONFIGS = {
    'MobileNetV1': dict(type='MobileNetV1', widen_factor=0.25),
    'MobileNetV2': dict(type='MobileNetV2', widen_factor=0.5),
    'MobileNetV3-large': dict(type='MobileNetV3', arch='large'),
    'MobileNetV3-small': dict(type='MobileNetV3', arch='small'),
    'EfficientNet-b0': dict(type='EfficientNet', arch='b0'),
    'EfficientNetLite-lite0': dict(type='EfficientNetLite', arch='lite0'),
    'SNet49': dict(type='SNet', arch='snet49'),
    'SNet146': dict(type='SNet', arch='snet146'),
    'SNet535': dict(type='SNet', arch='snet535'),
    'TorchvisionBackbone-resnet18': dict(type='TorchvisionBackbone', name='resnet18'),
}


@pytest.mark.parametrize('name', sorted(STRIDE_RULE_CONFIGS))
def test_out_index_i_is_stride_2_to_the_i_plus_1(name):
    """The rule of BaseBackbone's docstring: ``out_indices`` entry i is the stride-``2 ** (i + 1)`` map,
    for every family, so configs can swap backbones without re-deriving indices."""
    assert set(registered_backbones()) <= {cfg['type'] for cfg in STRIDE_RULE_CONFIGS.values()}
    out_indices = (0, 1, 2, 3, 4)
    model = MODELS.build(dict(STRIDE_RULE_CONFIGS[name], out_indices=out_indices)).eval()
    assert model.strides == [2 ** (i + 1) for i in out_indices]
    with torch.no_grad():
        outs = model(torch.zeros(1, 3, 64, 64))
    assert [o.shape[-1] for o in outs] == [64 // 2 ** (i + 1) for i in out_indices]
