"""Pyramid and flip test-time augmentation: views map back to original pixels, flip TTA of a
flip-symmetric model gives the single view back, size ranges filter per scale, identical views fuse to
themselves, and TTADetector tests through mmengine's Runner as tools/test.py --tta does.

The flip-symmetric model is a test double that reads boxes off the input (see bright_regions.py)."""
import math

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from torchvision.ops import box_iou

from det.apis import inference_detector, init_detector
from det.engine.config import load_config
from det.inference.tta import multi_view_predict, parse_tta_options, tta_config
from det.inference.views import View, predict_views, split_test_pipeline
from tests.apis.tiny_detector import write_tiny_experiment

from .bright_regions import assert_boxes_close, bright_region_detector

INPUT = 128
PIPELINE = [dict(type='Resize', scale=(INPUT, INPUT), keep_ratio=True), dict(type='Pad', size=(INPUT, INPUT)),
            dict(type='PackDetInputs')]
# A 200x120 image (scale factor 0.64 at scale 1) with white rectangles, xyxy original pixels;
# sqrt(area) 20.0, 24.5, 60.0, 45.8.
RECTANGLES = np.array([[10, 12, 30, 32], [150, 20, 180, 40], [40, 50, 100, 110], [120, 70, 190, 100]])


@pytest.fixture(scope='module')
def symmetric_model():
    return bright_region_detector()


@pytest.fixture(scope='module')
def image():
    img = np.zeros((120, 200, 3), np.uint8)
    for x1, y1, x2, y2 in RECTANGLES:
        img[y1:y2, x1:x2] = 255
    return img


@pytest.mark.parametrize('scale', [0.5, 1.0, 2.0])
@pytest.mark.parametrize('flip', [False, True], ids=['plain', 'flip'])
def test_every_view_maps_back_to_original_pixels(symmetric_model, image, scale, flip):
    (pred,), = predict_views(symmetric_model, [image], [View(scale=scale, flip=flip)], PIPELINE)
    input_pixel = 1 / (0.64 * scale)        # one pixel of this view's network input, in original pixels
    assert_boxes_close(pred.bboxes, RECTANGLES, tol=1.01 * input_pixel)


@pytest.mark.parametrize('merge_cfg', [dict(method='nms', iou_thr=0.5), dict(method='wbf', iou_thr=0.55),
                                       dict(method='soft_nms', iou_thr=0.5, sigma=0.5)],
                         ids=lambda c: c['method'])
def test_flip_tta_of_a_symmetric_model_is_the_single_view(symmetric_model, image, merge_cfg):
    single, = multi_view_predict(symmetric_model, [image], PIPELINE)
    merged, = multi_view_predict(symmetric_model, [image], PIPELINE, flip=True, merge_cfg=merge_cfg)
    confident = merged[merged.scores > 0.5]   # soft-NMS keeps each mirrored duplicate, decayed to < 0.14
    assert_boxes_close(confident.bboxes, single.bboxes, tol=1 / 0.64)
    torch.testing.assert_close(confident.scores, torch.ones(len(single)))
    assert (merged.scores[merged.scores <= 0.5] < math.exp(-0.9 ** 2 / 0.5)).all()


def test_size_ranges_keep_each_scales_objects(symmetric_model, image):
    sizes = np.sqrt(np.prod(RECTANGLES[:, 2:] - RECTANGLES[:, :2], axis=1))
    large, = multi_view_predict(symmetric_model, [image], PIPELINE, size_ranges=[(40, None)])
    assert_boxes_close(large.bboxes, RECTANGLES[sizes >= 40], tol=1 / 0.64)
    # Large objects from scale 1, small ones from scale 2: every object once after NMS.
    both, = multi_view_predict(symmetric_model, [image], PIPELINE, scales=(1.0, 2.0),
                               size_ranges=[(40, None), (None, 40)])
    assert_boxes_close(both.bboxes, RECTANGLES, tol=1 / 0.64)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp('tiny_tta')
    config, checkpoint = write_tiny_experiment(folder, seed=3)
    return config, checkpoint, init_detector(config, checkpoint)


