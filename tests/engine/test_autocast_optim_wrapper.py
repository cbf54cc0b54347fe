"""``AutocastOptimWrapper`` chosen by a config (``optim_wrapper=dict(type='AutocastOptimWrapper', ...)``),
built the way mmengine's Runner builds it: one ``train_step`` of a detector equals a step written by hand
with ``torch.autocast(bf16)`` and AdamW (the reference), convolutions run in bf16 and the weights stay
fp32; a dtype that needs loss scaling is refused."""
import copy

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

import det.engine  # noqa: F401  (registers the optim wrapper)
import det.models  # noqa: F401
from det.engine import AutocastOptimWrapper
from det.registry import MODELS

# MobileNetV2 + YOLO v1 head, as the shipped configs but small (the tools tests' tiny experiment).
TINY_DETECTOR = dict(type='SingleStageDetector', data_preprocessor=dict(type='DetDataPreprocessor'),
                     backbone=dict(type='MobileNetV2', widen_factor=0.35, out_indices=(2,)),
                     head=dict(type='YOLOV1Head', num_classes=5, feat_channels=32, num_convs=1))


def _batch(num_imgs=2, size=96):
    from mmengine.structures import InstanceData

    from det.structures import DetDataSample
    gen = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for _ in range(num_imgs):
        inputs.append(torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=gen))
        sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                             scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(bboxes=torch.tensor([[10.0, 12.0, 50.0, 60.0], [40, 30, 90, 70]]),
                                           labels=torch.tensor([0, 3]))
        samples.append(sample)
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
