"""Channels-last (NHWC) as a switch of the data preprocessor: the batch leaves it channels-last with the
same values, the network's maps follow, and losses, gradients and raw outputs of the shipped YOLO v1
and CenterNet configs equal the NCHW ones within float tolerance (fp32)."""
import copy
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import det.models  # noqa: F401  (registers the modules)
from det.models import DetDataPreprocessor
from det.registry import MODELS

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))
from test_shipped_configs import _batch  # noqa: E402  (random images and boxes at a config's input size)

CONFIGS = [REPO / 'configs/yolov1_mobilenetv2_fpn_320_shapes.py',
           REPO / 'configs/centernet_mobilenetv2_fpn_320_shapes.py']


def test_preprocessor_returns_the_same_values_channels_last():
    gen = torch.Generator().manual_seed(0)
    data = dict(inputs=[torch.randint(0, 256, (3, 50, 70), dtype=torch.uint8, generator=gen),
                        torch.randint(0, 256, (3, 64, 40), dtype=torch.uint8, generator=gen)])
    nchw = DetDataPreprocessor()(copy.deepcopy(data))['inputs']
    nhwc = DetDataPreprocessor(channels_last=True)(copy.deepcopy(data))['inputs']
    assert nhwc.shape == nchw.shape == (2, 3, 64, 96)
    assert nhwc.is_contiguous(memory_format=torch.channels_last) and not nchw.is_contiguous(
        memory_format=torch.channels_last)
    assert torch.equal(nhwc, nchw)


def _model_and_batch(config: Path):
    cfg = Config.fromfile(str(config))
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('det'):
        model = MODELS.build(cfg.model)
    model.init_weights()
    return model, _batch(cfg, num_imgs=2)


def _loss_and_grads(model, batch, channels_last: bool, dtype=torch.float32) -> tuple:
    """Losses and parameter gradients (float64 copies) of one training step from the given batch."""
    model.data_preprocessor.channels_last = channels_last
    model.zero_grad()
    data = model.data_preprocessor(copy.deepcopy(batch), training=True)
    losses = model(data['inputs'].to(dtype), data['data_samples'], mode='loss')
    sum(losses.values()).backward()
    grads = {n: p.grad.double() for n, p in model.named_parameters() if p.grad is not None}
    return {k: v.detach().double() for k, v in losses.items()}, grads


def _worst_grad_error(grads: dict, reference: dict) -> float:
    """Largest per-parameter relative error ``|g - ref| / |ref|`` over the parameters whose gradient is not
    negligible (BN biases before another BN get rounding noise only: their true gradient is 0)."""
    scale = max(g.abs().max() for g in reference.values())
    return max(((grads[n] - ref).norm() / ref.norm()).item() for n, ref in reference.items()
               if ref.norm() > 1e-3 * scale)


@pytest.mark.parametrize('config', CONFIGS, ids=lambda p: p.name)
def test_channels_last_training_step_and_inference_equal_nchw(config):
    """Losses equal within 1e-4; gradients are checked against a float64 NCHW step (the reference), where
    fp32 NCHW itself is off by up to ~1% on this from-scratch network with batch-2 BatchNorm; raw
    inference outputs equal within 1e-4."""
    model, batch = _model_and_batch(config)
    maps = []
    model.backbone.register_forward_hook(lambda mod, args, out: maps.append(out[-1]))
    model.train()
    # BatchNorm's running statistics move in each training forward: run every step from the same state.
    state = copy.deepcopy(model.state_dict())
    losses, grads = _loss_and_grads(model, batch, False)
    assert not maps[-1].is_contiguous(memory_format=torch.channels_last)
    model.load_state_dict(state)
    losses_cl, grads_cl = _loss_and_grads(model, batch, True)
    assert maps[-1].is_contiguous(memory_format=torch.channels_last)  # the backbone ran in NHWC
    for key in losses:
        torch.testing.assert_close(losses_cl[key], losses[key], rtol=1e-4, atol=1e-5)
    model.load_state_dict(state)
    _, grads64 = _loss_and_grads(model.double(), batch, False, torch.float64)
    model.float()
    assert grads.keys() == grads_cl.keys() == grads64.keys()
    assert _worst_grad_error(grads, grads64) < 0.05 and _worst_grad_error(grads_cl, grads64) < 0.05

    model.load_state_dict(state)
    model.eval()
    outputs = {}
    for channels_last in (False, True):
        model.data_preprocessor.channels_last = channels_last
        with torch.no_grad():
            data = model.data_preprocessor(copy.deepcopy(batch), training=False)
            outputs[channels_last] = model(data['inputs'], mode='tensor')
    for out_cl, out in zip(outputs[True], outputs[False]):
        torch.testing.assert_close(out_cl, out, rtol=1e-4, atol=1e-4)