def test_one_view_is_the_plain_prediction_and_identical_views_fuse_to_it(tiny):
    _, _, model = tiny
    img = np.random.default_rng(0).integers(0, 256, (90, 130, 3), dtype=np.uint8)
    img = cv2.GaussianBlur(img, (0, 0), 2)
    plain = inference_detector(model, img).pred_instances
    _, view_pipeline = split_test_pipeline(model.cfg)
    one, = multi_view_predict(model, [img], view_pipeline)
    for key in ('bboxes', 'scores', 'labels'):
        torch.testing.assert_close(one[key], plain[key], rtol=0, atol=0)
    # Identical views: WBF pairs each box with its copy, and with nothing else as long as no two boxes of
    # a class overlap by more than iou_thr (checked). Merging drops boxes of zero area (here: boxes in
    # the letterbox padding, clipped to the image).
    iou_thr = 0.8
    fused, = multi_view_predict(model, [img], view_pipeline, scales=(1.0, 1.0),
                                merge_cfg=dict(method='wbf', iou_thr=iou_thr))
    wh = plain.bboxes[:, 2:] - plain.bboxes[:, :2]
    plain = plain[(wh > 0).all(dim=1)]
    assert len(plain) > 3
    iou = box_iou(plain.bboxes, plain.bboxes) * (plain.labels[:, None] == plain.labels[None])
    assert (iou - torch.eye(len(plain))).max() <= iou_thr
    order = torch.argsort(plain.scores, descending=True)
    torch.testing.assert_close(fused.bboxes, plain.bboxes[order], rtol=0, atol=1e-4)
    torch.testing.assert_close(fused.scores, plain.scores[order], rtol=0, atol=1e-6)
    torch.testing.assert_close(fused.labels, plain.labels[order])


def test_parse_tta_options():
    options = parse_tta_options(['scales=0.5,1,2', 'flip=1', 'merge=wbf', 'sizes=0-64,16-128,32-inf'])
    assert options == dict(scales=(0.5, 1.0, 2.0), flip=True, merge_cfg=dict(method='wbf', iou_thr=0.55),
                           size_ranges=[(0.0, 64.0), (16.0, 128.0), (32.0, None)], max_per_img=100)
    assert parse_tta_options(['merge=soft_nms', 'decay=linear', 'iou_thr=0.3'])['merge_cfg'] == dict(
        method='soft_nms', iou_thr=0.3, decay='linear')
    for bad in (['scales'], ['merge=vote'], ['colour=1'], ['merge=nms', 'sigma=0.5']):
        with pytest.raises(ValueError):
            parse_tta_options(bad)


def _runner_test(config, checkpoint, work_dir, tta=None) -> dict:
    """What tools/test.py does, with ``--tta`` words applied through tta_config."""
    cfg = load_config(str(config), work_dir=str(work_dir))
    if tta is not None:
        tta_config(cfg, **parse_tta_options(tta))
    cfg.load_from = str(checkpoint)
    return Runner.from_cfg(cfg).test()


def test_tta_detector_through_the_runner(tiny, tmp_path):
    """TTA with one view scores exactly as plain testing (so the wrapper loads the checkpoint into the
    detector and sees the same inputs); a pyramid with flips runs and scores too."""
    config, checkpoint, _ = tiny
    plain = _runner_test(config, checkpoint, tmp_path / 'plain')
    one_view = _runner_test(config, checkpoint, tmp_path / 'one', ['scales=1'])
    assert one_view == plain
    assert plain['coco/AR100'] > 0            # the random detector finds something, so equality says a lot
    pyramid = _runner_test(config, checkpoint, tmp_path / 'pyramid', ['scales=0.75,1,1.5', 'flip=1',
                                                                      'merge=wbf'])
    assert set(pyramid) == set(plain) and all(np.isfinite(v) for v in pyramid.values())


def test_tta_config_wraps_the_model_and_feeds_original_images(tiny):
    config = Config.fromfile(str(tiny[0]))
    detector = config.model
    tta_config(config, scales=(1.0, 2.0), flip=True)
    assert config.model.type == 'TTADetector' and config.model.module == detector
    assert [t['type'] for t in config.test_dataloader.dataset.pipeline] == [
        'LoadImageFromFile', 'LoadAnnotations', 'PackDetInputs']
    assert [t['type'] for t in config.model.view_pipeline] == ['Resize', 'Pad', 'PackDetInputs']


def test_views_load_the_original_image_at_full_size():
    """A config that decodes large photos reduced (``decode_size``, the own-data config) still gives
    the views, and TTA's test loader, the whole image: their boxes map back to the file's pixels."""
    cfg = load_config('configs/centernet_efficientnetlite0_fpn_416_own_data.py')
    assert any('decode_size' in t for t in cfg.test_dataloader.dataset.pipeline)
    loading, view_pipeline = split_test_pipeline(cfg)
    assert [t['type'] for t in loading] == ['LoadImageFromFile', 'LoadAnnotations']
    assert not any('decode_size' in t for t in loading + view_pipeline)
