"""tools/train.py checks its data and config before the first step: a broken dataset is reported in one
table (each unreadable file named once, however many epochs), a config whose evaluator or head does not
fit the data stops within seconds, and tools/analysis/check_dataset.py prints the same table, instantly
the second time."""
import importlib.util
import re

import pytest

from det.datasets import checks as checks_module
from det.datasets.shapes import generate_shapes

from .conftest import REPO, experiment_config, run_tool, voc_dataset, write_voc_split


def voc_config(data_root: str = 'no/such/root') -> str:
    """A VOC experiment; the tests give the real data root with --data-root where they keep the default."""
    return experiment_config(voc_dataset(data_root, ('circle', 'square')), 2, epochs=2, workers=1)


# A shipped-style experiment on COCO-format data whose evaluator names its json explicitly.
def coco_parent(root: str) -> str:
    return experiment_config(
        f"dict(type='CocoDataset', data_root={root!r})", 5, epochs=2, val_interval=1,
        train="dict(data, ann_file='annotations/train.json', data_prefix=dict(img='train/'))",
        val="dict(data, ann_file='annotations/val.json', data_prefix=dict(img='val/'))",
        evaluator=f"dict(type='CocoMetric', ann_file={root!r} + '/annotations/val.json')")


# What a user writes for VOC data on top of it: new datasets, and an evaluator they believe is reset.
VOC_CHILD = """
_base_ = [{parent!r}]
voc = dict(_delete_=True, type='VOCDataset', data_root={root!r}, metainfo=dict(classes=('circle', 'square')),
           pipeline={{{{_base_.pipeline}}}})
train_dataloader = dict(dataset=dict(voc, split='train'))
val_dataloader = dict(dataset=dict(voc, split='val', test_mode=True))
val_evaluator = dict(type='CocoMetric')  # mmengine merges this into the parent's dict: ann_file stays
"""


def bad_voc(root):
    """Train split with a corrupt and a missing image, an unknown category and a duplicate; clean val."""
    good = [('circle', (5, 5, 30, 30)), ('square', (30, 10, 60, 40))]
    write_voc_split(root, 'train', {f'img{i}': good for i in range(8)})
    write_voc_split(root, 'val', {f'val{i}': good for i in range(2)})
    (root / 'Annotations/img1.xml').write_text(
        (root / 'Annotations/img1.xml').read_text().replace('square', 'unicorn'))
    (root / 'JPEGImages/img3.jpg').write_bytes(b'not a jpeg at all')
    (root / 'JPEGImages/img5.jpg').unlink()
    (root / 'JPEGImages/img6.jpg').write_bytes((root / 'JPEGImages/img7.jpg').read_bytes())


def test_bad_data_is_reported_once_in_a_table_and_training_goes_on(tmp_path):
    bad_voc(tmp_path / 'voc')
    config = tmp_path / 'voc.py'
    config.write_text(voc_config())
    proc = run_tool('train', config, '--work-dir', tmp_path / 'wd', '--data-root', tmp_path / 'voc')
    log = proc.stdout + proc.stderr
    assert (tmp_path / 'wd' / 'epoch_2.pth').exists()
    table = log[log.index('Data check'):]
    for row in (r'train +missing image +1 +\S+/img5\.jpg', r'train +unreadable image +1 +\S+/img3\.jpg',
                r'train +unknown-category annotations skipped +1 +img1\.xml \(unicorn\)',
                r'train +duplicate files \(same content\) +1 +\S+/img6\.jpg = \S+/img7\.jpg'):
        assert re.search(row, table), row
    # Named in the table, and not again by the loader in either epoch (its worker is forked anew for
    # each epoch); the skipped annotation is warned about once, by the run's own dataset.
    assert 'cannot read image' not in log
    assert log.count("not among the dataset's classes were skipped ('unicorn': 1)") == 1
    assert (tmp_path / 'wd' / 'dataset_check_cache.json').is_file()
    assert 'Failed to search registry' not in log  # every mmengine registry has a det child


def test_inherited_evaluator_ann_file_and_head_classes_fail_before_training(tmp_path):
    generate_shapes(str(tmp_path / 'shapes'), num_train=4, num_val=4, img_size=64, seed=1, workers=1)
    good = [('circle', (5, 5, 30, 30))]
    write_voc_split(tmp_path / 'voc', 'train', {f'img{i}': good for i in range(4)})
    write_voc_split(tmp_path / 'voc', 'val', {f'val{i}': good for i in range(4)})
    parent = tmp_path / 'coco_parent.py'
    parent.write_text(coco_parent(str(tmp_path / 'shapes')))
    child = tmp_path / 'voc_child.py'
    child.write_text(VOC_CHILD.format(parent=str(parent), root=str(tmp_path / 'voc')))

    proc = run_tool('train', child, '--work-dir', tmp_path / 'wd', check=False)
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert 'error: the config does not fit its data' in log and 'Traceback' not in log
    assert 'model.head.num_classes=5, but the train dataset has 2 classes' in log
    assert f"val_evaluator CocoMetric(ann_file='{tmp_path}/shapes/annotations/val.json')" in log
    assert "ann_file=None" in log  # the way out of mmengine's dict merge
    assert 'Epoch(train)' not in log and not list((tmp_path / 'wd').glob('*.pth'))


def test_a_dataset_that_cannot_be_built_stops_with_its_reason(tmp_path):
    """A VOC folder whose xml classes are not the config's: the dataset's own error (naming the xml
    classes) stops the run as a config error, not as a traceback from inside the dataset."""
    from det.engine.config import load_config
    from det.engine.preflight import DataCheckError, check_before_run
    cells = [('RBC', (5, 5, 30, 30)), ('WBC', (30, 10, 60, 40))]
    write_voc_split(tmp_path / 'voc', 'train', {f'img{i}': cells for i in range(2)})
    write_voc_split(tmp_path / 'voc', 'val', {'val0': cells})
    config = tmp_path / 'voc.py'
    # The data root written into the config (--data-root would take the folder's classes instead).
    config.write_text(voc_config(str(tmp_path / 'voc')))
    cfg = load_config(str(config), work_dir=str(tmp_path / 'wd'))
    with pytest.raises(DataCheckError, match=r"train dataset cannot be built: .*\['RBC', 'WBC'\]"):
        check_before_run(cfg)


def _check_dataset_tool():
    spec = importlib.util.spec_from_file_location('check_dataset', REPO / 'tools/analysis/check_dataset.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_check_dataset_tool_names_files_and_is_instant_the_second_time(tmp_path, capsys, monkeypatch):
    bad_voc(tmp_path / 'voc')
    config = tmp_path / 'voc.py'
    config.write_text(voc_config())
    tool = _check_dataset_tool()
    args = [str(config), '--data-root', str(tmp_path / 'voc'), '--work-dir', str(tmp_path / 'wd'),
            '--all-files']
    assert tool.main(args) == 1  # problems found
    first = capsys.readouterr().out
    assert 'img3.jpg' in first and 'img5.jpg' in first and 'img1.xml (unicorn)' in first

    decoded = []
    real = checks_module._inspect
    monkeypatch.setattr(checks_module, '_inspect', lambda path, *a: decoded.append(path) or real(path, *a))
    assert tool.main(args) == 1
    assert capsys.readouterr().out.split('checked in')[0] == first.split('checked in')[0]
    assert decoded == [str(tmp_path / 'voc/JPEGImages/img5.jpg')]  # only the missing file is looked for

    assert tool.main(args[:1] + ['--split', 'val'] + args[1:]) == 0  # the val split is clean
