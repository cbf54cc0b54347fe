"""torchvision weights from the config: ``init_cfg=dict(type='Pretrained', checkpoint=path,
convert='torchvision')`` on the backbone of a shipped detector config loads a saved torchvision state
dict, after which the backbone's maps are exactly torchvision's; a state dict of another model is a
ValueError naming the keys."""
from functools import partial
from pathlib import Path

import pytest
import torch
import torchvision
from mmengine.config import Config
from mmengine.registry import init_default_scope
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

from det.registry import MODELS

CONFIG = Path(__file__).resolve().parents[2] / 'configs' / 'yolo_v1.py'
SHUFFLENET_V2_X1_0 = dict(type='SNet', arch=dict(stem=24, widths=(116, 232, 464), conv5=1024), kernel=3)
# backbone, torchvision model, its nodes at strides 2 / 4 / 8 / 16 / 32 (out_indices 0..4)
CASES = {
    'mobilenet_v2': (dict(type='MobileNetV2', widen_factor=0.5),
                     partial(torchvision.models.mobilenet_v2, width_mult=0.5),
                     ['features.1', 'features.3', 'features.6', 'features.13', 'features.18']),
    'mobilenet_v3_large': (dict(type='MobileNetV3', arch='large'), torchvision.models.mobilenet_v3_large,
                           ['features.1', 'features.3', 'features.6', 'features.12', 'features.16']),
    'efficientnet_b0': (dict(type='EfficientNet', arch='b0'), torchvision.models.efficientnet_b0,
                        ['features.1', 'features.2', 'features.3', 'features.5', 'features.8']),
    'shufflenet_v2_x1_0': (SHUFFLENET_V2_X1_0, torchvision.models.shufflenet_v2_x1_0,
                           ['conv1', 'maxpool', 'stage2', 'stage3', 'conv5']),
}


def saved_torchvision(builder, path: Path) -> nn.Module:
    """A seeded random torchvision model with non-trivial BN statistics, its state dict saved to ``path``."""
    torch.manual_seed(0)
    model = builder(weights=None).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    torch.save(model.state_dict(), path)
    return model


def build_detector(backbone: dict, checkpoint: Path) -> nn.Module:
    """The shipped YOLO v1 config with ``backbone`` (plus a torchvision init_cfg) in place of its own."""
    init_default_scope('det')
    cfg = Config.fromfile(CONFIG)
    cfg.model.backbone = dict(backbone, init_cfg=dict(type='Pretrained', checkpoint=str(checkpoint),
                                                      convert='torchvision'))
    return MODELS.build(cfg.model)


def assert_resnet18_layer3(model: nn.Module, tv: nn.Module) -> None:
    """After ``init_weights`` the detector's last backbone map is exactly the layer3 output of
    torchvision's resnet18 ``tv``."""
    model.init_weights()
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = tv.layer3(tv.layer2(tv.layer1(tv.maxpool(tv.relu(tv.bn1(tv.conv1(x)))))))
        assert torch.equal(model.backbone(x)[-1], expected)


@pytest.mark.parametrize('out_indices', [(0, 1, 2, 3, 4), (1, 2, 3)])  # (1, 2, 3): stage 4 not built
@pytest.mark.parametrize('case', sorted(CASES))
def test_detector_backbone_gives_torchvision_maps(case, out_indices, tmp_path):
    backbone, builder, nodes = CASES[case]
    tv = saved_torchvision(builder, tmp_path / 'tv.pth')
    model = build_detector(dict(backbone, out_indices=out_indices), tmp_path / 'tv.pth')
    model.init_weights()
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    reference = create_feature_extractor(tv, {nodes[i]: str(i) for i in out_indices})
    with torch.no_grad():
        expected = list(reference(x).values())
        outs = model.backbone(x)
    assert len(outs) == len(expected) == len(out_indices)
    for out, exp in zip(outs, expected):
        assert torch.equal(out, exp)


