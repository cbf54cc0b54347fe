"""``AutocastOptimWrapper`` chosen by a config (``optim_wrapper=dict(type='AutocastOptimWrapper', ...)``),
built the way mmengine's Runner builds it: one ``train_step`` of a detector equals a step written by hand
with ``torch.autocast(bf16)`` and AdamW (the reference), convolutions run in bf16 and the weights stay
fp32; a dtype that needs loss scaling is refused. The autocast device follows the model's parameters:
checked without a GPU by what the wrapper passes to ``torch.autocast`` for each device, and on a GPU
where there is one."""
import copy
import logging
from contextlib import contextmanager

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

import det.engine  # noqa: F401  (registers the optim wrapper)
import det.models  # noqa: F401
from det.engine import AutocastOptimWrapper
from det.engine import autocast_optim_wrapper as wrapper_module
from det.registry import MODELS

# MobileNetV2 + YOLO v1 head, as the shipped configs but small (the tools tests' tiny experiment).
TINY_DETECTOR = dict(type='SingleStageDetector', data_preprocessor=dict(type='DetDataPreprocessor'),
                     backbone=dict(type='MobileNetV2', widen_factor=0.35, out_indices=(2,)),
                     head=dict(type='YOLOV1Head', num_classes=5, feat_channels=32, num_convs=1))


def _batch(num_imgs=2, size=96):

    from tests.conftest import make_sample
    gen = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for _ in range(num_imgs):
        inputs.append(torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=gen))
        samples.append(make_sample([[10.0, 12.0, 50.0, 60.0], [40, 30, 90, 70]], [0, 3], (size, size)))
    return dict(inputs=inputs, data_samples=samples)


def test_config_built_wrapper_matches_a_hand_written_bf16_step():
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('det'):
        model = MODELS.build(TINY_DETECTOR)
        model.init_weights()
        reference = copy.deepcopy(model)
        wrapper = build_optim_wrapper(model, dict(type='AutocastOptimWrapper', dtype='bfloat16',
                                                  optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05)))
    assert isinstance(wrapper, AutocastOptimWrapper)
    conv_dtypes = []
    model.backbone.register_forward_hook(lambda mod, args, out: conv_dtypes.append(out[-1].dtype))
    model.train()
    log_vars = model.train_step(_batch(), wrapper)

    reference.train()
    optimizer = torch.optim.AdamW(reference.parameters(), lr=1e-3, weight_decay=0.05)
    data = reference.data_preprocessor(_batch(), training=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = reference(**data, mode='loss')
    total = sum(losses.values())
    total.backward()
    optimizer.step()

    assert conv_dtypes == [torch.bfloat16]
    assert torch.as_tensor(log_vars['loss']).item() == pytest.approx(total.item(), rel=1e-6)
    for (name, p), p_ref in zip(model.named_parameters(), reference.parameters()):
        assert p.dtype == torch.float32, name
        torch.testing.assert_close(p, p_ref, rtol=1e-6, atol=1e-7, msg=name)


@pytest.mark.parametrize('kwargs, match', [(dict(dtype='float16'), 'loss scaling'),
                                           (dict(dtype='bf16'), 'dtype'),
                                           (dict(device_type='gpu'), 'device_type')])
def test_bad_settings_are_refused(kwargs, match):
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match=match):
        AutocastOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1), **kwargs)


# ------------------------------------------------- the device the model is on (no GPU needed)

def _record_autocast(monkeypatch) -> list:
    """Replace ``torch.autocast`` by a recorder of its (device_type, dtype); the block runs uncast."""
    calls = []

    @contextmanager
    def recorder(device_type, dtype=None, **kwargs):
        calls.append((device_type, dtype))
        yield

    monkeypatch.setattr(torch, 'autocast', recorder)
    return calls


