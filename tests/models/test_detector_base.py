"""The detector skeleton every detector shares (det/models/detectors/base.py): channels and strides
handed from the backbone to the neck and heads, one ``extract_feat``, and ground truth checked before
any loss (zero-area boxes dropped with a warning, so the loss equals the loss without them; malformed
boxes an error naming the image), for the single-stage and the query-based detector alike (the
two-stage one is covered in tests/models/two_stage)."""
import pytest
import torch
from mmengine.structures import InstanceData

import det.models  # noqa: F401  (registers the modules)
from det.models.detectors import DETR, BaseDetector, SingleStageDetector, TwoStageDetector
from det.registry import MODELS
from det.structures import DetDataSample

BACKBONE = dict(type='MobileNetV2', widen_factor=0.35, out_indices=(2, 3))
DETECTORS = {
    'single_stage': dict(type='SingleStageDetector', backbone=BACKBONE,
                         neck=dict(type='FPN', out_channels=16, out_indices=(0,)),
                         head=dict(type='CenterNetHead', num_classes=3, deconv_channels=16,
                                   feat_channels=16)),
    'detr': dict(type='DETR', backbone=dict(BACKBONE, out_indices=(3,)), num_queries=6, embed_dims=32,
                 encoder=dict(num_layers=1, num_heads=4, ffn_dims=64, dropout=0.0),
                 decoder=dict(num_layers=1, num_heads=4, ffn_dims=64, dropout=0.0),
                 head=dict(type='DETRHead', num_classes=3)),
}
VALID = [[4.0, 6.0, 30.0, 40.0], [20.0, 10.0, 60.0, 50.0]]


def _build(name):
    torch.manual_seed(0)
    model = MODELS.build(DETECTORS[name])
    model.init_weights()
    return model.train()


def _sample(boxes, labels=None, path='img_7.jpg'):
    sample = DetDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64), scale_factor=(1.0, 1.0),
                                         img_path=path))
    sample.gt_instances = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                                       labels=torch.tensor(labels or [0] * len(boxes)))
    return sample


def test_every_detector_shares_the_skeleton():
    for cls in (SingleStageDetector, TwoStageDetector, DETR):
        assert cls.extract_feat is BaseDetector.extract_feat and cls.loss is BaseDetector.loss
    model = _build('single_stage')
    assert model.feat_channels == [16] and model.feat_strides == [8]      # the neck's, from the backbone's
    assert model.head.in_channels == 16 and model.head.stride == 8


@pytest.mark.parametrize('name', DETECTORS)
def test_zero_area_boxes_are_dropped_before_the_loss(name):
    model = _build(name)
    inputs = torch.randn(1, 3, 64, 64)
    torch.manual_seed(1)
    expected = model(inputs, [_sample(VALID, [0, 2])], mode='loss')
    degenerate = _sample(VALID[:1] + [[12.0, 12.0, 12.0, 40.0], [50.0, 30.0, 40.0, 45.0]] + VALID[1:],
                         [0, 1, 1, 2])
    torch.manual_seed(1)
    losses = model(inputs, [degenerate], mode='loss')
    assert len(degenerate.gt_instances) == 2
    assert set(losses) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(losses[key], value, msg=key)


@pytest.mark.parametrize('name', DETECTORS)
def test_non_finite_boxes_name_the_image(name):
    model = _build(name)
    with pytest.raises(ValueError, match='img_7.jpg'):
        model(torch.randn(1, 3, 64, 64), [_sample([[1.0, 2.0, float('inf'), 9.0]])], mode='loss')
