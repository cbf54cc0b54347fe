"""The IoU-target class losses (RT-DETR's VarifocalLoss, DEIM's MatchabilityAwareLoss, Stable-DINO's
PositionSupervisedLoss) plug into DETRHead by config (with
the focal matching cost, position-modulated or not): the class loss of a forced match is the loss of the
box's IoU (torchvision's box_iou) in its class, and empty ground truth / denoising stay finite."""
import pytest
import torch
from mmengine.structures import InstanceData
from torchvision.ops import box_convert, box_iou

from det.models.detr import DenoisingQueries
from det.registry import MODELS

META = dict(img_shape=(100, 200))
LOSSES = [dict(type='VarifocalLoss'), dict(type='MatchabilityAwareLoss'),
          dict(type='PositionSupervisedLoss', rescale=False)]


def _head(loss_cls, iou_modulation):
    return MODELS.build(dict(type='DETRHead', num_classes=3, embed_dims=8, loss_cls=loss_cls,
                             matcher=dict(type='HungarianMatcher', class_cost=2.0, class_cost_type='focal',
                                          iou_modulation=iou_modulation)))


def _gt(bboxes, labels):
    return InstanceData(bboxes=torch.tensor(bboxes, dtype=torch.float32).reshape(-1, 4),
                        labels=torch.tensor(labels, dtype=torch.long))


@pytest.mark.parametrize('iou_modulation', [0.0, 0.5])
@pytest.mark.parametrize('loss_cls', LOSSES)
def test_forced_match_is_trained_towards_its_iou(loss_cls, iou_modulation):
    head = _head(loss_cls, iou_modulation)
    gt = _gt([[40.0, 20.0, 120.0, 60.0]], [2])           # normalised (0.4, 0.4, 0.4, 0.4)
    logits = torch.tensor([[[[0.3, -1.0, 0.8]]]])
    boxes = torch.tensor([[[[0.42, 0.38, 0.36, 0.44]]]])
    losses = head.loss_by_feat(logits, boxes, [gt], [META])
    iou = box_iou(box_convert(boxes[0, 0], 'cxcywh', 'xyxy'),
                  box_convert(torch.tensor([[0.4, 0.4, 0.4, 0.4]]), 'cxcywh', 'xyxy'))[0, 0]
    target = torch.zeros(1, 3)
    target[0, 2] = iou
    expected = MODELS.build(loss_cls)(logits[0, 0], target, avg_factor=1.0)
    assert losses['loss_cls'].item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize('loss_cls', LOSSES)
def test_empty_ground_truth_and_denoising(loss_cls):
    head = _head(loss_cls, 0.5)
    cls_logits = torch.randn(2, 1, 5, 3)
    boxes = torch.rand(2, 1, 5, 4).clamp(0.1, 0.9)
    empty = head.loss_by_feat(cls_logits, boxes, [_gt([], [])], [META])
    assert empty['loss_cls'] > 0 and empty['loss_bbox'].item() == 0 and empty['loss_iou'].item() == 0
    gt = _gt([[40.0, 20.0, 120.0, 60.0]], [1])
    queries = DenoisingQueries(num_classes=3, embed_dims=8, num_groups=2)(
        [gt.labels], [torch.tensor([[0.4, 0.4, 0.4, 0.4]])], num_matching=3)
    losses = head.loss_by_feat(cls_logits, boxes, [gt], [META], queries)
    assert all(torch.isfinite(v) for v in losses.values()) and losses['loss_dn_cls'] > 0
