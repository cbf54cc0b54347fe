"""TTFNetHead's box regression and the GIoU option of YOLO v1, against independent references:
targets and sample weights written out pixel by pixel from the paper (Liu et al. 2020, sec. 3), losses
from ``torchvision.ops.generalized_box_iou_loss``, AP from pycocotools."""
import math

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from torch import nn
from torchvision.ops import generalized_box_iou_loss

import det.models  # noqa: F401  (registers the modules)
from det.registry import MODELS, TASK_UTILS
from tests.conftest import TOY_LAYOUTS, ToyBackbone, coco_stats, make_sample, toy_data


def ttf_head(**kwargs):
    cfg = dict(type='TTFNetHead', num_classes=3, in_channels=[8], strides=[4], feat_channels=8,
               loss_bbox=dict(type='GIoULoss', loss_weight=5.0))
    cfg.update(kwargs)
    return MODELS.build(cfg)


def reference_ttf_targets(boxes, labels, num_classes, height, width, stride=4, alpha=0.54, beta=0.54):
    """The paper's targets pixel by pixel (numpy loops): heatmap [C, H, W], box target [H, W, 4] and
    weight [H, W]; boxes drawn from the largest to the smallest so the smaller one owns shared pixels."""
    heat = np.zeros((num_classes, height, width))
    target = np.zeros((height, width, 4))
    weight = np.zeros((height, width))

    def gauss(cx, cy, rx, ry):
        sx, sy = (2 * rx + 1) / 6, (2 * ry + 1) / 6
        g = np.zeros((height, width))
        for y in range(height):
            for x in range(width):
                if abs(x - cx) <= rx and abs(y - cy) <= ry:
                    g[y, x] = math.exp(-(x - cx) ** 2 / (2 * sx ** 2) - (y - cy) ** 2 / (2 * sy ** 2))
        return g

    areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]
    for i in sorted(range(len(boxes)), key=lambda i: -areas[i]):
        x1, y1, x2, y2 = (v / stride for v in boxes[i])
        w, h = x2 - x1, y2 - y1
        cx, cy = math.floor((x1 + x2) / 2), math.floor((y1 + y2) / 2)
        heat[labels[i]] = np.maximum(heat[labels[i]], gauss(cx, cy, int(alpha * w / 2), int(alpha * h / 2)))
        g = gauss(cx, cy, int(beta * w / 2), int(beta * h / 2))
        area = (boxes[i][2] - boxes[i][0]) * (boxes[i][3] - boxes[i][1])
        inside = g > 0
        target[inside] = boxes[i]
        weight[inside] = g[inside] / g.sum() * math.log(area)
    return heat, target, weight


BOXES = [[4.0, 6.0, 52.0, 44.0], [30.0, 20.0, 46.0, 36.0]]   # the small one overlaps the large one
LABELS = [0, 2]


def test_giou_loss_module_matches_torchvision_and_empty_is_exact_zero():
    torch.manual_seed(0)
    xy = torch.rand(6, 2) * 20
    pred = torch.cat([xy, xy + torch.rand(6, 2) * 30 + 1], 1).requires_grad_()
    target = torch.cat([xy + 3, xy + torch.rand(6, 2) * 30 + 4], 1)
    weight = torch.rand(6)
    loss = MODELS.build(dict(type='GIoULoss', loss_weight=2.0))
    expected = 2.0 * (generalized_box_iou_loss(pred, target, reduction='none') * weight).sum() / 3.5
    got = loss(pred, target, weight=weight, avg_factor=3.5)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss(pred, target).item() == pytest.approx(
        2.0 * generalized_box_iou_loss(pred, target, reduction='mean').item(), rel=1e-6)
    empty = loss(pred[:0], target[:0], avg_factor=1.0)
    assert empty.item() == 0 and empty.requires_grad
    with pytest.raises(ValueError, match='xyxy'):
        loss(pred[:, :2], target[:, :2])


