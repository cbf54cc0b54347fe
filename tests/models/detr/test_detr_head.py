"""DETRHead: losses by hand (softmax cross-entropy with the 0.1 no-object weight, L1 and GIoU over the
matched pairs), empty ground truth, auxiliary and denoising keys, and predictions in input pixels."""
import math

import pytest
import torch
from mmengine.structures import InstanceData
from torchvision.ops import box_convert, generalized_box_iou

from det.registry import MODELS


def _head(**kwargs):
    return MODELS.build(dict(type='DETRHead', num_classes=3, embed_dims=8, **kwargs))


def _gt(bboxes, labels):
    return InstanceData(bboxes=torch.tensor(bboxes, dtype=torch.float32).reshape(-1, 4),
                        labels=torch.tensor(labels, dtype=torch.long))


META = dict(img_shape=(100, 200))


def test_empty_ground_truth_class_loss_positive_box_losses_zero():
    head = _head()
    cls_logits = torch.randn(2, 1, 5, 4, requires_grad=True)
    boxes = torch.rand(2, 1, 5, 4).clamp(0.1, 0.9).requires_grad_()
    losses = head.loss_by_feat(cls_logits, boxes, [_gt([], [])], [META])
    assert set(losses) == {'loss_cls', 'loss_bbox', 'loss_iou', 'd0.loss_cls', 'd0.loss_bbox', 'd0.loss_iou'}
    assert losses['loss_cls'] > 0
    assert losses['loss_bbox'].item() == 0 and losses['loss_iou'].item() == 0
    sum(losses.values()).backward()
    assert cls_logits.grad.abs().sum() > 0
    # Every query's target is "no object": the cross-entropy is the plain mean over queries.
    log_prob = cls_logits[-1, 0].detach().log_softmax(-1)
    assert losses['loss_cls'].item() == pytest.approx(-log_prob[:, 3].mean().item(), rel=1e-5)


def test_one_box_losses_by_hand():
    """Query 1 is the obvious match (right class, nearly the right box): check each term by hand."""
    head = _head()
    gt = _gt([[40.0, 20.0, 120.0, 60.0]], [2])                          # image 200 x 100 (w x h)
    target = torch.tensor([80 / 200, 40 / 100, 80 / 200, 40 / 100])    # normalised cx, cy, w, h
    logits = torch.tensor([[0.0, 0.0, 0.0, 3.0], [0.0, 0.0, 4.0, 0.0], [1.0, 0.0, 0.0, 2.0]])
    boxes = torch.tensor([[0.8, 0.8, 0.1, 0.1], [0.42, 0.38, 0.36, 0.44], [0.2, 0.2, 0.1, 0.3]])
    losses = head.loss_by_feat(logits[None, None], boxes[None, None], [gt], [META])

    def nll(row, label):
        return math.log(sum(math.exp(v) for v in row)) - row[label]
    labels = [3, 2, 3]                                 # no-object index 3 except the matched query 1
    weights = [0.1, 1.0, 0.1]
    ce = sum(w * nll(logits[q].tolist(), c) for q, (c, w) in enumerate(zip(labels, weights))) / sum(weights)
    assert losses['loss_cls'].item() == pytest.approx(ce, rel=1e-5)
    l1 = sum(abs(a - b) for a, b in zip(boxes[1].tolist(), target.tolist()))
    assert losses['loss_bbox'].item() == pytest.approx(5.0 * l1, rel=1e-5)
    giou = generalized_box_iou(box_convert(boxes[1:2], 'cxcywh', 'xyxy'),
                               box_convert(target[None], 'cxcywh', 'xyxy'))[0, 0].item()
    assert losses['loss_iou'].item() == pytest.approx(2.0 * (1 - giou), rel=1e-5)


def test_box_losses_normalised_by_boxes_in_batch():
    head = _head()
    gts = [_gt([[0, 0, 100, 50], [100, 50, 200, 100]], [0, 1]), _gt([[50, 25, 150, 75]], [2])]
    boxes = torch.rand(1, 2, 6, 4).clamp(0.1, 0.9)
    cls_logits = torch.randn(1, 2, 6, 4)
    total = head.loss_by_feat(cls_logits, boxes, gts, [META, META])
    matches = head.matcher(cls_logits[0], boxes[0], [g.labels for g in gts],
                           [box_convert(g.bboxes, 'xyxy', 'cxcywh') / torch.tensor([200, 100, 200, 100])
                            for g in gts])
    l1 = 0.0
    for b, (q, g) in enumerate(matches):
        target = box_convert(gts[b].bboxes[g], 'xyxy', 'cxcywh') / torch.tensor([200, 100, 200, 100])
        l1 += (boxes[0, b, q] - target).abs().sum().item()
    assert total['loss_bbox'].item() == pytest.approx(5.0 * l1 / 3, rel=1e-5)


