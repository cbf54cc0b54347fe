"""Image loading, Resize, Pad, Albu and PackDetInputs, against hand-computed values."""
import cv2
import numpy as np
import pytest
import torch

from det.datasets.transforms import Albu, LoadAnnotations, LoadImageFromFile, PackDetInputs, Pad, Resize
from det.registry import TRANSFORMS


def _load(path, **kwargs):
    return LoadImageFromFile(**kwargs)({'img_path': str(path)})


def test_load_grayscale_rgba_16bit(tmp_path):
    gray = np.array([[0, 100, 255]], np.uint8)
    cv2.imwrite(str(tmp_path / 'gray.png'), gray)
    out = _load(tmp_path / 'gray.png')
    assert out['img'].shape == (1, 3, 3) and out['img'].dtype == np.uint8
    assert out['img'][0].tolist() == [[0, 0, 0], [100, 100, 100], [255, 255, 255]]
    assert out['ori_shape'] == out['img_shape'] == (1, 3)

    bgra = np.array([[[10, 20, 30, 0], [40, 50, 60, 128], [70, 80, 90, 255]]], np.uint8)
    cv2.imwrite(str(tmp_path / 'rgba.png'), bgra)
    assert _load(tmp_path / 'rgba.png')['img'][0].tolist() == [[10, 20, 30], [40, 50, 60], [70, 80, 90]]

    deep = np.array([[0, 257, 25700, 65535]], np.uint16)  # /257 -> 0, 1, 100, 255
    cv2.imwrite(str(tmp_path / 'deep.png'), deep)
    assert _load(tmp_path / 'deep.png')['img'][0].tolist() == [[0] * 3, [1] * 3, [100] * 3, [255] * 3]

    deep_colour = np.zeros((1, 1, 3), np.uint16)
    deep_colour[0, 0] = (65535, 514, 0)
    cv2.imwrite(str(tmp_path / 'deep3.png'), deep_colour)
    assert _load(tmp_path / 'deep3.png')['img'][0, 0].tolist() == [255, 2, 0]


@pytest.mark.parametrize('kind', ['missing', 'corrupt'])
def test_unreadable_image_skip_or_raise(tmp_path, kind):
    path = tmp_path / f'{kind}.jpg'
    if kind == 'corrupt':
        path.write_bytes(b'\xff\xd8 not really a jpeg')
    with pytest.warns(UserWarning, match=f'{kind}.jpg'):
        assert _load(path, on_error='skip') is None
    with pytest.raises(OSError, match=f'{kind}.jpg'):
        _load(path)


def test_load_annotations_empty_and_filled():
    out = LoadAnnotations()({'instances': []})
    assert out['gt_bboxes'].shape == (0, 4) and out['gt_bboxes'].dtype == np.float32
    assert out['gt_bboxes_labels'].dtype == np.int64 and out['gt_ignore_flags'].dtype == bool
    out = LoadAnnotations()({'instances': [dict(bbox=[1, 2, 3, 4], bbox_label=2, ignore_flag=1)]})
    assert out['gt_bboxes'].tolist() == [[1, 2, 3, 4]]
    assert out['gt_bboxes_labels'].tolist() == [2] and out['gt_ignore_flags'].tolist() == [True]


def _results(w=200, h=100, boxes=((20, 10, 60, 40),), labels=None, ignore=None):
    img = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    n = len(boxes)
    return dict(img=img, img_shape=(h, w), ori_shape=(h, w),
                gt_bboxes=np.array(boxes, np.float32).reshape(-1, 4),
                gt_bboxes_labels=np.array(labels if labels is not None else range(n), np.int64),
                gt_ignore_flags=np.array(ignore if ignore is not None else [False] * n, bool))


def test_resize_keep_ratio_and_chained_scale_factor():
    out = Resize(scale=(100, 100))(_results())  # 200x100 fits 100x100 at ratio 0.5 -> 100x50
    assert out['img'].shape == (50, 100, 3) and out['img_shape'] == (50, 100)
    assert out['scale_factor'] == (0.5, 0.5)
    assert out['gt_bboxes'].tolist() == [[10, 5, 30, 20]]
    out = Resize(scale=(50, 50))(out)  # 100x50 -> 50x25, factors multiply
    assert out['scale_factor'] == (0.25, 0.25) and out['gt_bboxes'].tolist() == [[5, 2.5, 15, 10]]
    out = Resize(scale=(50, 100), keep_ratio=False)(_results())
    assert out['img'].shape == (100, 50, 3) and out['scale_factor'] == (0.25, 1.0)
    assert out['gt_bboxes'].tolist() == [[5, 10, 15, 40]]


