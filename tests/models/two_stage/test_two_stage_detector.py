"""TwoStageDetector with the RPN and RoI heads: proposal bounds, losses without ground truth, SAM's
gradient path into the RPN, the mode contract, and bad inputs. A small ThunderNet (SNet49 + CEM + light
RPN + SAM + PSRoIAlign head) at 128x128 keeps it fast; the Faster R-CNN config is covered by the
torchvision equality test."""
import pytest
import torch
from mmengine.registry import DefaultScope

import det.models  # noqa: F401  (registers the modules)
from det.registry import MODELS
from tests.conftest import make_sample

NUM_CLASSES = 3
SHAPE = (128, 128)  # the input size of most tests here


def thundernet(num_proposals=50, **overrides):
    cfg = dict(
        type='TwoStageDetector',
        backbone=dict(type='SNet', arch='snet49', out_indices=(3, 4)),
        neck=dict(type='CEM', alpha=5, pool_size=7),
        rpn_head=dict(type='RPNHead', feat_channels=64, depthwise_kernel=5,
                      anchor_generator=dict(type='AnchorGenerator', sizes=[16, 32, 64, 128],
                                            ratios=[0.5, 1.0, 2.0]),
                      train_cfg=dict(topk=300, max_per_img=100, nms=dict(iou_thr=0.7), score_thr=0.0),
                      test_cfg=dict(topk=300, max_per_img=num_proposals, nms=dict(iou_thr=0.7),
                                    score_thr=0.0)),
        sam=dict(type='SAM'),
        roi_head=dict(type='StandardRoIHead', num_classes=NUM_CLASSES, num_fcs=1, fc_channels=128,
                      roi_extractor=dict(type='PSRoIAlignExtractor', output_size=7),
                      sampler=dict(type='RandomSampler', num=64, pos_fraction=0.25)))
    cfg.update(overrides)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('det'):
        return MODELS.build(cfg)


def test_proposals_per_image_bounded_and_inside_the_image():
    model = thundernet(num_proposals=40).eval()
    inputs = torch.randn(2, 3, 128, 128)
    metas = [dict(img_shape=(128, 128)), dict(img_shape=(96, 112))]  # the second padded at bottom-right
    with torch.no_grad():
        proposals, _, _ = model.proposals_and_feats(inputs, metas)
    for props, meta in zip(proposals, metas):
        h, w = meta['img_shape']
        assert 0 < len(props.bboxes) <= 40
        assert (props.bboxes[:, 0::2] >= 0).all() and (props.bboxes[:, 0::2] <= w).all()
        assert (props.bboxes[:, 1::2] >= 0).all() and (props.bboxes[:, 1::2] <= h).all()
        assert (props.scores[:-1] >= props.scores[1:]).all()  # best first


def test_losses_without_ground_truth():
    model = thundernet().train()
    losses = model.loss(torch.randn(2, 3, 128, 128), [make_sample([], [], SHAPE), make_sample([], [], SHAPE)])
    assert set(losses) == {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox'}
    assert losses['loss_rpn_cls'] > 0 and losses['loss_cls'] > 0
    assert losses['loss_rpn_bbox'].item() == 0.0 and losses['loss_bbox'].item() == 0.0
    sum(losses.values()).backward()  # still one graph


def test_losses_with_one_box_are_positive_and_finite():
    model = thundernet().train()
    losses = model.loss(torch.randn(1, 3, 128, 128), [make_sample([[20, 30, 80, 100]], [2], SHAPE)])
    assert all(torch.isfinite(v) and v > 0 for v in losses.values()), losses


def test_sam_passes_the_roi_loss_into_the_rpn_branch():
    model = thundernet().train()
    losses = model.loss(torch.randn(1, 3, 128, 128), [make_sample([[20, 30, 80, 100]], [1], SHAPE)])
    (losses['loss_cls'] + losses['loss_bbox']).backward()
    conv = model.rpn_head.rpn_conv
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in conv.parameters())
    # the objectness and delta layers only see the RPN's own losses (proposals carry no gradient)
    assert all(p.grad is None for p in model.rpn_head.rpn_cls.parameters())
    assert all(p.grad is None for p in model.rpn_head.rpn_reg.parameters())
    # without SAM the RoI loss never reaches the RPN
    plain = thundernet(sam=None, roi_head=dict(
        type='StandardRoIHead', num_classes=NUM_CLASSES, num_fcs=1, fc_channels=128,
        roi_extractor=dict(type='PSRoIAlignExtractor', output_size=7))).train()
    losses = plain.loss(torch.randn(1, 3, 128, 128), [make_sample([[20, 30, 80, 100]], [1], SHAPE)])
    (losses['loss_cls'] + losses['loss_bbox']).backward()
    assert all(p.grad is None for p in plain.rpn_head.rpn_conv.parameters())


