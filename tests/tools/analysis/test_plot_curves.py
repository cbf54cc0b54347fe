"""tools/analysis/plot_curves.py on a synthetic mmengine work dir: the plotted lines are the values of
scalars.json, read back from the figure."""
import json

import cv2
import numpy as np
import pytest

from .tool_loader import load_tool


def write_run(work_dir, stamp: str, epochs: int, iters_per_epoch: int = 4, seed: int = 0) -> list:
    """A scalars.json as mmengine's LoggerHook + LocalVisBackend write it: training records with
    epoch / iter / step, then one validation record per epoch with step = epoch."""
    rng = np.random.default_rng(seed)
    records, it = [], 0
    for epoch in range(1, epochs + 1):
        for _ in range(iters_per_epoch):
            it += 1
            cls, box = float(rng.uniform(0.5, 2)), float(rng.uniform(0.1, 1))
            records.append({'lr': 0.001, 'data_time': 0.01, 'loss': cls + box, 'loss_cls': cls,
                            'loss_bbox': box, 'time': 0.2, 'epoch': epoch, 'iter': it, 'step': it})
        records.append({'coco/AP': 0.1 * epoch, 'coco/AP50': 0.15 * epoch, 'data_time': 0.02, 'time': 0.1,
                        'step': epoch})
    folder = work_dir / stamp / 'vis_data'
    folder.mkdir(parents=True)
    (folder / 'scalars.json').write_text(''.join(json.dumps(r) + '\n' for r in records))
    return records


def lines_by_label(fig) -> dict:
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for ax in fig.axes
            for line in ax.lines}


def test_plotted_series_are_the_logged_values(tmp_path):
    write_run(tmp_path, '20250101_000000', epochs=2, seed=1)
    latest = write_run(tmp_path, '20250102_000000', epochs=3, seed=2)
    (tmp_path / '20250103_000000').mkdir()  # a run that died before logging: not a candidate
    out = tmp_path / 'curves.png'
    result = load_tool('plot_curves').main([str(tmp_path), '--out', str(out)])
    assert result['scalars'].endswith('20250102_000000/vis_data/scalars.json')
    assert cv2.imread(str(out)).shape == (420, 1300, 3)  # two panels of 6.5 x 4.2 inches at 100 dpi

    lines = lines_by_label(result['figure'])
    assert set(lines) == {'loss', 'loss_cls', 'loss_bbox', 'coco/AP50'}
    train = [r for r in latest if 'iter' in r]
    for key in ('loss', 'loss_cls', 'loss_bbox'):
        assert lines[key] == ([r['iter'] for r in train], [r[key] for r in train])
    assert lines['coco/AP50'] == ([1, 2, 3], [0.15, 0.3, 0.15 * 3])
    titles = sorted(ax.get_title() for ax in result['figure'].axes)
    assert titles == ['coco (validation)', 'loss (training)']
    assert [ax.get_xlabel() for ax in result['figure'].axes] == ['iteration', 'epoch']


def test_run_and_patterns(tmp_path):
    older = write_run(tmp_path, '20250101_000000', epochs=2, seed=1)
    write_run(tmp_path, '20250102_000000', epochs=3, seed=2)
    result = load_tool('plot_curves').main([str(tmp_path), '--run', '20250101_000000', '--keys', 'coco/AP*',
                                            'lr', '--out', str(tmp_path / 'c.png')])
    lines = lines_by_label(result['figure'])
    assert lines['coco/AP'] == ([1, 2], [0.1, 0.2])
    assert lines['coco/AP50'] == ([1, 2], [0.15, 0.3])
    assert lines['lr'][1] == [r['lr'] for r in older if 'iter' in r]


def test_bad_input_lists_what_exists(tmp_path):
    tool = load_tool('plot_curves')
    with pytest.raises(SystemExit, match='no such work dir'):
        tool.main([str(tmp_path / 'nowhere')])
    with pytest.raises(SystemExit, match='holds no <timestamp>/vis_data/scalars.json'):
        tool.main([str(tmp_path)])
    write_run(tmp_path, '20250101_000000', epochs=1)
    with pytest.raises(SystemExit, match=r"no scalar matches 'loss_obj'; training scalars: \['data_time', "
                                         r"'loss', 'loss_bbox', 'loss_cls', 'lr', 'time'\], validation "
                                         r"scalars: \['coco/AP', 'coco/AP50', 'data_time', 'time'\]"):
        tool.main([str(tmp_path), '--keys', 'loss_obj'])
    with pytest.raises(SystemExit, match=r"no run '2024' .* runs: \['20250101_000000'\]"):
        tool.main([str(tmp_path), '--run', '2024'])
