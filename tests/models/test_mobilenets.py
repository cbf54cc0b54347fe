"""MobileNet V1/V2/V3 and TorchvisionBackbone against independent references: the MobileNetV1 paper's
parameter / multiply-add counts, torchvision's MobileNetV2/V3 (parameter counts and, after state-dict
conversion, identical features), and torchvision's ResNet structure for frozen stages."""
import copy

import pytest
import torch
import torchvision
from mmengine.analysis import FlopAnalyzer
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

import det.models.backbones.base as base_module
import det.models.backbones.torchvision_backbone as tv_backbone_module
from det.models.backbones import MobileNetV1, MobileNetV2, MobileNetV3, TorchvisionBackbone


def num_params(module):
    return sum(p.numel() for p in module.parameters())


class Classifier(nn.Module):
    """Backbone's last map -> global average pool -> ``head``: the classification network the papers and
    torchvision count."""

    def __init__(self, backbone, head):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x):
        return self.head(self.backbone(x)[-1].mean((2, 3)))


@pytest.mark.parametrize('alpha, paper_params, paper_madds', [(1.0, 4_231_976, 569e6), (0.5, 1.33e6, 149e6)])
def test_mobilenet_v1_matches_paper(alpha, paper_params, paper_madds):
    backbone = MobileNetV1(widen_factor=alpha, out_indices=(4,))
    model = Classifier(backbone, nn.Linear(backbone.out_channels[-1], 1000)).eval()
    assert abs(num_params(model) / paper_params - 1) < 0.005
    flops = FlopAnalyzer(model, torch.zeros(1, 3, 224, 224))
    flops.unsupported_ops_warnings(False)
    by_op = flops.by_operator()
    # The paper counts multiply-adds of conv and FC layers; FlopAnalyzer counts one multiply-add as one.
    assert abs((by_op['conv'] + by_op['linear']) / paper_madds - 1) < 0.01
    assert abs(flops.total() / paper_madds - 1) < 0.05  # BN adds 2-4%


# class, kwargs, torchvision builder, torchvision's total parameters, the last ``features[j]`` at strides
# 2/4/8/16/32, torchvision's classifier on top of the pooled features.
def v3_head(in_channels, hidden):
    return nn.Sequential(nn.Linear(in_channels, hidden), nn.Hardswish(), nn.Linear(hidden, 1000))


TORCHVISION_CASES = {
    'v2': (MobileNetV2, {}, torchvision.models.mobilenet_v2, 3_504_872, [1, 3, 6, 13, 18],
           lambda: nn.Linear(1280, 1000)),
    'v3_large': (MobileNetV3, dict(arch='large'), torchvision.models.mobilenet_v3_large, 5_483_032,
                 [1, 3, 6, 12, 16], lambda: v3_head(960, 1280)),
    'v3_small': (MobileNetV3, dict(arch='small'), torchvision.models.mobilenet_v3_small, 2_542_856,
                 [0, 1, 3, 8, 12], lambda: v3_head(576, 1024)),
}


@pytest.mark.parametrize('case', sorted(TORCHVISION_CASES))
def test_mobilenet_matches_torchvision(case, tmp_path):
    cls, kwargs, tv_builder, tv_total, stage_ends, head = TORCHVISION_CASES[case]
    tv = tv_builder(weights=None).eval()
    backbone = cls(out_indices=(0, 1, 2, 3, 4), **kwargs)
    assert num_params(backbone) == num_params(tv.features)
    assert num_params(Classifier(backbone, head())) == tv_total == num_params(tv)
    assert backbone.strides == [2, 4, 8, 16, 32]

    converted = cls.convert_torchvision(tv.state_dict(), **kwargs)
    assert set(converted) == set(backbone.state_dict())
    path = tmp_path / 'converted.pth'
    torch.save(converted, path)
    init_cfg = dict(type='Pretrained', checkpoint=str(path))
    loaded = cls(out_indices=(0, 1, 2, 3, 4), init_cfg=init_cfg, **kwargs)
    loaded.init_weights()
    loaded.eval()

    x = torch.randn(2, 3, 64, 64)
    reference = create_feature_extractor(tv, {f'features.{j}': str(j) for j in stage_ends})
    with torch.no_grad():
        expected = list(reference(x).values())
        outs = loaded(x)
    assert [o.shape[1] for o in outs] == [e.shape[1] for e in expected] == loaded.out_channels
    for out, exp in zip(outs, expected):
        assert out.shape == exp.shape
        assert (out - exp).abs().max() < 1e-4


@pytest.mark.parametrize('width', [0.5, 1.4])
def test_mobilenet_width_matches_torchvision(width):
    tvm = torchvision.models
    for backbone, tv in [(MobileNetV2(widen_factor=width), tvm.mobilenet_v2(width_mult=width)),
                         (MobileNetV3('large', width), tvm.mobilenet_v3_large(width_mult=width)),
                         (MobileNetV3('small', width), tvm.mobilenet_v3_small(width_mult=width))]:
        assert num_params(backbone) == num_params(tv.features)


