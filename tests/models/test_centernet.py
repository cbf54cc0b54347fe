"""CenterNet: radius and heatmap targets against hand formulas, losses against hand-computed values,
an encode → decode round trip in original pixels, and a short learning run scored with pycocotools."""
import math

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from torch import nn

import det.models  # noqa: F401  (registers the modules)
from det.models.task_modules import CenterNetTargetGenerator, gaussian_radius
from det.registry import MODELS
from det.structures import instances_to_original
from tests.conftest import ToyBackbone, ap50, make_sample, toy_data


def decode_to_original(head, heatmap, wh, offset, samples) -> list:
    """The head's decoding (network-input pixels), then the detector's one rescaling step."""
    results = head.predict_by_feat(heatmap, wh, offset, batch_img_metas=[s.metainfo for s in samples])
    return [instances_to_original(r, s.metainfo) for r, s in zip(results, samples)]


def make_head(**kwargs):
    cfg = dict(type='CenterNetHead', num_classes=3, in_channels=[8], strides=[4], feat_channels=8)
    cfg.update(kwargs)
    return MODELS.build(cfg)


# ------------------------------------------------------------------------------------------ radius


def _reference_radius(h, w, o):
    """The three corner-tolerance cases written from their IoU equations as polynomials in r.

    The reference code's value for each case is ``(b + sqrt(b^2 - 4ac)) / 2`` with its own coefficient
    signs, which equals ``a`` times the larger root of the case polynomial (leading coefficients a = 1,
    4 and 4o after the reference's normalisation)."""
    P = np.polynomial.Polynomial
    r = P([0, 1])
    # (1) one corner in, one out: (h-r)(w-r) / (2hw - (h-r)(w-r)) = o  →  divide by (1 + o)
    case1 = ((h - r) * (w - r) * (1 + o) - 2 * o * h * w) / (1 + o)
    # (2) both corners in: (h-2r)(w-2r) / hw = o
    case2 = (h - 2 * r) * (w - 2 * r) - o * h * w
    # (3) both corners out: hw / ((h+2r)(w+2r)) = o  →  sign chosen so the r^2 coefficient is +4o
    case3 = o * (h + 2 * r) * (w + 2 * r) - h * w
    values = []
    for poly, a in ((case1, 1.0), (case2, 4.0), (case3, 4 * o)):
        assert poly.coef[2] == pytest.approx(a)
        values.append(a * max(poly.roots().real))
    return min(values)


@pytest.mark.parametrize('h, w', [(10, 10), (3, 17), (40, 25), (1, 100), (7.0, 7.0), (128, 64)])
def test_gaussian_radius_matches_reference_formula(h, w):
    assert float(gaussian_radius((h, w), 0.7)) == pytest.approx(_reference_radius(h, w, 0.7), rel=1e-9)
    assert float(gaussian_radius((h, w), 0.5)) == pytest.approx(_reference_radius(h, w, 0.5), rel=1e-9)


def test_gaussian_radius_known_value_and_vectorised():
    # h = w = 10, o = 0.7, case 3 by hand: a = 2.8, b = -28, c = -30, (b + sqrt(784 + 336)) / 2
    assert float(gaussian_radius((10, 10))) == pytest.approx((-28 + math.sqrt(1120)) / 2, abs=1e-12)
    hs, ws = torch.tensor([10.0, 3.0, 40.0]), torch.tensor([10.0, 17.0, 25.0])
    vec = gaussian_radius((hs, ws))
    assert vec.shape == (3,)
    for v, h, w in zip(vec, hs.tolist(), ws.tolist()):
        assert float(v) == pytest.approx(_reference_radius(h, w, 0.7), rel=1e-9)


# ----------------------------------------------------------------------------------------- targets


def _gaussian(cx, cy, radius, shape):
    """Hand-written windowed Gaussian of the paper: exp(-(dx^2 + dy^2) / (2 sigma^2)), sigma = (2r+1)/6."""
    sigma = (2 * radius + 1) / 6
    ys, xs = np.mgrid[:shape[0], :shape[1]]
    dx, dy = xs - cx, ys - cy
    g = np.exp(-(dx ** 2 + dy ** 2) / (2 * sigma ** 2))
    return np.where((np.abs(dx) <= radius) & (np.abs(dy) <= radius), g, 0.0)


