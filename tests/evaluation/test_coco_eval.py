"""det.evaluation.coco_eval against direct pycocotools COCOeval runs (the reference)."""
import copy
import json

import numpy as np
import pytest

from det.evaluation.coco_eval import (
    BACKENDS,
    DEFAULT_TIERS,
    STAT_NAMES,
    evaluate_coco,
    format_per_class_table,
    format_tier_table,
)

from .coco_cases import CAT_IDS, pycocotools_stats, random_case

SEEDS = (0, 1, 2, 3)


def _stats(result):
    return np.array([result.stats[n] for n in STAT_NAMES])


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('seed', SEEDS)
def test_stats_and_summary_match_pycocotools(backend, seed):
    gt, dets = random_case(seed)
    ref, ref_text = pycocotools_stats(gt, dets, return_text=True)
    result = evaluate_coco(gt, dets, backend=backend)
    np.testing.assert_allclose(_stats(result), ref, atol=1e-4, rtol=0)
    assert (ref > 0).sum() >= 8  # the case is not degenerate
    if backend == 'pycocotools':
        assert result.summary == ref_text  # 12 lines, as summarize() prints them


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('seed', SEEDS[:2])
def test_tiers_match_single_range_pycocotools_run(backend, seed):
    gt, dets = random_case(seed)
    result = evaluate_coco(gt, dets, backend=backend)
    assert list(result.tiers) == [t[0] for t in DEFAULT_TIERS]
    for name, lo, hi in DEFAULT_TIERS:
        ref = pycocotools_stats(gt, dets, area_rng=[lo ** 2, hi ** 2])
        tier = result.tiers[name]
        assert tier['AP'] == pytest.approx(ref[3], abs=1e-4), name
        assert tier['AR'] == pytest.approx(ref[9], abs=1e-4), name
        num_gt = sum(lo ** 2 <= a['area'] <= hi ** 2 for a in gt['annotations'] if not a['iscrowd'])
        assert tier['num_gt'] == num_gt > 0


def test_custom_tiers_with_an_empty_tier():
    gt, dets = random_case(0)
    tiers = [('huge', 400, 1e5), ('mid', 20, 60)]  # no box has sqrt(area) >= 400
    result = evaluate_coco(gt, dets, tiers=tiers, backend='pycocotools')
    assert result.tiers['huge']['AP'] == result.tiers['huge']['AR'] == -1
    ref = pycocotools_stats(gt, dets, area_rng=[20 ** 2, 60 ** 2])
    assert result.tiers['mid']['AP'] == pytest.approx(ref[3], abs=1e-4)
    np.testing.assert_allclose(_stats(result), pycocotools_stats(gt, dets), atol=1e-4, rtol=0)


@pytest.mark.parametrize('backend', BACKENDS)
def test_per_class_ap_matches_pycocotools(backend):
    gt, dets = random_case(1)
    result = evaluate_coco(gt, dets, backend=backend)
    assert [c['category_id'] for c in result.per_class] == list(CAT_IDS)
    for row in result.per_class:
        ref = pycocotools_stats(gt, dets, cat_ids=[row['category_id']])
        assert row['AP'] == pytest.approx(ref[0], abs=1e-4)
        assert row['AP50'] == pytest.approx(ref[1], abs=1e-4)
        assert row['name'] == f"class{row['category_id']}"
    assert result.per_class[-1]['AP'] == -1  # category 12 has no ground truth


@pytest.mark.parametrize('backend', BACKENDS)
def test_image_subset_matches_pycocotools(backend):
    gt, dets = random_case(2)
    img_ids = [1, 3, 4]
    dets = [d for d in dets if d['image_id'] in img_ids]
    result = evaluate_coco(gt, dets, backend=backend, img_ids=img_ids)
    ref = pycocotools_stats(gt, dets, img_ids=img_ids)
    np.testing.assert_allclose(_stats(result), ref, atol=1e-4, rtol=0)


@pytest.mark.parametrize('backend', BACKENDS)
def test_perfect_detections_give_ap_one(backend):
    gt, _ = random_case(0)
    dets = [{'image_id': a['image_id'], 'category_id': a['category_id'], 'bbox': a['bbox'], 'score': 1.0}
            for a in gt['annotations'] if not a['iscrowd']]
    result = evaluate_coco(gt, dets, backend=backend)
    for name in ('AP', 'AP50', 'AP75', 'AP_small', 'AP_medium', 'AP_large', 'AR100'):
        assert result.stats[name] == pytest.approx(1.0), name
    assert all(t['AP'] == pytest.approx(1.0) and t['AR'] == pytest.approx(1.0) for t in result.tiers.values())
    assert [c['AP'] for c in result.per_class] == pytest.approx([1.0, 1.0, 1.0, -1.0])


@pytest.mark.parametrize('backend', BACKENDS)
def test_empty_detections(backend):
    gt, _ = random_case(0)
    result = evaluate_coco(gt, [], backend=backend)
    ref = pycocotools_stats(gt, [])
    np.testing.assert_allclose(_stats(result), ref, atol=1e-4, rtol=0)
    assert set(ref.tolist()) <= {0.0, -1.0} and result.stats['AP'] == 0
    assert all(t['AP'] == 0 for t in result.tiers.values())
    assert [c['AP'] for c in result.per_class] == [0, 0, 0, -1]


def test_detections_are_not_modified_and_gt_may_be_a_file(tmp_path):
    gt, dets = random_case(3)
    before = copy.deepcopy(dets)
    path = tmp_path / 'gt.json'
    path.write_text(json.dumps(gt))
    result = evaluate_coco(str(path), dets, backend='pycocotools')
    assert dets == before  # loadRes writes area/id/segmentation into its input; we pass copies
    np.testing.assert_allclose(_stats(result), pycocotools_stats(gt, dets), atol=1e-4, rtol=0)


def test_unknown_image_or_category_ids_raise():
    gt, dets = random_case(0)
    bad = dets + [dict(dets[0], image_id=999), dict(dets[0], category_id=55)]
    with pytest.raises(ValueError, match=r'image id.*999.*category id.*55'):
        evaluate_coco(gt, bad)


def test_tables_have_one_row_per_tier_and_class():
    gt, dets = random_case(0)
    result = evaluate_coco(gt, dets)
    tier_rows = format_tier_table(result).splitlines()[2:]
    assert [r.split()[0] for r in tier_rows] == ['vt', 't', 's', 'm', 'l']
    assert tier_rows[0].split()[1] == '0-8' and tier_rows[-1].split()[1] == '96-inf'
    assert float(tier_rows[2].split()[3]) == pytest.approx(result.tiers['s']['AP'], abs=5e-4)
    class_rows = format_per_class_table(result).splitlines()[2:]
    assert [r.split()[0] for r in class_rows] == [f'class{c}' for c in CAT_IDS]
