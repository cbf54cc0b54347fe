"""tools/analysis/pr_curves.py: the area under every plotted curve equals AP50 from a plain pycocotools
run (per class over all sizes, per size tier over all classes)."""
import contextlib
import copy
import io
import json

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from det.evaluation.coco_eval import DEFAULT_TIERS

from ...evaluation.coco_cases import random_case
from .tool_loader import assert_bad_inputs_named, load_tool


def pycocotools_precision50(gt: dict, dets: list, area_rng) -> np.ndarray:
    """pycocotools' precision [R, K] at IoU 0.5, maxDets 100, one area range."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes(copy.deepcopy(dets)), 'bbox')
        ev.params.areaRng = [list(area_rng)]
        ev.params.areaRngLbl = ['one']
        ev.evaluate()
        ev.accumulate()
    assert ev.params.iouThrs[0] == 0.5
    return ev.eval['precision'][0, :, :, 0, 2]


def plotted(ax) -> dict:
    """Legend label prefix (before ':') -> y data of each drawn curve of one axes."""
    return {line.get_label().split(':')[0]: np.asarray(line.get_ydata()) for line in ax.lines
            if len(line.get_ydata())}


@pytest.mark.parametrize('seed', [0, 1])
def test_area_under_each_plotted_curve_is_pycocotools_ap50(tmp_path, seed):
    gt, dets = random_case(seed, num_images=8)
    (tmp_path / 'gt.json').write_text(json.dumps(gt))
    (tmp_path / 'dets.json').write_text(json.dumps(dets))
    out = tmp_path / 'pr.png'
    result = load_tool('pr_curves').main([str(tmp_path / 'gt.json'), str(tmp_path / 'dets.json'),
                                         '--out', str(out)])
    assert cv2.imread(str(out)).shape == (550, 1300, 3)  # 13 x 5.5 inches at 100 dpi
    by_class, by_tier = (plotted(ax) for ax in result['figure'].axes)

    reference = pycocotools_precision50(gt, dets, [0, 1e10])
    cat_ids = sorted(c['id'] for c in gt['categories'])
    for k, cat_id in enumerate(cat_ids):
        name = f'class{cat_id}'
        if (reference[:, k] == -1).all():  # category 12 has no ground truth: listed, not drawn
            assert name not in by_class
            continue
        ap50 = reference[:, k].mean()
        assert by_class[name].mean() == pytest.approx(ap50, abs=1e-6)
    assert len(by_class) == 3

    drawn_tiers = 0
    for name, lo, hi in DEFAULT_TIERS:
        reference = pycocotools_precision50(gt, dets, [lo ** 2, hi ** 2])
        valid = reference[reference > -1]
        label = f'{name} {lo:g}-' + ('inf' if hi >= 1e5 else f'{hi:g}') + ' px'
        if valid.size:
            drawn_tiers += 1
            assert by_tier[label].mean() == pytest.approx(valid.mean(), abs=1e-6)  # COCO's tier AP50
    assert drawn_tiers == len(by_tier) >= 4


def test_bad_input_is_named(tmp_path):
    gt, dets = random_case(0)
    assert_bad_inputs_named('pr_curves', tmp_path, gt, dets[:3] + [dict(dets[0], image_id=999)],
                            r'image id\(s\) not in the annotations')
