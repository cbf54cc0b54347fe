"""YOLO v1: assigner, loss against a hand computation of the paper's eq. 3, decoding, and a short overfit
run (60 Adam steps).

References are independent of the code under test: a pure-Python IoU / sigmoid / softmax, and the paper's
formula written out cell by cell.
"""
import math

import pytest
import torch
from torch import nn

from det.models import DetDataPreprocessor  # importing det.models registers the modules
from det.registry import MODELS, TASK_UTILS
from det.structures import instances_to_original
from tests.conftest import ap50, make_sample


def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _sig(v):
    return 1.0 / (1.0 + math.exp(-v))


def _raw_head(num_classes=2, num_boxes=2, stride=16, **kwargs):
    """A head whose forward passes its input through, so tests feed hand-built raw predictions."""
    head = MODELS.build(dict(type='YOLOV1Head', num_classes=num_classes, num_boxes=num_boxes, num_convs=0,
                             in_channels=[num_boxes * 5 + num_classes], strides=[stride], **kwargs))
    head.out = nn.Identity()
    return head


# ----------------------------------------------------------------------------------------------- assigner
def test_assigner_empty_gt():
    assigner = TASK_UTILS.build(dict(type='YOLOV1Assigner'))
    preds = torch.rand(3 * 4 * 2, 4) * 10
    preds[:, 2:] += preds[:, :2]
    res = assigner.assign(preds, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), (3, 4), 8, 5)
    assert res.gt_inds.shape == (24,) and (res.gt_inds == -1).all()
    assert (res.ious == 0).all() and res.cls_targets.shape == (12, 5) and (res.cls_targets == 0).all()


def test_assigner_one_gt_picks_cell_of_centre_and_best_iou_predictor():
    torch.manual_seed(0)
    s_h, s_w, stride, num_boxes = 4, 5, 8, 3
    xy = torch.rand(s_h * s_w * num_boxes, 2) * 30
    preds = torch.cat([xy, xy + 4 + torch.rand_like(xy) * 20], dim=1)
    gt = [13.0, 17.0, 27.0, 29.0]                                     # centre (20, 23) -> col 2, row 2
    res = TASK_UTILS.build(dict(type='YOLOV1Assigner')).assign(
        preds, torch.tensor([gt]), torch.tensor([3]), (s_h, s_w), stride, 4)
    cell = math.floor(23 / stride) * s_w + math.floor(20 / stride)
    cand = [cell * num_boxes + b for b in range(num_boxes)]
    ious = [_iou(preds[i].tolist(), gt) for i in cand]
    best = cand[max(range(num_boxes), key=lambda b: ious[b])]
    assert (res.gt_inds >= 0).nonzero().flatten().tolist() == [best] and res.gt_inds[best] == 0
    assert (res.gt_inds >= 0).sum() == 1
    assert res.ious[best].item() == pytest.approx(max(ious), abs=1e-6)
    expected_cls = torch.zeros(s_h * s_w, 4)
    expected_cls[cell, 3] = 1
    assert torch.equal(res.cls_targets, expected_cls)


def test_assigner_several_gts_in_one_cell_share_predictors_greedily():
    # One 1x1 grid cell of stride 32 with two predictors; both ground truths prefer predictor 1.
    preds = torch.tensor([[0.0, 0.0, 32.0, 32.0], [4.0, 4.0, 20.0, 20.0]])
    gts = torch.tensor([[4.0, 4.0, 20.0, 22.0],     # IoU with p1 = 256/288, with p0 = 288/1024
                        [6.0, 6.0, 22.0, 22.0],     # IoU with p1 = 196/316, with p0 = 256/1024
                        [14.0, 14.0, 18.0, 18.0]])  # third one: no predictor left, dropped
    labels = torch.tensor([0, 1, 1])
    assigner = TASK_UTILS.build(dict(type='YOLOV1Assigner'))
    res = assigner.assign(preds, gts[:2], labels[:2], (1, 1), 32, 2)
    assert res.gt_inds.tolist() == [1, 0]           # gt 0 takes p1 (highest IoU pair), gt 1 gets p0
    assert res.ious.tolist() == pytest.approx([256 / 1024, 256 / 288])
    assert res.cls_targets.tolist() == [[0.5, 0.5]]
    res = assigner.assign(preds, gts, labels, (1, 1), 32, 2)
    assert res.gt_inds.tolist() == [1, 0]
    assert res.cls_targets.tolist() == [[0.5, 0.5]]