def test_torchvision_backbone_loads_torchvision_keys(tmp_path):
    tv = torchvision.models.resnet18(weights=None).eval()
    path = tmp_path / 'resnet18.pth'
    torch.save(tv.state_dict(), path)
    backbone = TorchvisionBackbone('resnet18', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    backbone.init_weights()
    backbone.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = tv.layer4(tv.layer3(tv.layer2(tv.layer1(tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))))))
        out = backbone(x)[-1]
    assert backbone.strides == [2, 4, 8, 16, 32] and backbone.out_channels == [64, 64, 128, 256, 512]
    assert (out - expected).abs().max() < 1e-5


def bn_stats(modules):
    return [(m.running_mean.clone(), m.running_var.clone())
            for m in modules if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def train_step(model, x):
    model.train()
    outs = model(x)
    loss = sum((o ** 2).mean() for o in outs)
    loss.backward()
    return loss


@pytest.mark.parametrize('cls, kwargs', [(MobileNetV1, dict(widen_factor=0.25)), (MobileNetV2, {}),
                                         (MobileNetV3, dict(arch='small'))])
def test_frozen_stages_mobilenet(cls, kwargs):
    model = cls(frozen_stages=1, **kwargs)
    frozen = [m for layer in model.layers[:2] for m in layer.modules()]
    trained = [m for layer in model.layers[2:] for m in layer.modules()]
    before = bn_stats(frozen)
    train_step(model, torch.randn(2, 3, 64, 64))
    assert all(not p.requires_grad and p.grad is None for m in frozen for p in m.parameters())
    assert all(p.grad is not None for m in trained for p in m.parameters())
    assert not any(m.training for m in frozen) and all(m.training for m in trained)
    for (mean0, var0), (mean1, var1) in zip(before, bn_stats(frozen)):
        assert torch.equal(mean0, mean1) and torch.equal(var0, var1)


def test_frozen_stages_torchvision_backbone():
    # resnet18's default nodes are relu (stride 2), layer1..layer4; frozen_stages=2 (up to stride 8) must
    # freeze the stem, layer1 and layer2.
    model = TorchvisionBackbone('resnet18', frozen_stages=2)
    frozen_prefixes = ('body.conv1.', 'body.bn1.', 'body.layer1.', 'body.layer2.')
    train_step(model, torch.randn(2, 3, 64, 64))
    for name, param in model.named_parameters():
        if name.startswith(frozen_prefixes):
            assert not param.requires_grad and param.grad is None, name
        else:
            assert param.grad is not None, name
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.BatchNorm2d)):
            assert module.training != f'{name}.'.startswith(frozen_prefixes), name


@pytest.mark.parametrize('build', [lambda **kw: MobileNetV2(widen_factor=0.5, **kw),
                                   lambda **kw: MobileNetV3(arch='small', **kw),
                                   lambda **kw: TorchvisionBackbone('resnet18', **kw)])
def test_norm_eval(build):
    x = torch.randn(2, 3, 64, 64)
    model = build(norm_eval=True)
    before = bn_stats(model.modules())
    train_step(model, x)
    assert model.training
    assert all(torch.equal(m0, m1) and torch.equal(v0, v1)
               for (m0, v0), (m1, v1) in zip(before, bn_stats(model.modules())))
    # Without norm_eval the same step does move the statistics.
    model = build()
    before = bn_stats(model.modules())
    train_step(model, x)
    assert not torch.equal(before[-1][0], bn_stats(model.modules())[-1][0])


@pytest.mark.parametrize('build, module', [
    (lambda **kw: MobileNetV2(widen_factor=0.5, **kw), base_module),
    (lambda **kw: MobileNetV3(arch='small', **kw), base_module),
    (lambda **kw: TorchvisionBackbone('resnet18', **kw), tv_backbone_module)])
def test_with_cp_same_loss_and_grads(build, module, monkeypatch):
    calls = []

    def counting_checkpoint(*args, **kwargs):
        calls.append(1)
        return torch.utils.checkpoint.checkpoint(*args, **kwargs)

    monkeypatch.setattr(module, 'checkpoint', counting_checkpoint)
    plain, cp = build(), build(with_cp=True)
    cp.load_state_dict(copy.deepcopy(plain.state_dict()))
    x = torch.randn(2, 3, 64, 64)
    loss_plain = train_step(plain, x)
    assert not calls
    loss_cp = train_step(cp, x)
    assert len(calls) > 3
    assert torch.allclose(loss_plain, loss_cp, rtol=1e-6, atol=0)
    grads_cp = dict(cp.named_parameters())
    for name, param in plain.named_parameters():
        assert torch.allclose(param.grad, grads_cp[name].grad, rtol=1e-5, atol=1e-7), name
