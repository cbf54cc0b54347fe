"""Detections loaded from arrays in one pass (det.evaluation.coco_eval) against pycocotools' own
``loadRes``: the same result annotations, the same stats from result dicts and from an [N, 7] array, and
clear errors on malformed input."""
import contextlib
import copy
import io

import numpy as np
import pytest
from pycocotools.coco import COCO

from det.evaluation.coco_eval import (
    BACKENDS,
    STAT_NAMES,
    _load_detections,
    detection_columns,
    evaluate_coco,
    load_coco_gt,
)

from .coco_cases import pycocotools_stats, random_case


def _rows(dets: list) -> np.ndarray:
    """Result dicts -> the COCO API's numpy rows (image_id, x, y, w, h, score, category_id)."""
    return np.array([[d['image_id'], *d['bbox'], d['score'], d['category_id']] for d in dets])


@pytest.mark.parametrize('backend', BACKENDS)
def test_result_annotations_equal_pycocotools_loadres(backend):
    gt, dets = random_case(seed=5)
    coco_gt = COCO()
    coco_gt.dataset = copy.deepcopy(gt)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt.createIndex()
        reference = coco_gt.loadRes(copy.deepcopy(dets))
    ours = _load_detections(load_coco_gt(gt, backend), detection_columns(dets), backend)
    assert sorted(ours.anns) == sorted(reference.anns)
    for ann_id, ref in reference.anns.items():
        ann = ours.anns[ann_id]
        for key in ('image_id', 'category_id', 'bbox', 'score', 'area', 'iscrowd'):
            assert ann[key] == ref[key], (ann_id, key)
    assert ours.getImgIds() == reference.getImgIds() and ours.getCatIds() == reference.getCatIds()


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('seed', (0, 1))
def test_array_and_dict_detections_give_pycocotools_stats(backend, seed):
    gt, dets = random_case(seed)
    original = copy.deepcopy(dets)
    ref = pycocotools_stats(gt, dets)
    from_dicts = evaluate_coco(gt, dets, backend=backend)
    from_rows = evaluate_coco(gt, _rows(dets), backend=backend)
    # pycocotools' own code: bit-identical; faster-coco-eval sums in another order (last-bit differences)
    atol = 0 if backend == 'pycocotools' else 1e-12
    np.testing.assert_allclose([from_dicts.stats[k] for k in STAT_NAMES], ref, rtol=0, atol=atol)
    assert from_rows.stats == from_dicts.stats
    assert from_rows.tiers == from_dicts.tiers and from_rows.per_class == from_dicts.per_class
    assert dets == original  # the caller's detections are left as they were


def test_empty_array_is_an_empty_result():
    gt, dets = random_case(seed=0)
    result = evaluate_coco(gt, np.zeros((0, 7)))
    assert result.stats['AP'] == 0.0 and result.stats == evaluate_coco(gt, []).stats


def test_malformed_detections_raise_clear_errors():
    gt, dets = random_case(seed=0)
    with pytest.raises(ValueError, match=r'\[N, 7\]'):
        evaluate_coco(gt, np.zeros((3, 6)))
    with pytest.raises(KeyError, match='score'):
        evaluate_coco(gt, [{k: v for k, v in dets[0].items() if k != 'score'}])
    with pytest.raises(ValueError, match='4 numbers'):
        evaluate_coco(gt, [dict(dets[0], bbox=[1.0, 2.0, 3.0])])
    with pytest.raises(TypeError, match='list of COCO result dicts'):
        evaluate_coco(gt, {'image_id': 1})
    bad = _rows(dets)
    bad[0, 0] = 999
    with pytest.raises(ValueError, match='image id'):
        evaluate_coco(gt, bad)


@pytest.mark.parametrize('backend', BACKENDS)
def test_ground_truth_without_area_iscrowd_or_unique_ids_is_completed(backend):
    """A labelling tool's export: no area, no iscrowd on ordinary boxes, every annotation id 0. Both
    libraries fail on it (KeyError 'area' / 'iscrowd') or mix boxes up by id; det fills area = bbox w*h,
    iscrowd = 0 and renumbers, says so, and scores what pycocotools scores on the json written out in full."""
    gt, dets = random_case(seed=2)
    reference = copy.deepcopy(gt)
    for index, ann in enumerate(reference['annotations']):
        ann.update(id=index + 1, area=ann['bbox'][2] * ann['bbox'][3])
    export = copy.deepcopy(reference)
    for ann in export['annotations']:
        del ann['area']
        ann['id'] = 0
        if not ann['iscrowd']:
            del ann['iscrowd']
    with pytest.warns(UserWarning) as record:
        result = evaluate_coco(export, dets, backend=backend)
    message = ' '.join(str(w.message) for w in record)
    n = len(export['annotations'])
    assert f'{n} of {n} annotations have no area: bbox w*h is used' in message
    assert f'{n - 1} of {n} annotations have no iscrowd: 0 is used' in message
    assert f'annotation ids are missing or repeated: renumbered 1..{n}' in message
    atol = 0 if backend == 'pycocotools' else 1e-12
    np.testing.assert_allclose([result.stats[k] for k in STAT_NAMES], pycocotools_stats(reference, dets),
                               rtol=0, atol=atol)
    assert 'area' not in export['annotations'][0]  # the caller's dict is left as it was