# ----------------------------------------------------------------------------------------------- loss
def test_loss_empty_gt_only_noobj_term():
    head = MODELS.build(dict(type='YOLOV1Head', num_classes=3, in_channels=[8], strides=[8],
                             feat_channels=16, num_convs=1))
    feats = (torch.randn(2, 8, 4, 6),)
    losses = head.loss(feats, [make_sample([], [], (32, 48)), make_sample([], [], (32, 48))])
    assert set(losses) == {'loss_xy', 'loss_wh', 'loss_obj', 'loss_noobj', 'loss_cls'}
    assert losses['loss_noobj'].item() > 0
    for key in ('loss_xy', 'loss_wh', 'loss_obj', 'loss_cls'):
        assert losses[key].item() == 0.0
    sum(losses.values()).backward()
    assert head.out.weight.grad.abs().sum() > 0


def test_loss_one_box_all_terms_positive():
    head = MODELS.build(dict(type='YOLOV1Head', num_classes=3, in_channels=[8], strides=[8],
                             feat_channels=16, num_convs=1))
    losses = head.loss((torch.randn(1, 8, 4, 6),), [make_sample([[10, 5, 30, 25]], [2], (32, 48))])
    assert all(v.item() > 0 for v in losses.values())
    sum(losses.values()).backward()


CONF_LOSSES = {'sse': dict(type='MSELoss', use_sigmoid=True), 'bce': dict(type='BinaryCrossEntropyLoss')}


@pytest.mark.parametrize('conf_loss,cls_loss', [('sse', 'sse'), ('bce', 'sse'), ('bce', 'ce')])
@pytest.mark.parametrize('iou_target', [True, False])
def test_loss_matches_hand_computation_of_paper_formula(iou_target, conf_loss, cls_loss):
    """The paper's eq. 3; ``cls_loss='ce'``: the class term as cross-entropy of the cell's softmax."""
    torch.manual_seed(1)
    B, C, stride, s_h, s_w = 2, 2, 16, 2, 3                           # non-square grid: input 32 x 48
    head = _raw_head(C, B, stride, iou_target=iou_target,
                     bbox_coder=dict(type='YOLOV1BBoxCoder', wh_norm=(48, 32)),
                     loss_obj=dict(CONF_LOSSES[conf_loss], loss_weight=1.0),
                     loss_noobj=dict(CONF_LOSSES[conf_loss], loss_weight=0.5),
                     loss_cls=dict(type='CrossEntropyLoss' if cls_loss == 'ce' else 'MSELoss'))

    def conf_error(conf, target):
        if conf_loss == 'sse':
            return (conf - target) ** 2
        return -(target * math.log(conf) + (1 - target) * math.log(1 - conf))

    raw = torch.rand(2, B * 5 + C, s_h, s_w) * 4 - 2
    gts = [([36.0, 20.0, 46.0, 30.0], 1), ([2.0, 3.0, 20.0, 14.0], 0)]  # cells (row 1, col 2), (0, 0)
    samples = [make_sample([g for g, _ in gts], [lab for _, lab in gts], (32, 48)),
               make_sample([], [], (32, 48))]
    losses = head.loss((raw,), samples)

    expected = dict(loss_xy=0.0, loss_wh=0.0, loss_obj=0.0, loss_noobj=0.0, loss_cls=0.0)
    for img in range(2):
        r = raw[img].tolist()
        for row in range(s_h):
            for col in range(s_w):
                preds = []
                for b in range(B):
                    x, y, sw, sh, conf = (_sig(r[5 * b + k][row][col]) for k in range(5))
                    cx, cy, w, h = (col + x) * stride, (row + y) * stride, sw ** 2 * 48, sh ** 2 * 32
                    preds.append((x, y, sw, sh, conf, [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]))
                in_cell = [(g, lab) for g, lab in (gts if img == 0 else [])
                           if math.floor((g[0] + g[2]) / 2 / stride) == col
                           and math.floor((g[1] + g[3]) / 2 / stride) == row]
                resp = None
                if in_cell:
                    (g, lab), = in_cell
                    ious = [_iou(p[5], g) for p in preds]
                    resp = max(range(B), key=lambda b: ious[b])
                    x, y, sw, sh, conf, _ = preds[resp]
                    tx, ty = (g[0] + g[2]) / 2 / stride - col, (g[1] + g[3]) / 2 / stride - row
                    tw, th = math.sqrt((g[2] - g[0]) / 48), math.sqrt((g[3] - g[1]) / 32)
                    expected['loss_xy'] += 5 * ((x - tx) ** 2 + (y - ty) ** 2)
                    expected['loss_wh'] += 5 * ((sw - tw) ** 2 + (sh - th) ** 2)
                    expected['loss_obj'] += conf_error(conf, ious[resp] if iou_target else 1.0)
                    logits = [r[B * 5 + c][row][col] for c in range(C)]
                    norm = sum(math.exp(v) for v in logits)
                    probs = [math.exp(v) / norm for v in logits]
                    expected['loss_cls'] += (-math.log(probs[lab]) if cls_loss == 'ce'
                                             else sum((probs[c] - (c == lab)) ** 2 for c in range(C)))
                for b in range(B):
                    if b != resp:
                        expected['loss_noobj'] += 0.5 * conf_error(preds[b][4], 0.0)
    for key, value in expected.items():
        assert losses[key].item() == pytest.approx(value / 2, rel=1e-5), key


