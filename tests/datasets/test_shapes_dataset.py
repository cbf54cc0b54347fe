"""The generated shapes dataset: determinism, crash safety, size tiers, loading through CocoDataset."""
import hashlib
import os

import numpy as np
import pytest

import det.datasets.shapes as shapes
from det.datasets import ShapesDataset, generate_shapes


def _digest(root):
    files = sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)
    return {f: hashlib.sha256(open(os.path.join(root, f), 'rb').read()).hexdigest() for f in files}


def test_same_seed_gives_identical_files(tmp_path):
    kwargs = dict(num_train=70, num_val=4, img_size=96)  # 70 > 64: the train split uses the process pool
    generate_shapes(str(tmp_path / 'a'), seed=3, workers=1, **kwargs)
    generate_shapes(str(tmp_path / 'b'), seed=3, workers=2, **kwargs)
    generate_shapes(str(tmp_path / 'c'), seed=4, workers=1, **kwargs)
    a, b, c = (_digest(str(tmp_path / n)) for n in 'abc')
    assert len(a) == 70 + 4 + 2 and 'annotations/train.json' in a and 'val/000003.jpg' in a
    assert a == b
    assert a['annotations/train.json'] != c['annotations/train.json']
    assert sorted(os.listdir(tmp_path)) == ['a', 'b', 'c']  # no temporary folders left behind


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    make_image = shapes._make_image

    def dies_at_five(args):
        if args[2] == 5:
            raise KeyboardInterrupt
        return make_image(args)

    monkeypatch.setattr(shapes, '_make_image', dies_at_five)
    with pytest.raises(KeyboardInterrupt):
        generate_shapes(str(tmp_path / 'shapes'), num_train=10, num_val=2, img_size=64, workers=1)
    assert os.listdir(tmp_path) == []


def test_dataset_generates_on_first_use_with_size_tiers(tmp_path):
    root = str(tmp_path / 'shapes')
    ds = ShapesDataset(data_root=root, split='train', num_train=80, num_val=4, img_size=320)
    assert len(ds) == 80 and ds.metainfo['classes'] == shapes.SHAPE_CLASSES
    records = [ds.get_data_info(i) for i in range(len(ds))]
    counts = [len(r['instances']) for r in records]
    assert min(counts) >= 1 and max(counts) <= 12
    boxes = np.array([i['bbox'] for r in records for i in r['instances']])
    labels = {i['bbox_label'] for r in records for i in r['instances']}
    assert len(boxes) >= 300 and labels == set(range(5))
    assert (boxes >= 0).all() and (boxes <= 320).all()
    side = np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    tiers = [((side >= lo) & (side < hi)).mean() for lo, hi in [(8, 16), (16, 32), (32, 96), (96, 200)]]
    assert np.allclose(tiers, [0.3, 0.3, 0.3, 0.1], atol=0.07), tiers
    assert os.path.exists(records[0]['img_path'])

    assert len(ShapesDataset(data_root=root, split='val', num_train=80, num_val=4, img_size=320)) == 4
    with pytest.raises(ValueError, match='seed'):
        ShapesDataset(data_root=root, split='val', num_train=80, num_val=4, img_size=320, seed=1)


def test_generation_shows_progress_from_a_hundred_images(tmp_path, capfd):
    generate_shapes(str(tmp_path / 'few'), num_train=4, num_val=2, img_size=32, workers=1)
    assert capfd.readouterr().out == ''  # a second's work: no bar
    total = shapes.PROGRESS_FROM
    generate_shapes(str(tmp_path / 'many'), num_train=total - 10, num_val=10, img_size=32, workers=1)
    out = capfd.readouterr().out
    assert f'{total}/{total}' in out and out.endswith('\n')
    assert len(os.listdir(tmp_path / 'many' / 'train')) == total - 10