def test_heatmap_peak_and_gaussian_values():
    box = [18.0, 30.0, 98.0, 78.0]           # on the stride-4 grid: w 20, h 12, centre (14.5, 13.5)
    t = CenterNetTargetGenerator()(torch.tensor([box]), torch.tensor([1]), 3, (32, 40), 4)
    heat = t.heatmap
    assert heat.shape == (3, 32, 40)
    assert heat[0].abs().sum() == 0 and heat[2].abs().sum() == 0
    assert heat[1, 13, 14] == 1.0 and heat.eq(1).sum() == 1
    radius = int(_reference_radius(12, 20, 0.7))
    assert radius == 4                       # case 3: (-44.8 + sqrt(44.8^2 + 4 * 2.8 * 72)) / 2 = 4.12
    sigma = (2 * radius + 1) / 6
    for dx, dy in [(1, 0), (0, -2), (2, 1), (-3, 3)]:
        expected = math.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma))
        assert float(heat[1, 13 + dy, 14 + dx]) == pytest.approx(expected, rel=1e-5)
    assert heat[1, 13, 14 + radius + 1] == 0 and heat[1, 13 - radius - 1, 14] == 0
    assert (heat[1] > 0).sum() == (2 * radius + 1) ** 2
    assert t.inds.tolist() == [13 * 40 + 14]
    assert torch.allclose(t.wh, torch.tensor([[20.0, 12.0]]))
    assert torch.allclose(t.offset, torch.tensor([[0.5, 0.5]]))


def test_overlapping_boxes_of_one_class_take_elementwise_max():
    boxes = torch.tensor([[8.0, 8.0, 72.0, 56.0], [24.0, 16.0, 88.0, 64.0], [0.0, 0.0, 40.0, 40.0]])
    labels = torch.tensor([2, 2, 0])
    heat = CenterNetTargetGenerator()(boxes, labels, 3, (24, 24), 4).heatmap.numpy()
    gauss = []
    for x1, y1, x2, y2 in (boxes / 4).tolist():
        radius = max(0, int(_reference_radius(math.ceil(y2 - y1), math.ceil(x2 - x1), 0.7)))
        gauss.append(_gaussian(int((x1 + x2) / 2), int((y1 + y2) / 2), radius, (24, 24)))
    overlap = (gauss[0] > 0) & (gauss[1] > 0)
    assert overlap.any() and (gauss[0][overlap] > gauss[1][overlap]).any() \
        and (gauss[0][overlap] < gauss[1][overlap]).any()     # each box wins somewhere in the overlap
    np.testing.assert_allclose(heat[2], np.maximum(gauss[0], gauss[1]), atol=1e-6)
    np.testing.assert_allclose(heat[0], gauss[2], atol=1e-6)
    assert heat[1].sum() == 0


def test_targets_empty_and_degenerate_boxes():
    gen = CenterNetTargetGenerator()
    t = gen(torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64), 2, (8, 8), 4)
    assert t.heatmap.shape == (2, 8, 8) and t.heatmap.sum() == 0 and t.inds.numel() == 0
    boxes = torch.tensor([[5.0, 5.0, 5.0, 20.0], [40.0, 40.0, 60.0, 60.0]])   # zero width; outside the map
    t = gen(boxes, torch.tensor([0, 1]), 2, (8, 8), 4)
    assert t.inds.numel() == 0 and t.heatmap.sum() == 0


# ------------------------------------------------------------------------------------------ losses


def _set_constant_prediction(head, heat_logit, wh_value, offset_value):
    for branch, value in ((head.heatmap_branch, heat_logit), (head.wh_branch, wh_value),
                          (head.offset_branch, offset_value)):
        nn.init.zeros_(branch[-1].weight)
        nn.init.constant_(branch[-1].bias, value)