def _model_on(monkeypatch, device: str):
    """A model whose parameters the wrapper reads as being on ``device`` (CPU tensors underneath)."""
    monkeypatch.setattr(wrapper_module, 'parameters_device', lambda model: torch.device(device),
                        raising=False)
    return torch.nn.Linear(2, 2)


@pytest.mark.parametrize('native_bf16', [True, False])
def test_the_dtype_follows_the_device(monkeypatch, native_bf16):
    monkeypatch.setattr(torch.cuda, 'is_bf16_supported', lambda including_emulation=True: native_bf16)
    assert wrapper_module.autocast_dtype(torch.device('cpu'))[0] == torch.bfloat16
    dtype, reason = wrapper_module.autocast_dtype(torch.device('cuda', 0))
    if native_bf16:
        assert dtype == torch.bfloat16
    else:
        assert dtype is None and 'fp32' in reason and '--amp' in reason
    with pytest.raises(ValueError, match='meta'):
        wrapper_module.autocast_dtype(torch.device('meta'))


def test_a_config_built_wrapper_autocasts_on_the_gpu_the_model_is_on(monkeypatch):
    """The shipped configs' ``optim_wrapper = dict(type='AutocastOptimWrapper')`` on a CUDA model: bf16
    autocast for 'cuda', not for 'cpu' (which would leave every CUDA op in fp32)."""
    monkeypatch.setattr(torch.cuda, 'is_bf16_supported', lambda including_emulation=True: True)
    model = _model_on(monkeypatch, 'cuda')
    with DefaultScope.overwrite_default_scope('det'):
        wrapper = build_optim_wrapper(model, dict(type='AutocastOptimWrapper',
                                                  optimizer=dict(type='SGD', lr=0.1)))
    calls = _record_autocast(monkeypatch)
    with wrapper.optim_context(model):
        pass
    assert calls == [('cuda', torch.bfloat16)]


def test_a_gpu_without_native_bf16_trains_in_fp32_and_says_why(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_bf16_supported', lambda including_emulation=True: False)
    logged = []
    monkeypatch.setattr(wrapper_module, 'print_log',
                        lambda msg, *a, **k: logged.append((msg, k.get('level'))), raising=False)
    model = _model_on(monkeypatch, 'cuda')
    wrapper = AutocastOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    calls = _record_autocast(monkeypatch)
    for _ in range(2):
        with wrapper.optim_context(model):
            pass
    assert calls == []
    assert len(logged) == 1 and '--amp' in logged[0][0] and logged[0][1] == logging.WARNING


def test_a_cpu_model_autocasts_on_the_cpu(monkeypatch):
    model = torch.nn.Linear(2, 2)
    wrapper = AutocastOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    calls = _record_autocast(monkeypatch)
    with wrapper.optim_context(model):
        pass
    assert calls == [('cpu', torch.bfloat16)]


def test_an_explicit_device_type_that_is_not_the_models_is_an_error(monkeypatch):
    model = _model_on(monkeypatch, 'cuda')
    wrapper = AutocastOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1), device_type='cpu')
    with pytest.raises(ValueError, match="device_type='cpu' but the model is on cuda"):
        with wrapper.optim_context(model):
            pass


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU')
def test_on_a_real_gpu_the_detector_trains_in_bf16():
    with DefaultScope.overwrite_default_scope('det'):
        model = MODELS.build(TINY_DETECTOR).cuda()
        model.init_weights()
        wrapper = build_optim_wrapper(model, dict(type='AutocastOptimWrapper',
                                                  optimizer=dict(type='AdamW', lr=1e-3)))
    conv_dtypes = []
    model.backbone.register_forward_hook(lambda mod, args, out: conv_dtypes.append(out[-1].dtype))
    model.train()
    log_vars = model.train_step(_batch(), wrapper)
    expected = torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float32
    assert conv_dtypes == [expected]
    assert torch.isfinite(torch.as_tensor(log_vars['loss']))
    assert all(p.dtype == torch.float32 and p.is_cuda for p in model.parameters())