def test_box_encoding_does_not_depend_on_batch_padding():
    """The same image and prediction, alone or padded into a larger batch, gives the same box losses and
    the same decoded boxes (the size normaliser is the coder's fixed ``wh_norm``, not the batch extent)."""
    torch.manual_seed(0)
    head = _raw_head(2, 2, 16, bbox_coder=dict(type='YOLOV1BBoxCoder', wh_norm=64))
    raw = torch.rand(1, 12, 2, 3) * 4 - 2
    padded = torch.full((1, 12, 4, 5), -20.0)                         # padding cells: confidence ~ 0
    padded[..., :2, :3] = raw
    gt = [[36.0, 20.0, 46.0, 30.0], [2.0, 3.0, 20.0, 14.0]]
    alone = head.loss((raw,), [make_sample(gt, [1, 0], (32, 48))])
    in_batch = head.loss((padded,), [make_sample(gt, [1, 0], (64, 80))])
    for key in ('loss_xy', 'loss_wh', 'loss_obj', 'loss_cls'):
        assert in_batch[key].item() == pytest.approx(alone[key].item(), rel=1e-6), key
    boxes_alone = head.predict((raw,), [make_sample([], [], (32, 48))])[0]
    boxes_padded = head.predict((padded,), [make_sample([], [], (64, 80))])[0]
    assert torch.allclose(boxes_alone.bboxes[:3], boxes_padded.bboxes[:3])


# ----------------------------------------------------------------------------------------------- predict
def test_predict_decodes_hand_built_prediction():
    B, C, stride = 2, 2, 16
    head = _raw_head(C, B, stride, bbox_coder=dict(type='YOLOV1BBoxCoder', wh_norm=(48, 32)))
    raw = torch.zeros(1, B * 5 + C, 2, 3)
    for b in range(B):
        raw[0, 5 * b + 4] = -20.0                                      # every confidence ~ 0
    logit = torch.logit
    raw[0, 5:10, 1, 2] = logit(torch.tensor([0.25, 0.75, 0.5, 0.25, 0.8]))  # predictor b=1 of cell (1, 2)
    raw[0, 10:, 1, 2] = torch.tensor([0.0, math.log(3.0)])          # class probabilities 0.25, 0.75
    sample = make_sample([], [], (32, 48), scale_factor=(2.0, 0.5))
    pred, = head.predict((raw,), [sample])
    # input pixels: centre ((2 + .25) * 16, (1 + .75) * 16) = (36, 28), size (.25 * 48, .0625 * 32) = (12, 2)
    # -> xyxy [30, 27, 42, 29]; the detector's step to original pixels: input / (sx, sy) = [15, 54, 21, 58]
    assert pred.labels.tolist() == [1, 0]
    assert pred.scores.tolist() == pytest.approx([0.6, 0.2], rel=1e-5)
    assert torch.allclose(pred.bboxes, torch.tensor([[30.0, 27.0, 42.0, 29.0]] * 2), atol=1e-4)
    original = instances_to_original(pred, sample.metainfo)
    assert torch.allclose(original.bboxes, torch.tensor([[15.0, 54.0, 21.0, 58.0]] * 2), atol=1e-4)


