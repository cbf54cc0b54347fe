"""DETR's auxiliary dense head (Co-DETR's hybrid assignment): trained on the encoder map with its own
loss, reaching the backbone, absent from inference, and its classes checked against the set head's."""
import pytest
import torch

from det.registry import MODELS
from tests.conftest import make_sample

SIZE = 64
AUX = dict(type='YOLOV1Head', num_classes=3, feat_channels=16, num_convs=1,
           bbox_coder=dict(type='YOLOV1BBoxCoder', wh_norm=SIZE))


def _model(aux_head=AUX, seed=0):
    torch.manual_seed(seed)
    model = MODELS.build(dict(
        type='DETR', backbone=dict(type='MobileNetV2', widen_factor=0.35, out_indices=(3,)),
        num_queries=5, embed_dims=32, query_type='encoder', aux_head=aux_head,
        encoder=dict(num_layers=1, num_heads=4, ffn_dims=64, dropout=0.0),
        decoder=dict(num_layers=1, num_heads=4, ffn_dims=64, dropout=0.0),
        head=dict(type='DETRHead', num_classes=3)))
    model.init_weights()
    return model


def _data(model):
    sample = make_sample([[4.0, 8.0, 30.0, 40.0]], [2], (SIZE, SIZE))
    inputs = [torch.randint(0, 255, (3, SIZE, SIZE), dtype=torch.uint8)]
    return model.data_preprocessor(dict(inputs=inputs, data_samples=[sample]), training=True)


def test_aux_head_reads_the_encoder_map_and_trains_the_backbone():
    model = _model().train()
    assert model.aux_head.in_channels == 32 and model.aux_head.stride == 16
    data = _data(model)
    losses = model.loss(data['inputs'], data['data_samples'])
    aux = {name: value for name, value in losses.items() if name.startswith('aux.')}
    assert aux and all(value.isfinite() and value > 0 for value in aux.values())
    model.zero_grad()
    sum(aux.values()).backward()
    assert next(model.backbone.parameters()).grad.abs().sum() > 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.decoder.parameters())


def test_aux_head_does_not_change_predictions():
    with_aux, without = _model().eval(), _model(aux_head=None).eval()
    without.load_state_dict({k: v for k, v in with_aux.state_dict().items() if not k.startswith('aux_head.')})
    data = _data(with_aux)
    with torch.no_grad():
        a = with_aux(data['inputs'], data['data_samples'], mode='predict')[0].pred_instances
        b = without(data['inputs'], data['data_samples'], mode='predict')[0].pred_instances
    torch.testing.assert_close(a.bboxes, b.bboxes)
    torch.testing.assert_close(a.scores, b.scores)


def test_aux_head_classes_must_match():
    with pytest.raises(ValueError, match='aux_head has 4 classes but head has 3'):
        _model(aux_head=dict(AUX, num_classes=4))