def test_denoising_losses_use_their_own_targets():
    from det.models.detr import DenoisingQueries
    head = _head()
    dn = DenoisingQueries(num_classes=3, embed_dims=8, num_groups=2)
    gt = _gt([[40.0, 20.0, 120.0, 60.0]], [1])
    target = torch.tensor([[0.4, 0.4, 0.4, 0.4]])
    queries = dn([gt.labels], [target], num_matching=4)
    cls_logits = torch.randn(3, 1, 2 + 4, 4)
    boxes = torch.rand(3, 1, 2 + 4, 4).clamp(0.1, 0.9)
    losses = head.loss_by_feat(cls_logits, boxes, [gt], [META], queries)
    assert {'loss_dn_cls', 'loss_dn_bbox', 'loss_dn_iou', 'd1.loss_dn_cls'} <= set(losses)
    l1 = (boxes[-1, 0, :2] - target).abs().sum().item() / 2              # 2 groups, 1 box
    assert losses['loss_dn_bbox'].item() == pytest.approx(5.0 * l1, rel=1e-5)
    ce = -cls_logits[-1, 0, :2].log_softmax(-1)[:, 1].mean().item()
    assert losses['loss_dn_cls'].item() == pytest.approx(ce, rel=1e-5)
    # The matching part of the same outputs is scored as without denoising queries.
    plain = head.loss_by_feat(cls_logits[:, :, 2:], boxes[:, :, 2:], [gt], [META])
    for key in ('loss_cls', 'loss_bbox', 'loss_iou', 'd0.loss_cls'):
        assert losses[key].item() == pytest.approx(plain[key].item(), rel=1e-6)


def test_predict_returns_input_pixels_best_first():
    head = _head(test_cfg=dict(max_per_img=2))
    cls_logits = torch.full((1, 3, 4), -10.0)
    cls_logits[0, 0, 1] = 5.0
    cls_logits[0, 2, 0] = 3.0
    boxes = torch.tensor([[[0.5, 0.5, 0.2, 0.4], [0.1, 0.1, 0.1, 0.1], [0.25, 0.75, 0.5, 0.5]]])
    result, = head.predict_by_feat(cls_logits, boxes, [META])
    assert result.labels.tolist() == [1, 0]
    torch.testing.assert_close(result.scores, cls_logits[0, [0, 2]].softmax(-1).max(-1).values)
    expected = torch.tensor([[80.0, 30.0, 120.0, 70.0], [0.0, 50.0, 100.0, 100.0]])
    torch.testing.assert_close(result.bboxes, expected)


def test_nms_is_refused():
    with pytest.raises(ValueError, match='no NMS'):
        _head(test_cfg=dict(nms=dict(iou_thr=0.5)))


def _vfl_head(**kwargs):
    return _head(loss_cls=dict(type='VarifocalLoss', alpha=0.75, gamma=2.0),
                 matcher=dict(type='HungarianMatcher', class_cost=2.0, class_cost_type='focal'), **kwargs)


def test_varifocal_head_has_c_outputs_and_prior_bias():
    head = _vfl_head(encoder_proposals=True)
    head.init_weights()
    assert head.cls_branch.out_features == head.enc_cls_branch.out_features == 3
    torch.testing.assert_close(head.class_scores(head.cls_branch.bias), torch.full((3,), 0.01))


def test_varifocal_class_target_is_the_matched_iou():
    """One query, one box: the match is forced, so the class loss is VFL with the box's IoU as target."""
    head = _vfl_head()
    gt = _gt([[40.0, 20.0, 120.0, 60.0]], [2])
    logits = torch.tensor([[[[0.3, -1.0, 0.8]]]])
    boxes = torch.tensor([[[[0.42, 0.38, 0.36, 0.44]]]])
    losses = head.loss_by_feat(logits, boxes, [gt], [META])
    from torchvision.ops import box_iou
    iou = box_iou(box_convert(boxes[0, 0], 'cxcywh', 'xyxy'),
                  box_convert(torch.tensor([[0.4, 0.4, 0.4, 0.4]]), 'cxcywh', 'xyxy'))[0, 0].item()
    p = torch.sigmoid(logits[0, 0, 0]).tolist()

    def bce(prob, q):
        return -(q * math.log(prob) + (1 - q) * math.log(1 - prob))
    expected = 0.75 * p[0] ** 2 * bce(p[0], 0) + 0.75 * p[1] ** 2 * bce(p[1], 0) + iou * bce(p[2], iou)
    assert losses['loss_cls'].item() == pytest.approx(expected, rel=1e-5)


def test_varifocal_predict_scores_by_sigmoid():
    head = _vfl_head(test_cfg=dict(max_per_img=2))
    cls_logits = torch.full((1, 3, 3), -10.0)
    cls_logits[0, 0, 1], cls_logits[0, 2, 0] = 2.0, 1.0
    result, = head.predict_by_feat(cls_logits, torch.rand(1, 3, 4).clamp(0.1, 0.9), [META])
    assert result.labels.tolist() == [1, 0]
    torch.testing.assert_close(result.scores, torch.sigmoid(torch.tensor([2.0, 1.0])))


def test_class_loss_and_matcher_cost_must_agree():
    with pytest.raises(ValueError, match="'focal' with a sigmoid class loss"):
        _head(loss_cls=dict(type='VarifocalLoss'))
    with pytest.raises(ValueError, match='does not fit CrossEntropyLoss'):
        _head(matcher=dict(type='HungarianMatcher', class_cost_type='focal'))
