"""tools/eval_dets.py on files in tmp_path, against a direct pycocotools run."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from det.evaluation.coco_eval import DEFAULT_TIERS, STAT_NAMES

from .coco_cases import pycocotools_stats, random_case

TOOL = Path(__file__).resolve().parents[2] / 'tools' / 'eval_dets.py'


def _write_case(tmp_path, seed=0, dets=None):
    gt, case_dets = random_case(seed)
    (tmp_path / 'gt.json').write_text(json.dumps(gt))
    (tmp_path / 'dets.json').write_text(json.dumps(case_dets if dets is None else dets))
    return gt, case_dets


def _tool_main():
    spec = importlib.util.spec_from_file_location('eval_dets_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_eval_dets_subprocess_matches_pycocotools(tmp_path):
    gt, dets = _write_case(tmp_path)
    out = tmp_path / 'metrics.json'
    proc = subprocess.run([sys.executable, str(TOOL), str(tmp_path / 'gt.json'), str(tmp_path / 'dets.json'),
                           '--out', str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    ref, ref_text = pycocotools_stats(gt, dets, return_text=True)
    assert proc.stdout.startswith(ref_text + '\n')  # pycocotools' 12 lines first
    assert 'by size tier' in proc.stdout and 'Per-class AP' in proc.stdout
    metrics = json.loads(out.read_text())
    np.testing.assert_allclose([metrics['coco'][n] for n in STAT_NAMES], ref, atol=1e-4, rtol=0)
    for name, lo, hi in DEFAULT_TIERS:
        tier = pycocotools_stats(gt, dets, area_rng=[lo ** 2, hi ** 2])
        assert metrics['tiers'][name]['AP'] == pytest.approx(tier[3], abs=1e-4)
        assert metrics['tiers'][name]['AR'] == pytest.approx(tier[9], abs=1e-4)
    assert len(metrics['per_class']) == len(gt['categories'])


def test_eval_dets_custom_tiers_and_empty_detections(tmp_path, capsys):
    gt, _ = _write_case(tmp_path, dets=[])
    out = tmp_path / 'm.json'
    _tool_main()([str(tmp_path / 'gt.json'), str(tmp_path / 'dets.json'), '--out', str(out),
                  '--tiers', 'a:0:20', 'b:20:1e5', '--backend', 'pycocotools'])
    metrics = json.loads(out.read_text())
    assert list(metrics['tiers']) == ['a', 'b']
    np.testing.assert_allclose([metrics['coco'][n] for n in STAT_NAMES], pycocotools_stats(gt, []), atol=1e-4)
    assert 'Average Precision' in capsys.readouterr().out


def test_eval_dets_clear_errors(tmp_path):
    _, dets = _write_case(tmp_path)
    main = _tool_main()
    with pytest.raises(SystemExit, match='no such file'):
        main([str(tmp_path / 'gt.json'), str(tmp_path / 'missing.json')])
    (tmp_path / 'bad.json').write_text(json.dumps(dets + [dict(dets[0], image_id=999, category_id=55)]))
    with pytest.raises(SystemExit, match=r'image id.*999.*category id.*55'):
        main([str(tmp_path / 'gt.json'), str(tmp_path / 'bad.json')])
