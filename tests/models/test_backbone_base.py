"""Behaviour every backbone inherits from BaseBackbone."""
import torch

from det.models.backbones.mobilenet_v2 import MobileNetV2


def _train_step(model, x):
    model.train()
    out = model(x)
    sum(o.square().mean() for o in out).backward()


def test_with_cp_updates_batchnorm_statistics_once_like_without_it():
    torch.manual_seed(0)
    plain = MobileNetV2(widen_factor=0.35, out_indices=(1, 2), with_cp=False)
    checkpointed = MobileNetV2(widen_factor=0.35, out_indices=(1, 2), with_cp=True)
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 64, requires_grad=True)
    _train_step(plain, x)
    _train_step(checkpointed, x)
    for (name, ref), got in zip(plain.state_dict().items(), checkpointed.state_dict().values()):
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6, msg=name)  # running stats included
    for p, q in zip(plain.parameters(), checkpointed.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-6)


def test_stages_after_last_output_are_dropped_so_every_parameter_trains():
    model = MobileNetV2(widen_factor=0.35, out_indices=(1, 2))
    assert len(model.layers) == 3
    _train_step(model, torch.randn(1, 3, 64, 64))
    assert all(p.grad is not None for p in model.parameters())