def test_pad_bottom_right():
    res = Resize(scale=(128, 128))(_results())  # letterbox: 128x64 then pad to 128x128
    top = res['img'].copy()
    out = Pad(size=(128, 128), pad_val=0)(res)
    assert out['img'].shape == (128, 128, 3) and out['pad_shape'] == (128, 128)
    assert out['img_shape'] == (64, 128)
    assert np.array_equal(out['img'][:64], top) and not out['img'][64:].any()
    np.testing.assert_allclose(out['gt_bboxes'], [[12.8, 6.4, 38.4, 25.6]], rtol=1e-6)  # Pad leaves boxes
    with pytest.raises(ValueError):
        Pad(size=(64, 64))(_results())


def test_albu_horizontal_flip_moves_boxes_and_pixels():
    res = _results(w=100, h=50, boxes=[(10, 20, 30, 40), (0, 0, 100, 50)])
    img = res['img'].copy()
    out = Albu([dict(type='HorizontalFlip', p=1.0)])(res)
    np.testing.assert_allclose(out['gt_bboxes'], [[70, 20, 90, 40], [0, 0, 100, 50]], atol=1e-3)
    assert np.array_equal(out['img'], img[:, ::-1])
    assert out['gt_bboxes_labels'].tolist() == [0, 1]


def test_albu_crop_drops_box_with_its_label_and_flag():
    res = _results(w=100, h=100, boxes=[(10, 10, 20, 20), (60, 60, 80, 80), (40, 40, 70, 70)],
                   labels=[3, 4, 5], ignore=[False, False, True])
    out = Albu([dict(type='Crop', x_min=0, y_min=0, x_max=50, y_max=50)])(res)
    assert out['img'].shape == (50, 50, 3) and out['img_shape'] == (50, 50)
    np.testing.assert_allclose(out['gt_bboxes'], [[10, 10, 20, 20], [40, 40, 50, 50]], atol=1e-3)
    assert out['gt_bboxes_labels'].tolist() == [3, 5] and out['gt_ignore_flags'].tolist() == [False, True]


def test_albu_nested_config_and_rgb_order():
    albu = TRANSFORMS.build(dict(type='Albu', transforms=[dict(type='OneOf', p=1.0, transforms=[
        dict(type='RGBShift', r_shift_limit=(50, 50), g_shift_limit=(0, 0), b_shift_limit=(0, 0), p=1.0)])]))
    out = albu(dict(img=np.zeros((4, 4, 3), np.uint8)))  # no boxes at all is fine
    assert out['img'][0, 0].tolist() == [0, 0, 50]  # red is the last channel of BGR
    out = albu(_results(w=10, h=10, boxes=[(1, 2, 3, 4)], labels=[7]))  # colour only: boxes unchanged
    np.testing.assert_allclose(out['gt_bboxes'], [[1, 2, 3, 4]], atol=1e-3)
    assert out['gt_bboxes_labels'].tolist() == [7]
    with pytest.raises(KeyError, match='NoSuchTransform'):
        Albu([dict(type='NoSuchTransform')])


def test_pack_det_inputs_splits_ignored_and_defaults_scale_factor():
    res = _results(w=8, h=6, boxes=[(1, 1, 3, 3), (2, 2, 5, 5)], labels=[0, 1], ignore=[False, True])
    res.update(img_id=3, img_path='x.jpg')
    out = PackDetInputs()(res)
    img = res['img']
    assert out['inputs'].shape == (3, 6, 8) and out['inputs'].is_contiguous()
    assert torch.equal(out['inputs'], torch.from_numpy(img).permute(2, 0, 1))
    sample = out['data_samples']
    assert sample.gt_instances.bboxes.tolist() == [[1, 1, 3, 3]]
    assert sample.gt_instances.labels.tolist() == [0]
    assert sample.ignored_instances.bboxes.tolist() == [[2, 2, 5, 5]]
    assert sample.metainfo['scale_factor'] == (1.0, 1.0) and sample.metainfo['img_id'] == 3
    assert 'pad_shape' not in sample.metainfo


def test_albu_randomness_follows_numpy_seed():
    """Augmentations repeat under the same global NumPy seed (mmengine's `randomness.seed`)."""
    albu = Albu([dict(type='HorizontalFlip', p=0.5), dict(type='RandomBrightnessContrast', p=0.5)])
    img = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)

    def flips(seed):
        np.random.seed(seed)
        return [albu(dict(img=img.copy(), gt_bboxes=np.array([[1, 1, 5, 5]], np.float32)))['gt_bboxes'][0, 0]
                for _ in range(12)]

    assert flips(0) == flips(0)
    assert flips(0) != flips(1)