def test_predict_respects_max_per_img_and_empty_output():
    head = _raw_head(3, 2, 8, test_cfg=dict(max_per_img=5, score_thr=0.0))
    raw = torch.randn(2, 13, 5, 7)
    preds = head.predict((raw,), [make_sample([], [], (40, 56))] * 2)
    assert all(len(p) <= 5 and p.bboxes.shape[1] == 4 for p in preds)
    head.test_cfg['score_thr'] = 1.0
    pred, = head.predict((raw[:1],), [make_sample([], [], (40, 56))])
    assert pred.bboxes.shape == (0, 4) and pred.scores.shape == (0,) and pred.labels.shape == (0,)


def test_init_weights_keeps_confidence_prior_under_parent_init_cfg():
    head = MODELS.build(dict(type='YOLOV1Head', num_classes=3, in_channels=[8], strides=[8], num_convs=1,
                             feat_channels=8, conf_prior=0.02,
                             init_cfg=dict(type='Constant', layer='Conv2d', val=1.0, bias=1.0)))
    head.init_weights()
    assert torch.sigmoid(head.out.bias[4:10:5]).tolist() == pytest.approx([0.02, 0.02])
    assert head.out.bias[:4].tolist() == [0.0] * 4 and head.out.weight.abs().max() < 0.1


# ----------------------------------------------------------------------------------------------- overfit
class _TinyBackbone(nn.Module):
    """Three stride-2 conv blocks: one stride-8 map with 32 channels."""

    out_channels, strides = [32], [8]

    def __init__(self):
        super().__init__()
        layers, c = [], 3
        for out in (16, 32, 32):
            layers += [nn.Conv2d(c, out, 3, 2, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
            c = out
        layers += [nn.Conv2d(32, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU()]
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return (self.body(x),)


def _toy_images():
    gen = torch.Generator().manual_seed(0)
    colours = torch.tensor([[255, 40, 40], [40, 255, 40], [40, 40, 255]], dtype=torch.uint8)
    boxes = [[[4, 6, 24, 30]], [[30, 8, 58, 26], [8, 36, 22, 58]],
             [[10, 10, 40, 34], [44, 40, 60, 60], [4, 44, 18, 60]], [[20, 24, 52, 50]]]
    labels = [[0], [1, 2], [2, 0, 1], [1]]
    imgs, samples = [], []
    for bxs, lbs in zip(boxes, labels):
        img = torch.randint(0, 60, (3, 64, 64), generator=gen, dtype=torch.uint8)
        for (x1, y1, x2, y2), lab in zip(bxs, lbs):
            img[:, y1:y2, x1:x2] = colours[lab][:, None, None]
        imgs.append(img)
        samples.append(make_sample(bxs, lbs, (64, 64)))
    return imgs, samples


def _ap50(model, data) -> float:
    """COCO AP50 of the model's predictions on ``data`` (det's evaluate_coco on pycocotools)."""
    model.eval()
    with torch.no_grad():
        results = model(**data, mode='predict')
    return ap50(results, results, 3)


def test_overfit_tiny_images():
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='SingleStageDetector', backbone=dict(type=_TinyBackbone),
        head=dict(type='YOLOV1Head', num_classes=3, feat_channels=32, num_convs=1,
                  bbox_coder=dict(type='YOLOV1BBoxCoder', wh_norm=64)),
        data_preprocessor=dict(type=DetDataPreprocessor, pad_size_divisor=8)))
    imgs, samples = _toy_images()
    data = model.data_preprocessor(dict(inputs=imgs, data_samples=samples), training=True)
    ap50_before = _ap50(model, data)
    model.train()
    optim = torch.optim.Adam(model.parameters(), lr=3e-3)
    totals = []
    for _ in range(60):
        losses = model(**data, mode='loss')
        total = sum(losses.values())
        optim.zero_grad()
        total.backward()
        optim.step()
        totals.append(total.item())
    assert totals[-1] < totals[0] / 5, (totals[0], totals[-1])
    ap50_after = _ap50(model, data)
    assert ap50_before < 0.1 and ap50_after > 0.8, (ap50_before, ap50_after)
    model.eval()
    results = model(**data, mode='predict')
    for sample in results:
        gt, pred = sample.gt_instances, sample.pred_instances
        top = pred[:len(gt)]                                        # as many detections as objects
        for box, lab in zip(gt.bboxes.tolist(), gt.labels.tolist()):
            best = max((_iou(box, p) for p, pl in zip(top.bboxes.tolist(), top.labels.tolist()) if pl == lab),
                       default=0.0)
            assert best > 0.5, (box, lab, top)