def test_loss_empty_gt():
    head = make_head()
    feats = (torch.randn(2, 8, 16, 16),)
    samples = [make_sample([], [], (64, 64)) for _ in range(2)]
    losses = head.loss(feats, samples)
    assert set(losses) == {'loss_heatmap', 'loss_wh', 'loss_offset'}
    assert losses['loss_heatmap'] > 0
    assert losses['loss_wh'].item() == 0 and losses['loss_offset'].item() == 0
    assert losses['loss_wh'].requires_grad and losses['loss_offset'].requires_grad
    sum(losses.values()).backward()
    assert head.heatmap_branch[-1].bias.grad.abs().sum() > 0
    assert head.wh_branch[-1].bias.grad.abs().sum() == 0


def test_loss_one_box_hand_checked():
    p, wh_c, off_c = 0.1, 3.0, 0.25
    head = make_head()
    _set_constant_prediction(head, math.log(p / (1 - p)), wh_c, off_c)
    box = [10.0, 6.0, 50.0, 30.0]              # grid: w 10, h 6, centre (7.5, 4.5)
    losses = head.loss((torch.randn(1, 8, 16, 16),), [make_sample([box], [2], (64, 64))])

    radius = max(0, int(_reference_radius(6, 10, 0.7)))
    gt = np.zeros((3, 16, 16))
    gt[2] = _gaussian(7, 4, radius, (16, 16))
    pos = gt == 1
    assert pos.sum() == 1
    expected_heat = (-(1 - p) ** 2 * math.log(p)
                     + np.sum(-(1 - gt[~pos]) ** 4 * p ** 2 * math.log(1 - p))) / 1
    assert losses['loss_heatmap'].item() == pytest.approx(expected_heat, rel=1e-4)
    assert losses['loss_wh'].item() == pytest.approx(0.1 * (abs(wh_c - 10) + abs(wh_c - 6)) / 2, rel=1e-5)
    assert losses['loss_offset'].item() == pytest.approx((abs(off_c - 0.5) + abs(off_c - 0.5)) / 2, rel=1e-5)


def test_gaussian_focal_loss_module_against_formula():
    loss = MODELS.build(dict(type='GaussianFocalLoss', loss_weight=2.0))
    gt = torch.tensor([[1.0, 0.5, 0.0], [0.9, 1.0, 0.2]])
    pred = torch.tensor([[0.7, 0.3, 0.05], [0.6, 0.99, 0.0]])   # 0.0 is clamped to 1e-4
    p = pred.clamp(1e-4, 1 - 1e-4).double()
    expected = (-(0.3 ** 2) * math.log(0.7) - (0.01 ** 2) * math.log(0.99)
                - sum((1 - g) ** 4 * q ** 2 * math.log(1 - q)
                      for g, q in zip([0.5, 0.0, 0.9, 0.2], p[[0, 0, 1, 1], [1, 2, 0, 2]].tolist()))) / 2
    assert loss(pred, gt).item() == pytest.approx(2.0 * expected, rel=1e-5)


# --------------------------------------------------------------------------------- head and decode


def test_head_upsamples_to_stride_4_and_rejects_bad_strides():
    head = make_head(in_channels=[8, 16], strides=[8, 16], in_index=1, deconv_channels=[12, 10])
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in head.deconv) == 2
    heat, wh, offset = head((torch.randn(2, 8, 8, 8), torch.randn(2, 16, 4, 4)))
    assert heat.shape == (2, 3, 16, 16) and wh.shape == (2, 2, 16, 16) and offset.shape == (2, 2, 16, 16)
    assert torch.allclose(head.heatmap_branch[-1].bias, torch.tensor(-2.19))
    for strides in ([2], [12], [24]):
        with pytest.raises(ValueError, match='stride'):
            make_head(strides=strides)
    with pytest.raises(ValueError, match='deconv_channels'):
        make_head(strides=[32], deconv_channels=[8, 8])