def test_torchvision_backbone_takes_the_same_init_cfg(tmp_path):
    """TorchvisionBackbone's keys are torchvision's: ``convert='torchvision'`` loads a full resnet18 into
    one cut after layer3, and a state dict without layer4 fails only where layer4 is built."""
    tv = saved_torchvision(torchvision.models.resnet18, tmp_path / 'tv.pth')
    backbone = dict(type='TorchvisionBackbone', name='resnet18', out_indices=(2, 3))
    assert_resnet18_layer3(build_detector(backbone, tmp_path / 'tv.pth'), tv)

    without_layer4 = {k: v for k, v in tv.state_dict().items() if not k.startswith('layer4.')}
    torch.save(without_layer4, tmp_path / 'cut.pth')
    build_detector(backbone, tmp_path / 'cut.pth').init_weights()
    with pytest.raises(ValueError, match=r'no weights for 30 keys .*body\.layer4\.0\.conv1\.weight'):
        build_detector(dict(backbone, out_indices=(2, 3, 4)), tmp_path / 'cut.pth').init_weights()


@pytest.mark.parametrize('backbone, builder, message', [
    # another model: the first tensors already differ
    (dict(type='MobileNetV2', widen_factor=0.5), torchvision.models.resnet18,
     r'layers\.0\.0\.0\.weight has shape \(16, 3, 3, 3\), its torchvision counterpart conv1\.weight '
     r'\(64, 3, 7, 7\)'),
    # another width of the same model
    (dict(type='MobileNetV2', widen_factor=0.5), torchvision.models.mobilenet_v2,
     r'layers\.0\.0\.0\.weight has shape \(16, 3, 3, 3\), its torchvision counterpart features\.0\.0\.weight '
     r'\(32, 3, 3, 3\)'),
    # SNet146: 5x5 depthwise convs and other widths than any torchvision ShuffleNetV2
    (dict(type='SNet', arch='snet146'), torchvision.models.shufflenet_v2_x1_0,
     r'layers\.2\.0\.branch1\.0\.0\.weight has shape \(24, 1, 5, 5\), its torchvision counterpart '
     r'stage2\.0\.branch1\.0\.weight \(24, 1, 3, 3\)'),
    # the other MobileNetV3: same stem, then small's first block has squeeze-excite, large's none
    (dict(type='MobileNetV3', arch='small'), torchvision.models.mobilenet_v3_large,
     r"MobileNetV3\(arch='small', widen_factor=1\.0\): layers\.1\.0\.block\.1\.fc1\.weight has shape "
     r'\(8, 16, 1, 1\), its torchvision counterpart features\.1\.block\.1\.0\.weight \(16, 16, 1, 1\)'),
])
def test_state_dict_of_another_model_is_a_clear_error(backbone, builder, message, tmp_path):
    saved_torchvision(builder, tmp_path / 'tv.pth')
    model = build_detector(backbone, tmp_path / 'tv.pth')
    with pytest.raises(ValueError, match=message):
        model.init_weights()


def test_backbone_without_torchvision_twin_refuses_convert(tmp_path):
    saved_torchvision(torchvision.models.mobilenet_v2, tmp_path / 'tv.pth')
    model = build_detector(dict(type='MobileNetV1'), tmp_path / 'tv.pth')
    with pytest.raises(NotImplementedError, match='MobileNetV1 mirrors no torchvision model'):
        model.init_weights()


def test_missing_torchvision_tensors_name_the_first_unpaired_key():
    arch = {k: v for k, v in SHUFFLENET_V2_X1_0.items() if k != 'type'}
    state = {k: v for k, v in torchvision.models.shufflenet_v2_x1_0().state_dict().items()
             if not k.startswith('conv5.')}
    message = (r"has 336 tensors, the torchvision state dict 330 \(without 'fc\.'\); "
               r'first unpaired key: layers\.4\.4\.0\.weight')
    with pytest.raises(ValueError, match=message):
        MODELS.get('SNet').convert_torchvision(state, **arch)
