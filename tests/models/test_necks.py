"""Necks: registry-driven shapes/strides/gradients on every usable backbone, and equalities against
independent references (torchvision's FPN, scipy's maximum filter, hand computations)."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import maximum_filter
from torch import nn
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

import det.models  # noqa: F401  (registers every module)
from det.models.backbones.base import BaseBackbone
from det.registry import MODELS

# Minimal config of every registered backbone (a neck must sit on each); a registered backbone without
# an entry fails test_every_registered_backbone_has_a_config.
BACKBONE_CONFIGS = {
    'MobileNetV1': dict(type='MobileNetV1', out_indices=(2, 3, 4)),
    'MobileNetV2': dict(type='MobileNetV2', out_indices=(2, 3, 4)),
    'MobileNetV3': dict(type='MobileNetV3', arch='small', out_indices=(2, 3, 4)),
    'EfficientNet': dict(type='EfficientNet', arch='b0', out_indices=(2, 3, 4)),
    'EfficientNetLite': dict(type='EfficientNetLite', arch='lite0', out_indices=(2, 3, 4)),
    'SNet': dict(type='SNet', arch='snet49', out_indices=(2, 3, 4)),
    'TorchvisionBackbone': dict(type='TorchvisionBackbone', name='resnet18',
                                return_nodes=['layer2', 'layer3', 'layer4']),
}
NECK_CONFIGS = [
    dict(type='FPN', out_channels=16, num_outs=5, add_extra_convs='on_input'),
    dict(type='FPN', out_channels=16, num_outs=4, upsample='bilinear', bottom_up=True),
    dict(type='SPP'),
    dict(type='SPPF', act='leaky_relu'),
    dict(type='SPPNetPooling'),
    dict(type='CEM'),
    dict(type='HybridEncoder', out_channels=16, num_heads=2, ffn_dims=32, num_blocks=1),
]
NECK_IDS = ['RetinaFPN', 'PAFPN-bilinear', 'SPP', 'SPPF-leaky', 'SPPNetPooling', 'CEM', 'HybridEncoder']
IMG_HW = (96, 64)


class FakeBackbone(nn.Module):
    """Three stride-2 3x3 convs after a stride-8 stem: maps at strides 8, 16, 32 (ceil-rounded sizes)."""

    def __init__(self, channels=(8, 12, 16)):
        super().__init__()
        self.stem = nn.Conv2d(3, channels[0], 8, stride=8, padding=3)
        self.stages = nn.ModuleList([nn.Identity()] + [
            nn.Conv2d(cin, cout, 3, stride=2, padding=1) for cin, cout in zip(channels[:-1], channels[1:])])
        self.out_channels, self.strides = list(channels), [8, 16, 32]

    def forward(self, x):
        x, outs = self.stem(x), []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return tuple(outs)


def _registered_backbones():
    return sorted(name for name, cls in MODELS.module_dict.items()
                  if isinstance(cls, type) and issubclass(cls, BaseBackbone))


def _backbone_params():
    return ['fake'] + sorted(set(BACKBONE_CONFIGS) | set(_registered_backbones()))


def _config_problems():
    """Registered backbones without an entry in BACKBONE_CONFIGS, and entries of unregistered types."""
    registered = set(_registered_backbones())
    return ([f'{name} is registered but has no minimal config in BACKBONE_CONFIGS'
             for name in sorted(registered - set(BACKBONE_CONFIGS))]
            + [f'BACKBONE_CONFIGS[{name!r}] is not a registered backbone'
               for name in sorted(set(BACKBONE_CONFIGS) - registered)])


def test_every_registered_backbone_has_a_config():
    assert not _config_problems()


def test_a_new_backbone_without_config_is_reported():
    """The check above is live: a backbone registered later (a new family) is named, not skipped."""
    class NewBackbone(BaseBackbone):
        pass

    MODELS.register_module(module=NewBackbone)
    try:
        assert _config_problems() == [
            'NewBackbone is registered but has no minimal config in BACKBONE_CONFIGS']
    finally:
        MODELS.module_dict.pop('NewBackbone')


_FEATS = {}


def _backbone_feats(name):
    """(maps, out_channels, strides) of a backbone on a ``[2, 3, *IMG_HW]`` input, cached per name."""
    if name not in _FEATS:
        torch.manual_seed(0)
        if name == 'fake':
            backbone = FakeBackbone()
        else:
            problems = [p for p in _config_problems() if p.startswith(f'{name} ')]
            if problems:
                pytest.fail('; '.join(problems))
            backbone = MODELS.build(BACKBONE_CONFIGS[name])
        with torch.no_grad():
            feats = backbone.eval()(torch.randn(2, 3, *IMG_HW))
        _FEATS[name] = (feats, list(backbone.out_channels), list(backbone.strides))
    return _FEATS[name]


def _check_grads(module):
    for pname, param in module.named_parameters():
        assert param.grad is not None, pname
        assert param.grad.abs().sum() > 0, pname


@pytest.mark.parametrize('neck_cfg', NECK_CONFIGS, ids=NECK_IDS)
@pytest.mark.parametrize('backbone', _backbone_params())
def test_neck_on_backbone(backbone, neck_cfg):
    """Every neck builds from the backbone's channels/strides; outputs have the advertised channels and
    ceil(H / stride) sizes; a backward of the output sum reaches every neck parameter and the coarsest
    input."""
    feats, channels, strides = _backbone_feats(backbone)
    if neck_cfg['type'] == 'CEM' and not {16, 32} <= set(strides):
        pytest.skip(f'{backbone} has no stride-16/32 maps (strides {strides})')
    neck = MODELS.build(dict(neck_cfg, in_channels=channels, strides=strides))
    feats = tuple(f.clone().requires_grad_() for f in feats)
    outs = neck(feats)
    assert isinstance(outs, tuple) and len(outs) == len(neck.out_channels) == len(neck.strides)
    for out, c, s in zip(outs, neck.out_channels, neck.strides):
        if neck_cfg['type'] == 'SPPNetPooling':
            assert out.shape == (2, c)
        else:
            assert out.shape == (2, c, math.ceil(IMG_HW[0] / s), math.ceil(IMG_HW[1] / s))
    sum(o.sum() for o in outs).backward()
    _check_grads(neck)
    assert feats[-1].grad.abs().sum() > 0


def test_cem_needs_strides_16_and_32():
    with pytest.raises(ValueError, match='stride-16'):
        MODELS.build(dict(type='CEM', in_channels=[8, 16], strides=[8, 16]))


# ---------------------------------------------------------------- FPN

def _maps(sizes, channels=(4, 8, 16), batch=1):
    return tuple(torch.randn(batch, c, h, w) for c, (h, w) in zip(channels, sizes))


def _copy_from_torchvision(fpn, tv):
    with torch.no_grad():
        for i in range(len(fpn.lateral_convs)):
            for ours, theirs in ((fpn.lateral_convs[str(i)], tv.inner_blocks[i][0]),
                                 (fpn.output_convs[str(i)], tv.layer_blocks[i][0])):
                theirs.bias.normal_()  # torchvision initialises biases to 0: make their copy checked
                ours.weight.copy_(theirs.weight)
                ours.bias.copy_(theirs.bias)


@pytest.mark.parametrize('maxpool_extra', [False, True])
def test_fpn_matches_torchvision(maxpool_extra):
    """Nearest top-down FPN == torchvision's FeaturePyramidNetwork (odd sizes), with our max-pool P6
    == its LastLevelMaxPool."""
    torch.manual_seed(0)
    tv = FeaturePyramidNetwork([4, 8, 16], 8, extra_blocks=LastLevelMaxPool() if maxpool_extra else None)
    fpn = MODELS.build(dict(type='FPN', in_channels=[4, 8, 16], strides=[8, 16, 32], out_channels=8,
                            num_outs=4 if maxpool_extra else 3))
    _copy_from_torchvision(fpn, tv)
    feats = _maps([(13, 11), (7, 6), (4, 3)], batch=2)
    with torch.no_grad():
        expected = list(tv({str(i): f for i, f in enumerate(feats)}).values())
        outs = fpn(feats)
    assert len(outs) == len(expected) == len(fpn.strides)
    for out, ref in zip(outs, expected):
        assert out.shape == ref.shape
        assert (out - ref).abs().max() < 1e-5


@pytest.mark.parametrize('upsample', ['deconv', 'pixel_shuffle'])
def test_fpn_learned_upsampling_can_express_nearest(upsample):
    """With weights that copy each input pixel into its 2x2 block, the learned upsamplers equal
    torchvision's nearest-neighbour FPN (checks channel order and crop/pad on even sizes)."""
    torch.manual_seed(0)
    tv = FeaturePyramidNetwork([4, 8, 16], 8)
    fpn = MODELS.build(dict(type='FPN', in_channels=[4, 8, 16], strides=[8, 16, 32], out_channels=8,
                            upsample=upsample))
    _copy_from_torchvision(fpn, tv)
    with torch.no_grad():
        for up in fpn.upsamplers.values():
            conv = up.up if upsample == 'deconv' else up.up[0]
            conv.weight.zero_()
            conv.bias.zero_()
            for c in range(8):
                if upsample == 'deconv':  # weight [in, out, 2, 2]
                    conv.weight[c, c] = 1
                else:  # PixelShuffle takes sub-pixel (i, j) of channel c from input channel 4c + 2i + j
                    conv.weight[4 * c:4 * c + 4, c] = 1
        feats = _maps([(16, 12), (8, 6), (4, 3)])
        expected = list(tv({str(i): f for i, f in enumerate(feats)}).values())
        outs = fpn(feats)
    for out, ref in zip(outs, expected):
        assert (out - ref).abs().max() < 1e-5