def test_encode_decode_round_trip_in_original_pixels():
    scale = (1.6, 1.25)                          # resized / original (sx, sy)
    ori = torch.tensor([[0.0, 0.0, 37.0, 21.0],            # touches the top-left corner
                        [150.0, 80.0, 200.0, 160.0],       # touches the right and bottom borders
                        [60.5, 40.25, 71.75, 47.0],        # small
                        [20.0, 90.0, 130.0, 150.0],        # large
                        [101.0, 3.0, 119.0, 60.0]])
    labels = [0, 2, 1, 2, 0]
    resized = ori * torch.tensor([scale[0], scale[1]] * 2)
    # ori (h, w) = (160, 200) → img_shape (200, 320), padded batch (224, 320)
    sample = make_sample(resized.tolist(), labels, (200, 320), scale, batch_shape=(224, 320))
    assert sample.metainfo['ori_shape'] == (160, 200)
    t = CenterNetTargetGenerator()(resized, torch.tensor(labels), 3, (56, 80), 4)
    heat_logits = torch.logit(t.heatmap, eps=1e-6)[None]
    wh = torch.zeros(1, 2, 56 * 80)
    offset = torch.zeros(1, 2, 56 * 80)
    wh[0, :, t.inds] = t.wh.T
    offset[0, :, t.inds] = t.offset.T
    head = make_head(test_cfg=dict(topk=100))
    result = decode_to_original(head, heat_logits, wh.view(1, 2, 56, 80), offset.view(1, 2, 56, 80),
                                [sample])[0]
    assert len(result) == 100
    top = result.scores.argsort(descending=True)[:5]
    assert (result.scores[top] > 0.99).all() and (result.scores[result.scores.argsort()[:-5]] < 1e-3).all()
    found = result.bboxes[top]
    for box, label in zip(ori, labels):
        err = (found - box).abs().max(dim=1).values
        i = int(err.argmin())
        assert err[i] < 1e-3, (box, found[i])
        assert result.labels[top][i] == label


def test_decode_optional_nms():
    heat = torch.full((1, 2, 16, 16), -10.0)
    heat[0, 1, 5, 5] = 4.0
    heat[0, 1, 5, 7] = 3.0                      # same class, 2 cells away (survives the 3x3 peak test)
    heat[0, 0, 5, 7] = 2.0                      # other class, same place: class-wise NMS keeps it
    wh = torch.full((1, 2, 16, 16), 8.0)        # boxes [4, 4, 36, 36] and [12, 4, 44, 36]: IoU 0.6
    offset = torch.zeros(1, 2, 16, 16)
    sample = make_sample([], [], (64, 64))
    plain = decode_to_original(make_head(num_classes=2, test_cfg=dict(topk=3)), heat, wh, offset, [sample])[0]
    nms = decode_to_original(make_head(num_classes=2, test_cfg=dict(topk=3, nms=dict(iou_thr=0.5))),
                             heat, wh, offset, [sample])[0]
    assert len(plain) == 3 and len(nms) == 2
    assert plain.labels.tolist() == [1, 1, 0] and sorted(nms.labels.tolist()) == [0, 1]
    assert torch.allclose(plain.bboxes[:2], torch.tensor([[4.0, 4.0, 36.0, 36.0], [12.0, 4.0, 44.0, 36.0]]))


# ---------------------------------------------------------------------------------------- learning


MODELS.register_module('TinyCenterNetTestBackbone', force=True, module=ToyBackbone)


@pytest.mark.slow
def test_short_training_run_learns_toy_boxes():
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('det'):
        model = MODELS.build(dict(
            type='SingleStageDetector', backbone=dict(type='TinyCenterNetTestBackbone'),
            head=dict(type='CenterNetHead', num_classes=2, deconv_channels=32, feat_channels=32)))
    inputs, samples = toy_data()
    model.eval()
    with torch.no_grad():
        ap_before = ap50(samples, model(inputs, samples, mode='predict'), 2)
    model.train()
    optim = torch.optim.Adam(model.parameters(), lr=3e-3)
    history = []
    for _ in range(150):
        losses = model(inputs, samples, mode='loss')
        loss = sum(losses.values())
        optim.zero_grad()
        loss.backward()
        optim.step()
        history.append(loss.item())
    model.eval()
    with torch.no_grad():
        ap_after = ap50(samples, model(inputs, samples, mode='predict'), 2)
    print(f'loss {history[0]:.3f} -> {np.mean(history[-10:]):.3f}, AP50 {ap_before:.3f} -> {ap_after:.3f}')
    assert np.mean(history[-10:]) < 0.3 * history[0]
    assert ap_before < 0.1
    assert ap_after > 0.5
