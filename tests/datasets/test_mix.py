"""Multi-image augmentation: MultiImageMixDataset with Mosaic, MixUp and albumentations' geometric
transforms, checked on generated images where every object's pixels are known (solid rectangles of
distinct colours on a flat background): after augmentation each box must still hold its object. MixUp
is checked against a hand-built blend; the switch that turns mixing off, directly and through
NoMixHook."""
import json
import logging
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

import det.datasets  # noqa: F401  (registers datasets and transforms)
import det.engine  # noqa: F401  (registers NoMixHook)
from det.registry import DATASETS, HOOKS, TRANSFORMS
from det.visualization import draw_boxes

REPO = Path(__file__).resolve().parents[2]
SIZE = 96
BACKGROUND = (128, 128, 128)
# BGR colours at least 128 apart from each other and from the background; object k has colour k and
# category k, so a colour names its object everywhere in the dataset.
COLOURS = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 255, 255), (255, 0, 255), (255, 255, 0),
           (0, 0, 0), (255, 255, 255), (0, 128, 255), (255, 128, 0), (128, 0, 255), (0, 255, 128)]
LAYOUTS = [[(8, 10, 40, 38), (52, 50, 88, 86)], [(60, 6, 90, 30), (10, 44, 44, 90)],
           [(30, 30, 70, 66), (4, 76, 28, 94)], [(6, 6, 34, 26), (50, 40, 92, 70)],
           [(20, 60, 56, 92), (64, 10, 88, 44)], [(40, 4, 80, 36), (8, 50, 32, 80)]]


@pytest.fixture(scope='module')
def coco_rects(tmp_path_factory):
    return write_rects(tmp_path_factory.mktemp('rects'))


def write_rects(root):
    """Six 96x96 PNGs with two solid rectangles each (12 colours, one per category) and their COCO json."""
    (root / 'img').mkdir()
    images, anns = [], []
    for i, boxes in enumerate(LAYOUTS):
        img = np.full((SIZE, SIZE, 3), BACKGROUND, np.uint8)
        for j, (x1, y1, x2, y2) in enumerate(boxes):
            k = 2 * i + j
            img[y1:y2, x1:x2] = COLOURS[k]
            anns.append(dict(id=k + 1, image_id=i + 1, category_id=k + 1, bbox=[x1, y1, x2 - x1, y2 - y1],
                             area=(x2 - x1) * (y2 - y1), iscrowd=0))
        cv2.imwrite(str(root / 'img' / f'{i}.png'), img)
        images.append(dict(id=i + 1, file_name=f'{i}.png', width=SIZE, height=SIZE))
    cats = [dict(id=k + 1, name=f'c{k}') for k in range(len(COLOURS))]
    (root / 'ann.json').write_text(json.dumps(dict(images=images, annotations=anns, categories=cats)))
    return root


