"""Behaviour every backbone inherits from BaseBackbone."""
import inspect

import pytest
import torch
from test_backbone_registry import MINIMAL_CONFIGS, registered_backbones

from det.models.backbones.mobilenet_v2 import MobileNetV2
from det.registry import MODELS


def _train_step(model, x):
    model.train()
    out = model(x)
    sum(o.square().mean() for o in out).backward()


def _with_cp_backbones():
    """Every registered backbone whose constructor takes ``with_cp``, so a new family is covered."""
    return [name for name in registered_backbones()
            if 'with_cp' in inspect.signature(MODELS.get(name).__init__).parameters]


def test_every_with_cp_family_is_in_the_statistics_test():
    assert {'MobileNetV2', 'TorchvisionBackbone', 'EfficientNet', 'SNet'} <= set(_with_cp_backbones())


@pytest.mark.parametrize('name', _with_cp_backbones())
def test_with_cp_updates_batchnorm_statistics_once_like_without_it(name):
    """One training step with gradient checkpointing leaves the same BatchNorm running statistics (and
    gradients) as without: the recomputation in backward must not count the batch a second time."""
    cfg = dict(type=name, **MINIMAL_CONFIGS[name], out_indices=(1, 2))  # strides 4 and 8: a few blocks
    if name == 'EfficientNet':
        cfg['drop_path_rate'] = 0.0  # stochastic depth draws differ between the two models' streams
    torch.manual_seed(0)
    plain = MODELS.build(dict(cfg, with_cp=False))
    checkpointed = MODELS.build(dict(cfg, with_cp=True))
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 64, requires_grad=True)
    _train_step(plain, x)
    _train_step(checkpointed, x)
    counts = [v for k, v in checkpointed.state_dict().items() if k.endswith('num_batches_tracked')]
    assert counts and all(int(c) == 1 for c in counts), 'BatchNorms counted the step more than once'
    for (key, ref), got in zip(plain.state_dict().items(), checkpointed.state_dict().values()):
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6, msg=key)  # running stats included
    for (pname, p), q in zip(plain.named_parameters(), checkpointed.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-6, msg=pname)


def test_stages_after_last_output_are_dropped_so_every_parameter_trains():
    model = MobileNetV2(widen_factor=0.35, out_indices=(1, 2))
    assert len(model.layers) == 3
    _train_step(model, torch.randn(1, 3, 64, 64))
    assert all(p.grad is not None for p in model.parameters())
