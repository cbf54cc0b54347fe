"""SNet and EfficientNet against independent references: ThunderNet's multiply-add counts (Table 1),
torchvision's ShuffleNetV2 (SNet's block with 3x3 depthwise) and torchvision's EfficientNet-B0..B7
(parameter counts, and feature maps after weight conversion)."""
import pytest
import torch
import torchvision
from mmengine.analysis import FlopAnalyzer
from torch import nn
from torchvision.models.efficientnet import EfficientNet as TVEfficientNet
from torchvision.models.efficientnet import _efficientnet_conf

from det.models.backbones.efficientnet import EfficientNet
from det.models.backbones.snet import SNet
from det.registry import MODELS


def num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def randomise_bn(model: nn.Module):
    """Non-trivial BN statistics and affine terms, so eval-mode equality tests exercise them."""
    gen = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.1)


class Classifier(nn.Module):
    """Backbone's last map → global average pool → FC 1000, the ImageNet model the papers count."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.fc = nn.Linear(backbone.out_channels[-1], 1000)

    def forward(self, x):
        return self.fc(self.backbone(x)[-1].mean((2, 3)))


# ---------------------------------------------------------------------------------------------- SNet
@pytest.mark.parametrize('arch,paper_madds', [('snet49', 49e6), ('snet146', 146e6), ('snet535', 535e6)])
def test_snet_multiply_adds_match_thundernet_table(arch, paper_madds):
    model = Classifier(SNet(arch, out_indices=(4,))).eval()
    flops = FlopAnalyzer(model, (torch.zeros(1, 3, 224, 224),))
    flops.unsupported_ops_warnings(False)
    # conv + FC multiply-adds; BN folds into the convs at inference, so its elementwise count is left out
    madds = flops.total() - flops.by_operator().get('batch_norm', 0)
    assert abs(madds / paper_madds - 1) < 0.12, (arch, madds / 1e6)


@pytest.mark.parametrize('arch,channels', [('snet49', [24, 24, 60, 120, 512]),
                                           ('snet146', [24, 24, 132, 264, 528]),
                                           ('snet535', [48, 48, 248, 496, 992])])
def test_snet_output_strides_and_channels(arch, channels):
    model = SNet(arch, out_indices=(0, 1, 2, 3, 4)).eval()
    assert model.out_channels == channels and model.strides == [2, 4, 8, 16, 32]
    outs = model(torch.randn(1, 3, 64, 64))
    expected = [(1, c, 64 // s, 64 // s) for c, s in zip(channels, [2, 4, 8, 16, 32])]
    assert [tuple(o.shape) for o in outs] == expected
    depthwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert depthwise and all(m.kernel_size == (5, 5) for m in depthwise)


def test_snet_with_3x3_depthwise_equals_torchvision_shufflenet_v2():
    """With kernel 3 and ShuffleNetV2-1.0x widths, SNet is torchvision's ShuffleNetV2 without the FC:
    after ``convert_torchvision`` it gives the same maps after conv1, maxpool, stage2, stage3 and conv5."""
    ref = torchvision.models.shufflenet_v2_x1_0().eval()
    randomise_bn(ref)
    arch = dict(arch=dict(stem=24, widths=(116, 232, 464), conv5=1024), kernel=3)
    ours = SNet(**arch, out_indices=(0, 1, 2, 3, 4)).eval()
    ours.load_state_dict(SNet.convert_torchvision(ref.state_dict(), **arch))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        c1 = ref.conv1(x)
        c2 = ref.maxpool(c1)
        c3 = ref.stage2(c2)
        c4 = ref.stage3(c3)
        c5 = ref.conv5(ref.stage4(c4))
        outs = ours(x)
    assert len(outs) == 5
    for out, expected in zip(outs, (c1, c2, c3, c4, c5)):
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_channel_shuffle_interleaves_the_two_halves():
    """ShuffleBlock's ``nn.ChannelShuffle(2)`` is ShuffleNetV2's view-transpose-reshape, with gradients."""
    x, grad = torch.randn(2, 12, 5, 5, requires_grad=True), torch.randn(2, 12, 5, 5)
    shuffled = SNet('snet49').layers[2][0].shuffle(x)
    reference = x.view(2, 2, 6, 5, 5).transpose(1, 2).reshape(2, 12, 5, 5)
    assert torch.equal(shuffled, reference)
    assert torch.equal(*(torch.autograd.grad(y, x, grad)[0] for y in (shuffled, reference)))


# -------------------------------------------------------------------------------------- EfficientNet
@pytest.mark.parametrize('arch', ['b0', 'b1', 'b2', 'b3', 'b4', 'b5', 'b6', 'b7'])
def test_efficientnet_parameter_count_equals_torchvision(arch):
    ref = getattr(torchvision.models, f'efficientnet_{arch}')(weights=None)
    ours = EfficientNet(arch)
    assert num_params(ours) == num_params(ref.features)
    classifier = ours.out_channels[-1] * 1000 + 1000  # torchvision's Linear(4 * C5, 1000)
    assert num_params(ours) + classifier == num_params(ref)


def test_efficientnet_b0_published_counts():
    ours = EfficientNet('b0')
    assert num_params(ours) == 4_007_548  # torchvision efficientnet_b0().features
    assert num_params(Classifier(ours)) == 5_288_548  # torchvision / paper: 5.3M


def test_efficientnet_custom_width_depth_matches_torchvision_rounding():
    setting, _ = _efficientnet_conf('efficientnet_b0', width_mult=0.75, depth_mult=0.5)
    ref = TVEfficientNet(setting, dropout=0.2)
    ours = EfficientNet(dict(width=0.75, depth=0.5))
    assert num_params(ours) == num_params(ref.features)


@pytest.mark.parametrize('arch', ['b0', 'b5'])  # b5: BN eps 1e-3 / momentum 0.01
def test_efficientnet_maps_equal_torchvision_after_conversion(arch):
    ref = getattr(torchvision.models, f'efficientnet_{arch}')(weights=None).eval()
    randomise_bn(ref)
    ours = EfficientNet(arch, out_indices=(0, 1, 2, 3, 4)).eval()
    ours.load_state_dict(EfficientNet.convert_torchvision(ref.state_dict(), arch=arch), strict=True)
    ref_bn = next(m for m in ref.modules() if isinstance(m, nn.BatchNorm2d))
    our_bn = next(m for m in ours.modules() if isinstance(m, nn.BatchNorm2d))
    assert (our_bn.eps, our_bn.momentum) == (ref_bn.eps, ref_bn.momentum)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        feats, y = [], x
        for stage in ref.features:
            y = stage(y)
            feats.append(y)
        outs = ours(x)
    # torchvision features index of the last block at each stride 2, 4, 8, 16, 32 (8: head conv)
    for out, index in zip(outs, (1, 2, 3, 5, 8)):
        assert (out - feats[index]).abs().max() < 1e-4
    assert ours.strides == [2, 4, 8, 16, 32]


def test_efficientnet_without_head_conv_and_by_registry():
    model = MODELS.build(dict(type='EfficientNet', arch='b0', with_head_conv=False, out_indices=(2, 3, 4)))
    assert model.out_channels == [40, 112, 320] and model.strides == [8, 16, 32]
    outs = model(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape[1:]) for o in outs] == [(40, 8, 8), (112, 4, 4), (320, 2, 2)]
    tv_state = torchvision.models.efficientnet_b0(weights=None).state_dict()
    converted = EfficientNet.convert_torchvision(tv_state, arch='b0', with_head_conv=False)
    assert list(converted) == list(model.state_dict())
    assert MODELS.build(dict(type='SNet', arch='snet49')).out_channels == [120, 512]


def test_with_cp_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = EfficientNet('b0', drop_path_rate=0.0, out_indices=(0, 2)).train()  # stages 0-2: 5 MBConvs
    ckpt = EfficientNet('b0', drop_path_rate=0.0, out_indices=(0, 2), with_cp=True).train()
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 32, 32)
    for model in (plain, ckpt):
        sum(o.mean() for o in model(x)).backward()
    for (name, p), q in zip(plain.named_parameters(), ckpt.parameters()):
        if p.grad is not None or q.grad is not None:  # stages after out_indices[-1] do not run
            torch.testing.assert_close(p.grad, q.grad, atol=1e-5, rtol=1e-4, msg=name)
    assert plain.layers[2][0].block[0][0].weight.grad is not None