def mix_dataset(root, pipeline, skip_type_keys=()):
    return DATASETS.build(dict(
        type='MultiImageMixDataset', skip_type_keys=skip_type_keys, pipeline=pipeline,
        dataset=dict(type='CocoDataset', data_root=str(root), ann_file='ann.json',
                     data_prefix=dict(img='img/'),
                     pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')])))


def assert_boxes_hold_their_objects(img, boxes, labels):
    """For every label present: the colour's connected regions that a box of that label touches lie
    >= 90% inside those boxes (1 px tolerance for interpolated edges), and the colour fills >= 50% of
    each box. Returns nothing; fails with the label and the measured fractions."""
    for label in np.unique(labels):
        colour = np.array(COLOURS[label], np.int16)
        mask = (np.abs(img.astype(np.int16) - colour).max(axis=2) <= 40).astype(np.uint8)
        label_boxes = boxes[labels == label]
        inside = np.zeros_like(mask, bool)
        for x1, y1, x2, y2 in label_boxes:
            inside[max(0, int(np.floor(y1)) - 1):int(np.ceil(y2)) + 1,
                   max(0, int(np.floor(x1)) - 1):int(np.ceil(x2)) + 1] = True
            core = mask[int(np.ceil(y1)):int(np.floor(y2)), int(np.ceil(x1)):int(np.floor(x2))]
            assert core.size and core.mean() >= 0.5, f'label {label}: box {[x1, y1, x2, y2]} is mostly empty'
        _, comp = cv2.connectedComponents(mask, connectivity=8)
        touched = np.unique(comp[inside & (mask > 0)])
        object_pixels = np.isin(comp, touched[touched > 0])
        covered = (object_pixels & inside).sum() / max(1, object_pixels.sum())
        assert covered >= 0.9, f'label {label}: only {covered:.2f} of its pixels lie in its boxes'


GEOMETRY = [
    dict(type='Mosaic', img_scale=(SIZE, SIZE), scale_range=(0.6, 1.0)),
    dict(type='Albu', min_visibility=0.2, transforms=[
        dict(type='Affine', scale=(0.8, 1.2), translate_percent=(-0.1, 0.1), rotate=(-10, 10),
             interpolation=cv2.INTER_NEAREST, fill=BACKGROUND, p=1.0),
        dict(type='RandomResizedCrop', size=(SIZE, SIZE), scale=(0.5, 1.0), interpolation=cv2.INTER_NEAREST,
             p=0.5),
        dict(type='HorizontalFlip', p=0.5)]),
]


def test_mosaic_and_geometric_albu_keep_every_box_on_its_object(coco_rects, tmp_path):
    ds = mix_dataset(coco_rects, GEOMETRY + [dict(type='PackDetInputs')])
    np.random.seed(0)
    panels, total_boxes = [], 0
    for i in range(12):
        out = ds[i % len(ds)]
        img = out['inputs'].permute(1, 2, 0).numpy()
        boxes = out['data_samples'].gt_instances.bboxes.numpy()
        labels = out['data_samples'].gt_instances.labels.numpy()
        assert img.shape == (SIZE, SIZE, 3)
        assert_boxes_hold_their_objects(img, boxes, labels)
        total_boxes += len(boxes)
        panels.append(draw_boxes(img, boxes, labels, [f'c{k}' for k in range(len(COLOURS))]))
    assert total_boxes > 24          # mosaics hold more objects than single images (2 each)
    path = tmp_path / 'augmented_samples.png'
    cv2.imwrite(str(path), np.concatenate(panels, axis=1))
    assert cv2.imread(str(path)).shape == (SIZE, SIZE * 12, 3)


def test_mosaic_places_four_images_in_quadrants(coco_rects):
    """Centre fixed at the canvas centre and no rescaling: each quadrant shows the matching quarter of
    one of the four images (top-left shows its image's bottom-right quarter, and so on)."""
    mosaic = TRANSFORMS.build(dict(type='Mosaic', img_scale=(SIZE, SIZE), center_ratio_range=(0.5, 0.5),
                                   scale_range=(1.0, 1.0)))
    ds = mix_dataset(coco_rects, [])
    samples = [ds.dataset[i] for i in range(4)]
    out = mosaic(dict(samples[0], mix_results=samples[1:]))
    h = SIZE // 2
    quads = [out['img'][:h, :h], out['img'][:h, h:], out['img'][h:, :h], out['img'][h:, h:]]
    expected = [samples[0]['img'][h:, h:], samples[1]['img'][h:, :h], samples[2]['img'][:h, h:],
                samples[3]['img'][:h, :h]]
    for got, want in zip(quads, expected):
        np.testing.assert_array_equal(got, want)
    assert 'mix_results' not in out and out['img_shape'] == (SIZE, SIZE)
    assert_boxes_hold_their_objects(out['img'], out['gt_bboxes'], out['gt_bboxes_labels'])
    with pytest.raises(ValueError, match='MultiImageMixDataset'):
        mosaic(dict(samples[0]))


def test_mixup_blends_a_resized_flipped_second_image(coco_rects):
    """ratio 0.5 and a certain flip: the other image at half size, mirrored, on a pad_val canvas; the
    output is lam * current + (1 - lam) * that canvas for one lam in (0, 1), boxes concatenated."""
    ds = mix_dataset(coco_rects, [])
    a, b = ds.dataset[0], ds.dataset[1]
    mixup = TRANSFORMS.build(dict(type='MixUp', ratio_range=(0.5, 0.5), flip_ratio=1.0, pad_val=114))
    np.random.seed(3)
    out = mixup(dict(a, mix_results=[b]))
    canvas = np.full((SIZE, SIZE, 3), 114, np.float64)
    canvas[:SIZE // 2, :SIZE // 2] = cv2.resize(b['img'], (SIZE // 2, SIZE // 2))[:, ::-1]
    img_a = a['img'].astype(np.float64)
    diff = img_a - canvas
    sel = np.abs(diff) > 20
    lam = np.sum((out['img'] - canvas)[sel] * diff[sel]) / np.sum(diff[sel] ** 2)
    assert 0.2 < lam < 0.8
    assert np.abs(lam * img_a + (1 - lam) * canvas - out['img']).max() <= 1.0
    half = b['gt_bboxes'] * 0.5
    flipped = np.stack([SIZE // 2 - half[:, 2], half[:, 1], SIZE // 2 - half[:, 0], half[:, 3]], 1)
    np.testing.assert_allclose(out['gt_bboxes'], np.concatenate([a['gt_bboxes'], flipped]), atol=1e-4)
    assert out['gt_bboxes_labels'].tolist() == a['gt_bboxes_labels'].tolist() + b['gt_bboxes_labels'].tolist()


def test_skip_type_keys_and_no_mix_hook_turn_mixing_off(coco_rects):
    pipeline = [dict(type='Mosaic', img_scale=(64, 64)), dict(type='MixUp'), dict(type='PackDetInputs')]
    ds = mix_dataset(coco_rects, pipeline)
    assert tuple(ds[0]['inputs'].shape) == (3, 64, 64)
    runner = SimpleNamespace(epoch=1, max_epochs=3, train_dataloader=SimpleNamespace(dataset=ds),
                             logger=logging.getLogger('test_mix'))
    hook = HOOKS.build(dict(type='NoMixHook', num_last_epochs=1))
    hook.before_train_epoch(runner)
    assert ds.skip_type_keys == ()
    runner.epoch = 2
    hook.before_train_epoch(runner)
    assert set(ds.skip_type_keys) == {'Mosaic', 'MixUp'}
    out = ds[0]
    assert tuple(out['inputs'].shape) == (3, SIZE, SIZE)
    np.testing.assert_allclose(out['data_samples'].gt_instances.bboxes.numpy(),
                               [[8, 10, 40, 38], [52, 50, 88, 86]])
    with pytest.raises(KeyError, match='RandomAffine'):
        ds.update_skip_type_keys(['RandomAffine'])
    runner.train_dataloader = SimpleNamespace(dataset=ds.dataset)
    with pytest.raises(TypeError, match='MultiImageMixDataset'):
        hook.before_train_epoch(runner)


def test_wrapped_pipeline_must_stop_before_packing(coco_rects):
    ds = DATASETS.build(dict(
        type='MultiImageMixDataset', pipeline=[dict(type='PackDetInputs')],
        dataset=dict(type='CocoDataset', data_root=str(coco_rects), ann_file='ann.json',
                     data_prefix=dict(img='img/'), pipeline=[dict(type='LoadImageFromFile'),
                                                             dict(type='LoadAnnotations'),
                                                             dict(type='PackDetInputs')])))
    with pytest.raises(TypeError, match='before PackDetInputs'):
        ds[0]


def test_recipe_config_training_data_builds_and_mixes(tmp_path):
    """The shipped recipe's train dataset (Mosaic, MixUp, Albu, letterbox) on a small generated shapes
    set: samples come out at the config's input size with boxes inside it, with mixing on and off."""
    from mmengine.config import Config

    from det.datasets import generate_shapes
    cfg = Config.fromfile(str(REPO / 'configs/centernet_mobilenetv2_fpn_320_shapes_mosaic.py'))
    params = dict(num_train=6, num_val=2, img_size=320, seed=1)
    generate_shapes(str(tmp_path / 'shapes'), workers=1, **params)
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.dataset.update(data_root=str(tmp_path / 'shapes'), **params)
    ds = DATASETS.build(dataset_cfg)
    np.random.seed(0)
    for skip in ((), ('Mosaic', 'MixUp')):
        ds.update_skip_type_keys(skip)
        for i in range(3):
            out = ds[i]
            assert tuple(out['inputs'].shape) == (3, 320, 320)
            boxes = out['data_samples'].gt_instances.bboxes
            assert len(boxes) and (boxes >= 0).all() and (boxes <= 320).all()
            assert ((boxes[:, 2:] - boxes[:, :2]) >= 1).all()
