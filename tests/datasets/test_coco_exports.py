"""COCO json as labelling tools export it: no iscrowd or area, categories from 0 or with gaps, images
without annotations, sub-folders in file_name, repeated annotation ids, annotations of unlisted images.
Each loads; what changes training or evaluation is named in the data check; det's evaluation of the
dataset equals pycocotools' on the json written out in full."""
import json

import cv2
import numpy as np
import pytest

from det.datasets import CocoDataset
from det.datasets.checks import JSON_FILLED, MISSING, NO_BOX, ORPHAN_ANNOTATION, UNUSED_CLASS, check_dataset
from det.evaluation import CocoMetric

from ..evaluation.coco_cases import pycocotools_stats


def _export(root, images, annotations, categories):
    """Write the images (64x48 noise, at their file_name, sub-folders included) and ``root/ann.json``."""
    rng = np.random.default_rng(0)
    for image in images:
        path = root / 'images' / image['file_name']
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), rng.integers(0, 255, (image['height'], image['width'], 3), np.uint8))
    (root / 'ann.json').write_text(json.dumps(dict(images=images, annotations=annotations,
                                                   categories=categories)))
    return str(root / 'ann.json')


def _load(ann_file, root):
    return CocoDataset(ann_file=ann_file, data_prefix=dict(img=str(root / 'images')), test_mode=True)


def _images(*names):
    return [dict(id=i + 1, file_name=n, width=64, height=48) for i, n in enumerate(names)]


def _det_and_reference_stats(ds, ann_file, reference_gt):
    """det's CocoMetric on the dataset (its own json) and pycocotools on ``reference_gt``, for the same
    detections: every box jittered, plus a false positive per image."""
    rng = np.random.default_rng(1)
    label_to_cat = {label: cat for cat, label in ds.cat2label.items()}
    samples, dets = [], []
    for i in range(len(ds)):
        record = ds.get_data_info(i)
        boxes = np.array([inst['bbox'] for inst in record['instances']] + [[2, 2, 20, 14]], np.float64)
        boxes = boxes + rng.normal(0, 1.5, boxes.shape)
        labels = np.array([inst['bbox_label'] for inst in record['instances']] + [0])
        scores = rng.uniform(0.1, 1, len(labels))
        samples.append(dict(img_id=record['img_id'],
                            pred_instances=dict(bboxes=boxes, labels=labels, scores=scores)))
        dets += [dict(image_id=record['img_id'], category_id=label_to_cat[int(lab)], score=float(score),
                      bbox=[b[0], b[1], b[2] - b[0], b[3] - b[1]])
                 for b, lab, score in zip(boxes, labels, scores)]
    metric = CocoMetric()
    metric.dataset_meta = ds.metainfo  # the dataset's own json, ann_file in its metainfo
    metric.process({}, samples)
    ours = metric.compute_metrics(metric.results)
    ref = pycocotools_stats(reference_gt, dets)
    return ours, dict(AP=ref[0], AP50=ref[1], AP75=ref[2])


def test_no_iscrowd_no_area_and_repeated_ids(tmp_path):
    anns = [dict(id=0, image_id=1, category_id=1, bbox=[5, 5, 20, 15]),
            dict(id=0, image_id=1, category_id=2, bbox=[30, 10, 25, 30]),
            dict(id=0, image_id=2, category_id=1, bbox=[10, 20, 12, 12])]
    categories = [dict(id=1, name='a'), dict(id=2, name='b')]
    ann_file = _export(tmp_path, _images('x.jpg', 'y.jpg'), anns, categories)
    with pytest.warns(UserWarning, match='json fields filled in: ann.json'):
        ds = _load(ann_file, tmp_path)
    # pycocotools alone keeps one annotation per id: here every box is loaded.
    assert [len(ds.get_data_info(i)['instances']) for i in range(2)] == [2, 1]
    report = check_dataset(ds, 'val')
    assert report.files[JSON_FILLED] == [
        'ann.json (3 of 3 annotations have no area: bbox w*h is used (size tiers))',
        'ann.json (3 of 3 annotations have no iscrowd: 0 is used)',
        'ann.json (annotation ids are missing or repeated: renumbered 1..3)']
    assert report.has_problems
    reference = [dict(a, id=i + 1, area=a['bbox'][2] * a['bbox'][3], iscrowd=0) for i, a in enumerate(anns)]
    with pytest.warns(UserWarning, match='have no area'):  # the evaluator says so too
        ours, ref = _det_and_reference_stats(ds, ann_file, dict(images=_images('x.jpg', 'y.jpg'),
                                                                annotations=reference, categories=categories))
    assert 0 < ref['AP'] < 1
    assert ours['AP'] == pytest.approx(ref['AP'], abs=1e-12) and ours['AP50'] == pytest.approx(ref['AP50'])