def test_ttfnet_targets_match_pixelwise_reference():
    gen = TASK_UTILS.build(dict(type='TTFNetTargetGenerator'))
    t = gen(torch.tensor(BOXES), torch.tensor(LABELS), 3, (16, 16), 4)
    heat, target, weight = reference_ttf_targets(BOXES, LABELS, 3, 16, 16)
    np.testing.assert_allclose(t.heatmap.numpy(), heat, atol=1e-6)
    np.testing.assert_allclose(t.bbox_target.view(16, 16, 4).numpy(), target, atol=1e-5)
    np.testing.assert_allclose(t.bbox_weight.view(16, 16).numpy(), weight, atol=1e-6)
    assert (t.heatmap == 1).sum() == 2
    # Each object's weights sum to log(area) before the overlap; the small object keeps all of its own.
    small = (t.bbox_target == torch.tensor(BOXES[1])).all(dim=1)
    assert t.bbox_weight[small].sum().item() == pytest.approx(math.log(16 * 16), rel=1e-5)
    empty = gen(torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64), 3, (16, 16), 4)
    assert empty.heatmap.sum() == 0 and empty.bbox_weight.sum() == 0


def test_head_empty_gt_heatmap_loss_positive_box_loss_exact_zero():
    head = ttf_head()
    assert not hasattr(head, 'offset_branch') and head.wh_branch[-1].out_channels == 4
    losses = head.loss((torch.randn(2, 8, 16, 16),), [make_sample([], []) for _ in range(2)])
    assert set(losses) == {'loss_heatmap', 'loss_bbox'}
    assert losses['loss_heatmap'] > 0
    assert losses['loss_bbox'].item() == 0 and losses['loss_bbox'].requires_grad
    sum(losses.values()).backward()
    assert head.wh_branch[-1].bias.grad.abs().sum() == 0


def test_head_one_box_every_parameter_trained():
    head = ttf_head()
    losses = head.loss((torch.randn(1, 8, 16, 16),), [make_sample(BOXES[:1], [1])])
    assert losses['loss_bbox'] > 0
    sum(losses.values()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())


def test_giou_term_equals_torchvision_on_decoded_boxes_with_reference_weights():
    torch.manual_seed(1)
    head = ttf_head()
    nn.init.normal_(head.wh_branch[-1].weight, std=0.5)   # varied side distances across pixels
    feats = (torch.randn(1, 8, 16, 16),)
    heatmap, wh, offset = head(feats)
    losses = head.loss_by_feat(heatmap, wh, offset, [make_sample(BOXES, LABELS).gt_instances], [{}])

    # The side distances straight from the branch, decoded around each pixel's anchor (4x, 4y).
    ltrb = torch.relu(head.wh_branch(head.deconv(feats[0])))[0] * 16.0        # [4, H, W] input pixels
    ys, xs = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing='ij')
    decoded = torch.stack([4 * xs - ltrb[0], 4 * ys - ltrb[1], 4 * xs + ltrb[2], 4 * ys + ltrb[3]], -1)
    _, target, weight = reference_ttf_targets(BOXES, LABELS, 3, 16, 16)
    pos = weight > 0
    per_pixel = generalized_box_iou_loss(decoded[torch.from_numpy(pos)].detach().double(),
                                         torch.from_numpy(target[pos]), reduction='none')
    expected = 5.0 * (per_pixel.numpy() * weight[pos]).sum() / (weight.sum() + 1e-4)
    assert losses['loss_bbox'].item() == pytest.approx(expected, rel=1e-4)


def test_forward_decodes_side_distances_through_predict():
    """A pixel predicting (l, t, r, b) yields the box (4x - l, 4y - t, 4x + r, 4y + b) from predict."""
    head = ttf_head(num_classes=1)
    for branch in (head.heatmap_branch, head.wh_branch):
        nn.init.zeros_(branch[-1].weight)
    sides = torch.tensor([5.0, 7.0, 9.0, 3.0])
    with torch.no_grad():
        head.wh_branch[-1].bias.copy_(sides / 16.0)
    heat, wh, offset = head((torch.randn(1, 8, 16, 16),))
    heat = torch.full_like(heat, -10.0)
    heat[0, 0, 6, 9] = 5.0
    res = head.predict_by_feat(heat, wh, offset, batch_img_metas=[{}])[0]
    expected = torch.tensor([4 * 9 - 5.0, 4 * 6 - 7.0, 4 * 9 + 9.0, 4 * 6 + 3.0])
    assert torch.allclose(res.bboxes[0], expected, atol=1e-4)


