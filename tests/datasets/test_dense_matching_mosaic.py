"""DEIM's dense one-to-one matching needs more targets per training image at the same input size: the
DETR shapes config's training data, wrapped in MultiImageMixDataset with a Mosaic that shrinks each of
its four images to about a quadrant, gives 320x320 inputs with several times the boxes of the plain
pipeline (counted on a small generated shapes set)."""
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config

import det.datasets  # noqa: F401  (registers datasets and transforms)
from det.registry import DATASETS

REPO = Path(__file__).resolve().parents[2]


def _mosaic_dataset(cfg, img_scale, scale_range):
    """The config's train dataset with Mosaic in front of its own augmentation / letterbox / packing."""
    plain = cfg.train_dataloader.dataset
    load, rest = plain.pipeline[:2], plain.pipeline[2:]
    assert [t['type'] for t in load] == ['LoadImageFromFile', 'LoadAnnotations']
    mosaic = dict(type='Mosaic', img_scale=img_scale, center_ratio_range=(0.4, 0.6), scale_range=scale_range,
                  min_bbox_size=2.0, min_area_ratio=0.2)
    return dict(type='MultiImageMixDataset', pipeline=[mosaic, *rest],
                dataset=dict(plain, pipeline=load))


def _mean_boxes(dataset, count):
    sizes = []
    for i in range(count):
        out = dataset[i]
        assert tuple(out['inputs'].shape) == (3, 320, 320)
        sizes.append(len(out['data_samples'].gt_instances.bboxes))
    return float(np.mean(sizes))


@pytest.mark.parametrize('scale_range,factor', [((0.5, 0.5), 3.0), ((0.5, 0.75), 1.8)])
def test_mosaic_gives_detr_more_targets_at_the_same_size(tmp_path, scale_range, factor):
    from det.datasets import generate_shapes
    cfg = Config.fromfile(str(REPO / 'configs/detr_mobilenetv2_320_shapes.py'))
    params = dict(num_train=16, num_val=2, img_size=320, seed=1)
    generate_shapes(str(tmp_path / 'shapes'), workers=1, **params)
    cfg.train_dataloader.dataset.update(data_root=str(tmp_path / 'shapes'), **params)
    plain = DATASETS.build(cfg.train_dataloader.dataset)
    mixed = DATASETS.build(_mosaic_dataset(cfg, (320, 320), scale_range))
    np.random.seed(0)
    plain_mean, mixed_mean = _mean_boxes(plain, 16), _mean_boxes(mixed, 16)
    assert mixed_mean > factor * plain_mean, (plain_mean, mixed_mean)