def test_categories_from_zero_with_gaps_and_an_unused_one(tmp_path):
    """Roboflow-style: category 0 is the dataset's supercategory and has no annotation; ids have a gap."""
    categories = [dict(id=0, name='cells'), dict(id=1, name='rbc'), dict(id=5, name='wbc')]
    anns = [dict(id=1, image_id=1, category_id=1, bbox=[5, 5, 20, 15], area=300, iscrowd=0),
            dict(id=2, image_id=1, category_id=5, bbox=[30, 10, 25, 30], area=750, iscrowd=0),
            dict(id=3, image_id=2, category_id=5, bbox=[10, 20, 12, 12], area=144, iscrowd=0)]
    images = _images('x.jpg', 'y.jpg')
    ann_file = _export(tmp_path, images, anns, categories)
    with pytest.warns(UserWarning, match=r'classes without annotations: cells \(category id 0\)'):
        ds = _load(ann_file, tmp_path)
    assert ds.metainfo['classes'] == ('cells', 'rbc', 'wbc')
    assert [i['bbox_label'] for i in ds.get_data_info(0)['instances']] == [1, 2]
    report = check_dataset(ds, 'val')
    assert report.files[UNUSED_CLASS] == ['cells (category id 0)'] and report.files[JSON_FILLED] == []
    ours, ref = _det_and_reference_stats(ds, ann_file, dict(images=images, annotations=anns,
                                                            categories=categories))
    assert 0 < ref['AP'] < 1 and ours['AP'] == pytest.approx(ref['AP'], abs=1e-12)


def test_images_without_annotations_sub_folders_and_unlisted_images(tmp_path):
    images = _images('batch 1/x.jpg', 'batch2/deep/y.PNG', 'z.jpg')
    anns = [dict(id=1, image_id=1, category_id=3, bbox=[5, 5, 20, 15], area=300, iscrowd=0),
            dict(id=2, image_id=2, category_id=3, bbox=[10, 20, 12, 12], area=144, iscrowd=0),
            dict(id=3, image_id=9, category_id=3, bbox=[10, 20, 12, 12], area=144, iscrowd=0)]
    categories = [dict(id=3, name='a')]
    ann_file = _export(tmp_path, images, anns, categories)
    with pytest.warns(UserWarning, match=r'annotations of images not in the json: image_id 9 \(1\)'):
        ds = _load(ann_file, tmp_path)
    assert [ds.get_data_info(i)['img_path'] for i in range(3)] == [
        str(tmp_path / 'images' / n) for n in ('batch 1/x.jpg', 'batch2/deep/y.PNG', 'z.jpg')]
    report = check_dataset(ds, 'val')
    assert report.files[MISSING] == [] and report.files[NO_BOX] == [str(tmp_path / 'images/z.jpg')]
    assert report.files[ORPHAN_ANNOTATION] == ['image_id 9 (1)']
    # The image without annotations is evaluated: its false positive counts.
    ours, ref = _det_and_reference_stats(ds, ann_file, dict(images=images, annotations=anns[:2],
                                                            categories=categories))
    assert 0 < ref['AP'] < 1 and ours['AP'] == pytest.approx(ref['AP'], abs=1e-12)