def test_predict_rescales_once_and_tensor_mode_returns_raw_outputs():
    model = thundernet().eval()
    inputs = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        in_input = model.predict_in_input_pixels(inputs, [make_sample([], [], SHAPE)])[0]
        halved = make_sample([], [], SHAPE, scale_factor=(0.5, 0.5))
        out = model(inputs, [halved], mode='predict')[0].pred_instances
        raw = model(inputs, mode='tensor')
    assert len(in_input.bboxes) > 0 and in_input.labels.max() < NUM_CLASSES
    torch.testing.assert_close(out.bboxes, (in_input.bboxes * 2).clamp(0, 256))
    rpn_cls, rpn_reg, cls_score, bbox_pred, rois = raw
    assert rpn_cls[0].shape == (1, 12, 8, 8) and rpn_reg[0].shape == (1, 48, 8, 8)
    assert cls_score.shape == (len(rois), NUM_CLASSES + 1) and bbox_pred.shape == (len(rois), 4 * NUM_CLASSES)


def test_degenerate_boxes_are_skipped_and_non_finite_boxes_raise():
    model = thundernet().train()
    inputs = torch.randn(1, 3, 128, 128)
    degenerate = make_sample([[10, 10, 10, 50], [30, 40, 20, 60], [20, 30, 80, 100]], [0, 1, 2], SHAPE)
    losses = model.loss(inputs, [degenerate])
    assert all(torch.isfinite(v) for v in losses.values())
    only_degenerate = model.loss(inputs, [make_sample([[10, 10, 10, 50]], [0], SHAPE)])
    assert only_degenerate['loss_bbox'].item() == 0.0 and only_degenerate['loss_rpn_bbox'].item() == 0.0
    with pytest.raises(ValueError, match='finite'):
        model.loss(inputs, [make_sample([[10, 10, float('nan'), 50]], [0], SHAPE)])


def test_image_smaller_than_the_anchors():
    """A 40x40 input (a 3x3 stride-16 map) under anchors of up to 128 pixels: anchors are clipped to
    the image as proposals, training and prediction run. (Smaller inputs leave SNet's stride-32 map at
    1x1, where BatchNorm cannot train on one image.)"""
    model = thundernet().train()
    inputs = torch.randn(1, 3, 40, 40)
    losses = model.loss(inputs, [make_sample([[2, 3, 30, 32]], [0], img_shape=(40, 40))])
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.no_grad():
        result = model.predict_in_input_pixels(inputs, [make_sample([], [], img_shape=(40, 40))])[0]
    assert (result.bboxes >= 0).all() and (result.bboxes <= 40).all()


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match='SAM'):
        thundernet(neck=dict(type='FPN', out_channels=64))
    with pytest.raises(ValueError, match='same number of anchors'):
        thundernet(neck=dict(type='FPN', out_channels=64), sam=None, rpn_head=dict(
            type='RPNHead', anchor_generator=dict(type='AnchorGenerator', sizes=[[32], [64, 128]],
                                                  ratios=[1.0])))


def test_no_proposal_left_gives_empty_detections():
    model = thundernet(rpn_head=dict(
        type='RPNHead', feat_channels=64, depthwise_kernel=5,
        anchor_generator=dict(type='AnchorGenerator', sizes=[16, 32], ratios=[1.0]),
        test_cfg=dict(topk=300, max_per_img=50, nms=dict(iou_thr=0.7), score_thr=1.1))).eval()
    with torch.no_grad():
        results = model.predict_in_input_pixels(torch.randn(2, 3, 64, 64), [make_sample([], [])] * 2)
    assert [len(r.bboxes) for r in results] == [0, 0] and results[0].bboxes.shape == (0, 4)
