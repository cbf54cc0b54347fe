"""A validation image that cannot be read stops nothing by default: tools/train.py and tools/test.py
name it in the data check, leave it out of evaluation and say what the metric covers (log, printed
results, the run's json); --strict-data stops as before. A JPEG cut short is read and listed as a
warning; a training image whose pixel data is broken behind a sound header passes the header-only check
and is skipped and named by the loader."""
import importlib.util
import json
import re

import pytest

from ..datasets.test_image_decoding import broken_png_bytes
from .conftest import REPO, experiment_config, run_tool, voc_dataset, write_voc_split

STRICT_ERROR = ('val dataset VOCDataset: 1 images cannot be read ({path}); a test-mode dataset would stop '
                'on them mid-run: fix or remove them')


@pytest.fixture(scope='module')
def experiment(tmp_path_factory):
    """(config, data root) of a VOC folder whose val split has 4 images: one empty file, one JPEG cut
    short, two sound ones; the train split has 6, one a PNG with noise for pixel data."""
    folder = tmp_path_factory.mktemp('unreadable_val')
    root = folder / 'voc'
    circle = [('circle', (5, 5, 30, 30))]
    write_voc_split(root, 'train', {f'img{i}': circle for i in range(6)})
    (root / 'JPEGImages/img5.jpg').unlink()
    (root / 'JPEGImages/img5.png').write_bytes(broken_png_bytes())
    xml = root / 'Annotations/img5.xml'
    xml.write_text(xml.read_text().replace('img5.jpg', 'img5.png'))
    write_voc_split(root, 'val', {f'val{i}': circle for i in range(4)})
    (root / 'JPEGImages/val1.jpg').write_bytes(b'')
    cut = root / 'JPEGImages/val2.jpg'
    cut.write_bytes(cut.read_bytes()[:-20])
    config = folder / 'voc.py'
    config.write_text(experiment_config(voc_dataset(root, ('circle', 'square')), 2))
    return config, root


@pytest.fixture(scope='module')
def trained(experiment, tmp_path_factory):
    config, root = experiment
    work_dir = tmp_path_factory.mktemp('wd')
    proc = run_tool('train', config, '--work-dir', work_dir)
    return work_dir, proc.stdout + proc.stderr


@pytest.mark.slow
def test_training_leaves_the_unreadable_val_image_out_and_says_so(experiment, trained):
    _, root = experiment
    work_dir, log = trained
    assert (work_dir / 'epoch_1.pth').exists()
    table = log[log.index('Data check'):]
    assert re.search(r'val +unreadable image +1 +\S+/val1\.jpg \(empty file\)', table)
    assert re.search(r'val +truncated image, read +1 +\S+/val2\.jpg', table)  # a warning, not an error
    assert 'val: 1 of 4 images cannot be read; they are left out of evaluation' in log
    assert 'CocoMetric: evaluated on 3 of 4 images; 1 unreadable, listed above' in log
    assert re.search(r'coco/images_evaluated: 3\.0+ +coco/images_unreadable: 1\.0+', log)
    # The training PNG passed the header-only check; the loader skipped it and named it, with the reason.
    assert 'train +unreadable image' not in table
    assert f'cannot read image {root}/JPEGImages/img5.png (broken PNG data (' in log


@pytest.mark.slow
def test_test_tool_prints_and_writes_what_the_metric_covers(experiment, trained, tmp_path):
    config, _ = experiment
    work_dir, _ = trained
    proc = run_tool('test', config, work_dir / 'epoch_1.pth', '--work-dir', tmp_path)
    out = proc.stdout + proc.stderr
    assert re.search(r'test +unreadable image +1 +\S+/val1\.jpg \(empty file\)', out)
    assert 'coco/coverage: evaluated on 3 of 4 images; 1 unreadable, listed above' in out
    [results] = [p for p in tmp_path.glob('*/*.json') if p.stem == p.parent.name]  # <timestamp>.json
    written = json.loads(results.read_text())
    assert written['coco/coverage'] == 'evaluated on 3 of 4 images; 1 unreadable, listed above'
    assert written['coco/images_evaluated'] == 3 and written['coco/images_unreadable'] == 1


def _tool(name):
    """tools/<name>.py as a module, to run its ``main`` in this process (a subprocess spends ~10 s on
    imports before the check that stops it)."""
    spec = importlib.util.spec_from_file_location(f'det_tool_{name}', REPO / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_strict_data_stops_both_tools_as_before(experiment, tmp_path, monkeypatch):
    """--strict-data on tools/train.py, the config key on tools/test.py: today's error, before any step."""
    config, root = experiment
    error = STRICT_ERROR.format(path=f'{root}/JPEGImages/val1.jpg')
    # leave pytest's malloc settings alone
    monkeypatch.setattr('det.engine.machine.keep_freed_memory', lambda: None)
    train = _tool('train')
    with pytest.raises(SystemExit, match=re.escape(error)):
        train.main([str(config), '--work-dir', str(tmp_path / 'wd'), '--strict-data'])
    assert not list((tmp_path / 'wd').glob('*.pth'))
    test = _tool('test')
    (tmp_path / 'none.pth').write_bytes(b'')  # exists, so the tool gets past its checkpoint-path check
    monkeypatch.setattr(test, 'check_checkpoint_matches', lambda *args: pytest.fail('the check should stop'))
    with pytest.raises(SystemExit, match=re.escape(error.replace('val dataset', 'test dataset'))):
        test.main([str(config), str(tmp_path / 'none.pth'), '--work-dir', str(tmp_path / 'test'),
                   '--cfg-options', 'strict_data=True'])
