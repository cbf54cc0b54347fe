"""CocoDataset on a small hand-written json, and a full pipeline through it."""
import json

import cv2
import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate

from det.datasets import CocoDataset
from det.models.data_preprocessor import DetDataPreprocessor
from det.registry import DATASETS
from det.structures import DetDataSample

CATEGORIES = [dict(id=7, name='b'), dict(id=3, name='a'), dict(id=11, name='c')]  # unsorted on purpose


@pytest.fixture
def coco_dir(tmp_path):
    images = [dict(id=9, file_name='empty.png', width=50, height=40),
              dict(id=5, file_name='five.png', width=100, height=80)]
    annotations = [
        dict(id=1, image_id=5, category_id=7, bbox=[10, 20, 30, 40], area=1200, iscrowd=0),
        dict(id=2, image_id=5, category_id=11, bbox=[0, 0, 5, 5], area=25, iscrowd=1),
        dict(id=3, image_id=5, category_id=3, bbox=[90, 70, 20, 20], area=400, iscrowd=0),   # partly out
        dict(id=4, image_id=5, category_id=3, bbox=[200, 200, 10, 10], area=100, iscrowd=0),  # fully out
    ]
    (tmp_path / 'ann.json').write_text(json.dumps(dict(images=images, annotations=annotations,
                                                       categories=CATEGORIES)))
    (tmp_path / 'img').mkdir()
    cv2.imwrite(str(tmp_path / 'img' / 'empty.png'), np.full((40, 50, 3), 7, np.uint8))
    img = np.zeros((80, 100, 3), np.uint8)
    img[:, :50] = (255, 0, 0)  # left half blue (BGR)
    cv2.imwrite(str(tmp_path / 'img' / 'five.png'), img)
    return tmp_path


def test_records_by_hand(coco_dir):
    with pytest.warns(UserWarning, match=r'1 boxes clipped .* 1 invalid boxes dropped .*five\.png') as rec:
        ds = CocoDataset(ann_file='ann.json', data_root=str(coco_dir), data_prefix=dict(img='img/'))
    assert len([w for w in rec if 'boxes clipped' in str(w.message)]) == 1
    assert ds.ann_file == str(coco_dir / 'ann.json')
    assert ds.metainfo['classes'] == ('a', 'b', 'c')  # sorted by category id 3, 7, 11
    assert len(ds) == 2  # the image without annotations is kept; records are in image-id order
    five, empty = ds.get_data_info(0), ds.get_data_info(1)
    assert (empty['img_id'], empty['instances'], empty['height'], empty['width']) == (9, [], 40, 50)
    assert five['img_id'] == 5 and five['img_path'] == str(coco_dir / 'img' / 'five.png')
    by_label = {i['bbox_label']: i for i in five['instances']}
    assert len(five['instances']) == 3
    assert by_label[1] == dict(bbox=[10.0, 20.0, 40.0, 60.0], bbox_label=1, ignore_flag=0)  # id 7 -> 1
    assert by_label[2] == dict(bbox=[0.0, 0.0, 5.0, 5.0], bbox_label=2, ignore_flag=1)     # iscrowd
    assert by_label[0] == dict(bbox=[90.0, 70.0, 100.0, 80.0], bbox_label=0, ignore_flag=0)  # clipped


def test_given_classes_and_filter_empty(coco_dir):
    with pytest.warns(UserWarning):
        ds = DATASETS.build(dict(type='CocoDataset', ann_file='ann.json', data_root=str(coco_dir),
                                 data_prefix=dict(img='img/'), metainfo=dict(classes=('c', 'a')),
                                 filter_empty_gt=True))
    assert ds.metainfo['classes'] == ('c', 'a')
    assert len(ds) == 1
    labels = sorted((i['bbox_label'], i['ignore_flag']) for i in ds.get_data_info(0)['instances'])
    assert labels == [(0, 1), (1, 0)]  # 'c' (crowd) -> 0, 'a' -> 1, 'b' left out
    with pytest.warns(UserWarning):
        ds = CocoDataset(ann_file='ann.json', data_root=str(coco_dir), data_prefix=dict(img='img/'),
                         filter_empty_gt=True, test_mode=True)
    assert len(ds) == 2


def test_full_pipeline_to_preprocessor(coco_dir):
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                dict(type='Resize', scale=(200, 200), keep_ratio=True),
                dict(type='Albu', transforms=[dict(type='HorizontalFlip', p=1.0)]),
                dict(type='PackDetInputs')]
    with pytest.warns(UserWarning):
        ds = CocoDataset(ann_file='ann.json', data_root=str(coco_dir), data_prefix=dict(img='img/'),
                         pipeline=pipeline)
    out = ds[0]
    assert out['inputs'].dtype == torch.uint8 and out['inputs'].shape == (3, 160, 200)
    assert out['inputs'].is_contiguous()
    # flipped: the blue half is now on the right
    assert out['inputs'][:, 80, 150].tolist() == [255, 0, 0]
    assert out['inputs'][:, 80, 20].tolist() == [0, 0, 0]
    sample = out['data_samples']
    assert isinstance(sample, DetDataSample)
    # scale 2, then x -> 200 - x: [10,20,40,60] -> [20,40,80,120] -> [120,40,180,120]
    expected = {1: [120.0, 40.0, 180.0, 120.0], 0: [0.0, 140.0, 20.0, 160.0]}
    got = dict(zip(sample.gt_instances.labels.tolist(), sample.gt_instances.bboxes.tolist()))
    assert got.keys() == expected.keys()
    for label, box in expected.items():  # albumentations round-trips through normalised coordinates
        np.testing.assert_allclose(got[label], box, atol=1e-3)
    np.testing.assert_allclose(sample.ignored_instances.bboxes, [[190.0, 0.0, 200.0, 10.0]], atol=1e-3)
    assert sample.ignored_instances.labels.tolist() == [2]
    assert sample.gt_instances.bboxes.dtype == torch.float32
    assert sample.gt_instances.labels.dtype == torch.int64
    assert sample.metainfo['img_id'] == 5 and sample.metainfo['ori_shape'] == (80, 100)
    assert sample.metainfo['img_shape'] == (160, 200) and sample.metainfo['scale_factor'] == (2.0, 2.0)

    batch = DetDataPreprocessor(pad_size_divisor=32)(pseudo_collate([ds[0], ds[1]]))
    assert batch['inputs'].shape == (2, 3, 160, 224)
    assert len(batch['data_samples'][1].gt_instances) == 0


def test_unreadable_image_is_resampled_in_training(coco_dir):
    (coco_dir / 'img' / 'five.png').unlink()
    pipeline = [dict(type='LoadImageFromFile', on_error='skip'), dict(type='PackDetInputs')]
    with pytest.warns(UserWarning):
        ds = CocoDataset(ann_file='ann.json', data_root=str(coco_dir), data_prefix=dict(img='img/'),
                         pipeline=pipeline)
    with pytest.warns(UserWarning, match='five.png'):
        out = ds[0]
    assert out['data_samples'].metainfo['img_id'] == 9  # mmengine picked the readable image instead