def test_config_errors():
    """Each head takes only its own box regression: CenterNet with TTFNet's ``loss_bbox`` or target
    generator is an error, not silently another head (issue 26)."""
    centernet = dict(type='CenterNetHead', num_classes=3, in_channels=[8], strides=[4], feat_channels=8)
    with pytest.raises(TypeError, match='loss_bbox'):
        MODELS.build(dict(centernet, loss_bbox=dict(type='GIoULoss', loss_weight=5.0)))
    with pytest.raises(TypeError, match='CenterNetTargetGenerator'):
        MODELS.build(dict(centernet, target_generator=dict(type='TTFNetTargetGenerator')))
    with pytest.raises(TypeError, match='loss_wh'):
        ttf_head(loss_wh=dict(type='L1Loss', loss_weight=0.1))
    with pytest.raises(TypeError, match='TTFNetTargetGenerator'):
        ttf_head(target_generator=dict(type='CenterNetTargetGenerator'))
    with pytest.raises(ValueError, match='loss_bbox'):
        MODELS.build(dict(type='YOLOV1Head', num_classes=2, in_channels=[8], strides=[16], num_convs=0,
                          loss_bbox=dict(type='GIoULoss'), loss_xy=dict(type='MSELoss')))


def test_yolov1_giou_equals_torchvision_on_responsible_box():
    """Constant raw prediction; the cell holding the centre decodes its box by hand (paper's encoding,
    wh_norm 448) and the GIoU term is torchvision's loss of that box against the ground truth."""
    head = MODELS.build(dict(type='YOLOV1Head', num_classes=2, num_boxes=1, num_convs=0, in_channels=[7],
                             strides=[16], loss_bbox=dict(type='GIoULoss', loss_weight=3.0)))
    head.out = nn.Identity()
    raw = torch.tensor([0.3, -0.2, -1.0, -1.5, 0.0, 0.1, 0.2]).view(1, 7, 1, 1).expand(1, 7, 4, 4)
    gt = [20.0, 22.0, 60.0, 50.0]                                # centre (40, 36): cell (col 2, row 2)
    losses = head.loss((raw,), [make_sample([gt], [1], (64, 64))])
    assert set(losses) == {'loss_bbox', 'loss_obj', 'loss_noobj', 'loss_cls'}
    sig = torch.sigmoid(torch.tensor([0.3, -0.2, -1.0, -1.5]))
    cx, cy = (2 + sig[0]) * 16, (2 + sig[1]) * 16
    w, h = sig[2] ** 2 * 448, sig[3] ** 2 * 448
    box = torch.tensor([[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]])
    expected = 3.0 * generalized_box_iou_loss(box, torch.tensor([gt])).item()
    assert losses['loss_bbox'].item() == pytest.approx(expected, rel=1e-5)
    empty = head.loss((raw,), [make_sample([], [], (64, 64))])
    assert empty['loss_bbox'].item() == 0 and empty['loss_noobj'] > 0


# ---------------------------------------------------------------------------------------- learning


MODELS.register_module('TinyTTFTestBackbone', force=True, module=ToyBackbone)


def _train(head_type: str, steps: int) -> np.ndarray:
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('det'):
        model = MODELS.build(dict(
            type='SingleStageDetector', backbone=dict(type='TinyTTFTestBackbone'),
            head=dict(type=head_type, num_classes=2, deconv_channels=32, feat_channels=32)))
    inputs, samples = toy_data(TOY_LAYOUTS)
    model.train()
    optim = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        loss = sum(model(inputs, samples, mode='loss').values())
        optim.zero_grad()
        loss.backward()
        optim.step()
    model.eval()
    with torch.no_grad():
        return coco_stats(samples, model(inputs, samples, mode='predict'), 2)


def test_giou_variant_boxes_tighter_than_l1_after_equal_steps():
    """Same data, model, seed and 60 Adam steps (about 3 s): TTFNet's GIoU regression reaches an AP75
    at least the L1 (centre-pixel) variant's and a higher AP, the box-quality gap of issue 13.
    Measured: L1 AP 0.554 / AP75 0.356, GIoU AP 0.801 / AP75 1.000 (at 150 steps both reach AP75 1)."""
    l1 = _train('CenterNetHead', 60)
    giou = _train('TTFNetHead', 60)
    print(f'L1: AP {l1[0]:.3f} AP50 {l1[1]:.3f} AP75 {l1[2]:.3f} | '
          f'GIoU: AP {giou[0]:.3f} AP50 {giou[1]:.3f} AP75 {giou[2]:.3f}')
    assert giou[1] > 0.5
    assert giou[2] >= l1[2]
    assert giou[0] > l1[0]