# Backbone-like sizes of a 100 x 75 image at strides 8/16/32, ceil- and floor-rounded.
ODD_SIZES = {'ceil': [(13, 10), (7, 5), (4, 3)], 'floor': [(12, 9), (6, 4), (3, 2)]}


@pytest.mark.parametrize('rounding', sorted(ODD_SIZES))
@pytest.mark.parametrize('bottom_up', [False, True])
@pytest.mark.parametrize('extra', [False, 'on_input', 'on_output'])
@pytest.mark.parametrize('upsample', ['nearest', 'bilinear', 'deconv', 'pixel_shuffle'])
def test_fpn_modes_strides_and_grads(upsample, extra, bottom_up, rounding):
    """Every upsampling x extra-level x bottom-up combination: strides 8..128, each output the size of
    its input level (P6/P7 ceil-halved), gradients reach every parameter."""
    torch.manual_seed(0)
    sizes = ODD_SIZES[rounding]
    fpn = MODELS.build(dict(type='FPN', in_channels=[4, 8, 16], strides=[8, 16, 32], out_channels=8,
                            num_outs=5, add_extra_convs=extra, upsample=upsample, bottom_up=bottom_up))
    outs = fpn(_maps(sizes, batch=2))
    assert fpn.strides == [8, 16, 32, 64, 128] and fpn.out_channels == [8] * 5
    h, w = sizes[-1]
    expected = sizes + [((h + 1) // 2, (w + 1) // 2), ((h + 3) // 4, (w + 3) // 4)]
    assert [tuple(o.shape[-2:]) for o in outs] == expected
    assert all(o.shape[:2] == (2, 8) for o in outs)
    sum(o.sum() for o in outs).backward()
    _check_grads(fpn)


def test_fpn_start_level_extra_sources_and_relu():
    """start_level skips C2; 'on_input' P6 is a conv on C5 (its channels), P7 = conv(ReLU(P6))."""
    torch.manual_seed(0)
    fpn = MODELS.build(dict(type='FPN', in_channels=[2, 4, 8, 16], strides=[4, 8, 16, 32], out_channels=8,
                            start_level=1, num_outs=5, add_extra_convs='on_input',
                            relu_before_extra_convs=True))
    feats = (torch.randn(1, 2, 32, 32),) + _maps([(16, 16), (8, 8), (4, 4)])
    with torch.no_grad():
        outs = fpn(feats)
        assert fpn.strides == [8, 16, 32, 64, 128]
        assert [o.shape[-1] for o in outs] == [16, 8, 4, 2, 1]
        assert torch.allclose(outs[3], F.conv2d(feats[-1], fpn.extra_convs[0].weight,
                                                fpn.extra_convs[0].bias, stride=2, padding=1), atol=1e-6)
        assert torch.allclose(outs[4], F.conv2d(outs[3].clamp(min=0), fpn.extra_convs[1].weight,
                                                fpn.extra_convs[1].bias, stride=2, padding=1), atol=1e-6)


def test_fpn_bottom_up_keeps_finest_level():
    """PAFPN's N_0 is P_0: the finest output equals the plain FPN's with the same weights."""
    torch.manual_seed(0)
    cfg = dict(type='FPN', in_channels=[4, 8, 16], strides=[8, 16, 32], out_channels=8)
    pafpn, fpn = MODELS.build(dict(cfg, bottom_up=True)), MODELS.build(cfg)
    fpn.load_state_dict(pafpn.state_dict(), strict=False)
    feats = _maps(ODD_SIZES['ceil'])
    with torch.no_grad():
        assert torch.equal(pafpn(feats)[0], fpn(feats)[0])
        assert not torch.allclose(pafpn(feats)[-1], fpn(feats)[-1])


@pytest.mark.parametrize('out_indices', [(0,), (1,), (0, 2), (3,), (1, 4)])
@pytest.mark.parametrize('extra', [False, 'on_input', 'on_output'])
@pytest.mark.parametrize('bottom_up', [False, True])
def test_fpn_out_indices_builds_only_what_they_need(out_indices, extra, bottom_up):
    """The chosen levels equal the full FPN's with the same weights, and every parameter that is built
    gets a gradient from them alone (so DDP needs no find_unused_parameters)."""
    torch.manual_seed(0)
    cfg = dict(type='FPN', in_channels=[4, 8, 16], strides=[8, 16, 32], out_channels=8, num_outs=5,
               add_extra_convs=extra, bottom_up=bottom_up)
    full, part = MODELS.build(cfg), MODELS.build(dict(cfg, out_indices=out_indices))
    missing, unexpected = part.load_state_dict(full.state_dict(), strict=False)
    assert not missing, missing
    assert part.strides == [full.strides[i] for i in out_indices]
    assert part.out_channels == [8] * len(out_indices)
    feats = _maps(ODD_SIZES['ceil'], batch=2)
    outs = part(feats)
    with torch.no_grad():
        reference = full(feats)
    assert len(outs) == len(out_indices)
    for out, i in zip(outs, out_indices):
        assert torch.equal(out, reference[i]), i
    sum(o.sum() for o in outs).backward()
    _check_grads(part)
    if out_indices == (0,) and not bottom_up:
        assert list(part.output_convs) == ['0'] and unexpected  # the other output convs are not built


def test_fpn_out_indices_out_of_range():
    with pytest.raises(ValueError, match='out_indices'):
        MODELS.build(dict(type='FPN', in_channels=[4, 8], strides=[8, 16], out_indices=(2,)))


# ---------------------------------------------------------------- SPP / SPPF / SPP-net

@pytest.mark.parametrize('act', ['silu', 'leaky_relu'])
def test_sppf_equals_spp(act):
    """SPPF (5x5 pool thrice) loaded with SPP(5, 9, 13)'s weights gives the same output; the finer
    level passes through untouched; cv1 halves the channels."""
    torch.manual_seed(0)
    cfg = dict(in_channels=[8, 16], strides=[16, 32], act=act)
    spp, sppf = MODELS.build(dict(cfg, type='SPP')), MODELS.build(dict(cfg, type='SPPF'))
    feats = _maps([(14, 10), (7, 5)], channels=(8, 16), batch=2)
    with torch.no_grad():
        spp.cv1[1].running_mean.normal_()  # non-trivial BN statistics, shared through the state dict
        spp.cv1[1].running_var.uniform_(0.5, 2)
        sppf.load_state_dict(spp.state_dict())
        spp.eval(), sppf.eval()
        out_spp, out_sppf = spp(feats), sppf(feats)
    assert spp.cv1[0].out_channels == 8 and spp.out_channels == sppf.out_channels == [8, 16]
    assert out_spp[0] is feats[0] and out_sppf[0] is feats[0]
    assert out_spp[1].shape == (2, 16, 7, 5)
    assert torch.equal(out_spp[1], out_sppf[1])


def test_spp_pools_match_scipy_maximum_filter():
    """SPP's stride-1 pools (padding k // 2) are max filters with -inf outside the map."""
    spp = MODELS.build(dict(type='SPP', in_channels=[16], strides=[32]))
    x = torch.randn(1, 3, 9, 6)
    for k, pooled in zip((5, 9, 13), spp.pyramid(x)[1:]):
        ref = maximum_filter(x.numpy(), size=(1, 1, k, k), mode='constant', cval=-np.inf)
        assert np.array_equal(pooled.numpy(), ref)


def test_sppnet_pooling_fixed_length():
    """Two input sizes give the same [B, 21 C] vector; values equal adaptive max pooling per bin
    grid, and (on an even map) the whole-map and quadrant maxima."""
    pool = MODELS.build(dict(type='SPPNetPooling', in_channels=[4, 6], strides=[16, 32]))
    assert pool.out_channels == [6 * 21] and pool.strides == [32]
    for h, w in ((8, 6), (11, 5)):
        x = torch.randn(2, 6, h, w)
        (vec,) = pool((torch.randn(2, 4, 2 * h, 2 * w), x))
        assert vec.shape == (2, 126)
        ref = torch.cat([F.adaptive_max_pool2d(x, b).reshape(2, -1) for b in (1, 2, 4)], dim=1)
        assert torch.equal(vec, ref)
    x = torch.randn(1, 6, 8, 6)
    (vec,) = pool((None, x))
    assert torch.equal(vec[:, :6], x.amax(dim=(2, 3)))
    quadrants = torch.stack([x[..., :4, :3].amax((2, 3)), x[..., :4, 3:].amax((2, 3)),
                             x[..., 4:, :3].amax((2, 3)), x[..., 4:, 3:].amax((2, 3))], dim=-1)
    assert torch.equal(vec[:, 6:30], quadrants.reshape(1, -1))


# ---------------------------------------------------------------- ThunderNet CEM / SAM

def test_cem_hand_computed():
    """CEM == 1x1(C4) + nearest-2x(1x1(C5)) + 1x1(mean(C5)), written with einsum / repeat_interleave;
    stride-16/32 maps are picked out of a 3-level input; default 245 channels; odd sizes work."""
    torch.manual_seed(0)
    cem = MODELS.build(dict(type='CEM', in_channels=[3, 2, 4], strides=[8, 16, 32], out_channels=3))
    c3, c4, c5 = torch.randn(1, 3, 8, 8), torch.randn(1, 2, 4, 4), torch.randn(1, 4, 2, 2)
    with torch.no_grad():
        (out,) = cem((c3, c4, c5))

    def conv1x1(conv, x):
        return torch.einsum('oc,bchw->bohw', conv.weight[:, :, 0, 0], x) + conv.bias[:, None, None]

    up = conv1x1(cem.conv_c5, c5).repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    glb = cem.conv_glb.weight[:, :, 0, 0] @ c5.mean(dim=(2, 3))[0] + cem.conv_glb.bias
    ref = conv1x1(cem.conv_c4, c4) + up + glb[None, :, None, None]
    assert cem.out_channels == [3] and cem.strides == [16]
    assert (out - ref).abs().max() < 1e-5

    for upsample in ('nearest', 'bilinear'):
        cem = MODELS.build(dict(type='CEM', in_channels=[2, 4], strides=[16, 32], upsample=upsample))
        (out,) = cem((torch.randn(2, 2, 7, 5), torch.randn(2, 4, 4, 3)))
        assert cem.out_channels == [245] and out.shape == (2, 245, 7, 5)


@pytest.mark.parametrize('train', [False, True])
def test_sam_hand_computed_and_grad_to_rpn(train):
    """F_SAM = F_CEM * sigmoid(BN(W F_RPN)), BN with running (eval) or batch (train) statistics; the
    gradient reaches the RPN feature and every SAM parameter."""
    torch.manual_seed(0)
    sam = MODELS.build(dict(type='SAM', rpn_channels=6, cem_channels=5)).train(train)
    with torch.no_grad():
        sam.bn.weight.uniform_(0.5, 2)
        sam.bn.bias.normal_()
        sam.bn.running_mean.normal_()
        sam.bn.running_var.uniform_(0.5, 2)
        running_mean, running_var = sam.bn.running_mean.clone(), sam.bn.running_var.clone()
    cem, rpn = torch.randn(2, 5, 4, 3), torch.randn(2, 6, 4, 3, requires_grad=True)
    out = sam(cem, rpn)

    y = torch.einsum('oc,bchw->bohw', sam.conv.weight[:, :, 0, 0], rpn)
    mean, var = (y.mean(dim=(0, 2, 3)), y.var(dim=(0, 2, 3), unbiased=False)) if train else \
        (running_mean, running_var)
    bn = (y - mean[:, None, None]) / torch.sqrt(var[:, None, None] + sam.bn.eps)
    ref = cem * torch.sigmoid(bn * sam.bn.weight[:, None, None] + sam.bn.bias[:, None, None])
    assert out.shape == cem.shape and sam.out_channels == [5]
    assert (out - ref).abs().max() < 1e-5
    out.sum().backward()
    assert rpn.grad is not None and rpn.grad.abs().sum() > 0
    _check_grads(sam)
