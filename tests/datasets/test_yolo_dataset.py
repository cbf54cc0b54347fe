"""YOLODataset: Ultralytics' data.yaml variants, every kind of malformed label line named by file and
line in the data check, and the same boxes from YOLO txt, COCO json and VOC xml giving the same ground
truth and the same COCO metrics."""
import json
import warnings

import cv2
import numpy as np
import pytest
import yaml

from det.datasets import CocoDataset, VOCDataset, YOLODataset
from det.datasets.checks import CLIPPED_BOX, INVALID_BOX, NO_BOX, check_dataset
from det.datasets.yolo import label_path, read_yolo_data_yaml
from det.evaluation import CocoMetric

CLASSES = ('cat', 'dog', 'bird')


def _image(path, w, h, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 255, (h, w, 3), np.uint8))


def _yaml(file, **data):
    file.write_text(yaml.safe_dump(data))
    return str(file)


def _load(**kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return YOLODataset(**kwargs)


def test_data_yaml_forms(tmp_path):
    root = tmp_path / 'ds'
    for split in ('train', 'val'):
        _image(root / 'images' / split / 'a.jpg', 20, 10)
    (root / 'extra').mkdir()
    _image(root / 'extra' / 'b.png', 20, 10)
    (root / 'extra.txt').write_text('./extra/b.png\n\nimages/train/a.jpg\n')
    # names as a dict, path relative to the yaml, train as a list of a folder and a .txt list.
    cfg = read_yolo_data_yaml(_yaml(root / 'data.yaml', path='.', train=['images/train', 'extra.txt'],
                                    val='images/val', names={0: 'cat', 2: 'bird', 1: 'dog'}))
    assert cfg == dict(root=str(root), train=[str(root / 'images/train'), str(root / 'extra.txt')],
                       val=[str(root / 'images/val')], test=None, classes=CLASSES)
    ds = _load(data_yaml=str(root / 'data.yaml'), split='train')
    assert [ds.get_data_info(i)['img_path'] for i in range(len(ds))] == [
        str(root / 'images/train/a.jpg'), str(root / 'extra/b.png'), str(root / 'images/train/a.jpg')]
    assert ds.metainfo['classes'] == CLASSES
    with pytest.raises(ValueError, match=r"has no 'test' split \(it has \['train', 'val'\]\)"):
        _load(data_yaml=str(root / 'data.yaml'), split='test')
    # Twelve classes as a dict with string keys (a yaml written from json): index order, 10 after 9.
    many = {str(i): f'c{i}' for i in range(12)}
    cfg = read_yolo_data_yaml(_yaml(root / 'many.yaml', train='images/train', val='images/val', names=many))
    assert cfg['classes'] == tuple(f'c{i}' for i in range(12))
    # Roboflow's export: no path, splits written as ../x relative to the yaml's folder; a list of names.
    cfg = read_yolo_data_yaml(_yaml(root / 'rf.yaml', train='../images/train', val='../images/val',
                                    names=list(CLASSES), nc=3))
    assert cfg['train'] == [str(root / 'images/train')] and cfg['classes'] == CLASSES
    # A path from the machine that wrote the yaml: the yaml's folder, with a warning.
    with pytest.warns(UserWarning, match="path '/content/datasets/x' is not a folder here"):
        cfg = read_yolo_data_yaml(_yaml(root / 'colab.yaml', path='/content/datasets/x', train='images/train',
                                        val='images/val', names=list(CLASSES)))
    assert cfg['root'] == str(root)
    # The yaml relative to data_root, so that --data-root moves it.
    assert len(_load(data_root=str(root), data_yaml='data.yaml', split='val')) == 1
    splits = dict(train='images/train', val='images/val')
    for bad, match in ((dict(splits, val='images/nope', names=['a']), r"val \['images/nope'\] not found"),
                       (dict(splits, names={0: 'a', 2: 'b'}), r'class indices 0\.\.1'),
                       (dict(splits, names=['a'], nc=2), 'nc=2 but'),
                       (splits, 'no `names`')):
        with pytest.raises((ValueError, FileNotFoundError), match=match):
            read_yolo_data_yaml(_yaml(root / 'bad.yaml', **bad))


def test_label_path_follows_ultralytics():
    assert label_path('/d/images/train/x.1.JPG') == '/d/labels/train/x.1.txt'
    assert label_path('/images/d/images/a.png') == '/images/d/labels/a.txt'  # the last images/ only
    assert label_path('/d/pics/a.png') == '/d/pics/a.txt'  # no images/ folder: labels beside the image


def test_malformed_lines_are_named_by_file_and_line(tmp_path):
    root = tmp_path / 'ds'
    for name in ('good', 'bad', 'empty', 'unlabelled'):
        _image(root / 'images/train' / f'{name}.jpg', 100, 50)
    (root / 'images/train/notes.md').write_text('not an image')
    labels = root / 'labels/train'
    labels.mkdir(parents=True)
    (labels / 'good.txt').write_text('0 0.5 0.5 0.2 0.4\n2 0.25 0.5 0.1 0.2\n')
    (labels / 'bad.txt').write_text('\n'.join([
        '1 0.5 0.5 0.2 0.2',            # 1: valid
        '1 0.5 0.5 0.2',                # 2: 4 columns
        '0 0.1 0.1 0.2 0.1 0.3 0.3',    # 3: 7 columns (a polygon)
        'dog 0.5 0.5 0.2 0.2',          # 4: not a number
        '3 0.5 0.5 0.2 0.2',            # 5: class out of range
        '1.5 0.5 0.5 0.2 0.2',          # 6: class not an integer
        '0 1.2 0.5 0.2 0.2',            # 7: centre outside 0-1
        '0 0.5 0.5 0 0.2',              # 8: zero size
        '',                             # 9: blank, ignored
        '2 0.95 0.5 0.2 0.2',           # 10: valid, reaches past the right edge: clipped
    ]) + '\n')
    (labels / 'empty.txt').write_text('')
    (root / 'data.yaml').write_text(f'train: images/train\nval: images/train\nnames: {list(CLASSES)}\n')
    with pytest.warns(UserWarning) as record:
        ds = YOLODataset(data_yaml=str(root / 'data.yaml'), split='train')
    messages = [str(w.message) for w in record]
    assert any('1 boxes clipped to the image and 7 invalid boxes dropped' in m for m in messages)
    assert any("1 files in" in m and "{'.md': 1}" in m for m in messages)
    report = check_dataset(ds, 'train')
    bad = 'labels/train/bad.txt line'
    assert report.files[INVALID_BOX] == [
        f'{bad} 2 (4 columns, expected 5: class cx cy w h)',
        f'{bad} 3 (7 columns, expected 5: class cx cy w h (a segmentation polygon?))',
        f"{bad} 4 (not a number: 'dog 0.5 0.5 0.2 0.2')",
        f'{bad} 5 (class 3 not in 0-2)', f'{bad} 6 (class 1.5 not in 0-2)',
        f'{bad} 7 (coordinates outside 0-1: 1.2 0.5 0.2 0.2)', f'{bad} 8 (zero size: 0.5 0.5 0 0.2)']
    assert report.files[CLIPPED_BOX] == [f'{bad} 10 (1)']
    img = root / 'images/train'
    assert report.files[NO_BOX] == [str(img / 'empty.jpg'), str(img / 'unlabelled.jpg')]
    records = {r['img_path']: r for r in (ds.get_data_info(i) for i in range(len(ds)))}
    # Pixel boxes of a 100x50 image, computed by hand from the lines above.
    assert records[str(img / 'good.jpg')]['instances'] == [
        dict(bbox=[40.0, 15.0, 60.0, 35.0], bbox_label=0, ignore_flag=0),
        dict(bbox=[20.0, 20.0, 30.0, 30.0], bbox_label=2, ignore_flag=0)]
    assert [(i['bbox'], i['bbox_label']) for i in records[str(img / 'bad.jpg')]['instances']] == [
        ([40.0, 20.0, 60.0, 30.0], 1), ([85.0, 20.0, 100.0, 30.0], 2)]


def test_images_without_yaml_and_exif_rotated_size(tmp_path):
    from PIL import Image
    img = tmp_path / 'pics' / 'p.jpg'
    img.parent.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 40x20, shown turned by 90 degrees: 20x40
    Image.new('RGB', (40, 20)).save(img, exif=exif)
    (tmp_path / 'pics' / 'p.txt').write_text('0 0.5 0.5 0.5 0.5\n')
    ds = _load(data_root=str(tmp_path), images='pics', metainfo=dict(classes=('a',)))
    record = ds.get_data_info(0)
    upright = cv2.imread(str(img))  # applies the EXIF orientation, as det's loader does
    assert (record['height'], record['width']) == upright.shape[:2] == (40, 20)
    assert record['instances'][0]['bbox'] == [5.0, 10.0, 15.0, 30.0]
    with pytest.raises(ValueError, match='give metainfo=dict'):
        _load(data_root=str(tmp_path), images='pics')


# --- one set of boxes in three formats -----------------------------------------------------------

SIZES = ((64, 48), (80, 60), (50, 70), (64, 64))  # (width, height)


def _boxes(rng, w, h):
    """Integer xyxy boxes and labels of one image (a VOC xml stores integers)."""
    out = []
    for _ in range(int(rng.integers(0, 5))):
        x1, y1 = int(rng.integers(0, w - 10)), int(rng.integers(0, h - 10))
        out.append(([x1, y1, int(rng.integers(x1 + 4, w + 1)), int(rng.integers(y1 + 4, h + 1))],
                    int(rng.integers(len(CLASSES)))))
    return out


def _three_formats(root):
    """The same images and boxes as a YOLO folder, a COCO json and a VOC folder under ``root``."""
    rng = np.random.default_rng(7)
    images, anns = [], []
    (root / 'labels/val').mkdir(parents=True)
    for sub in ('Annotations', 'ImageSets/Main'):
        (root / sub).mkdir(parents=True)
    for index, (w, h) in enumerate(SIZES):
        name = f'im{index}'
        _image(root / 'images/val' / f'{name}.jpg', w, h, seed=index)
        boxes = _boxes(rng, w, h)
        lines, objects = [], []
        for (x1, y1, x2, y2), label in boxes:
            centre_size = ((x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h)
            lines.append(' '.join(map(repr, (label, *centre_size))))
            anns.append(dict(id=len(anns) + 1, image_id=index + 10, category_id=label + 1,
                             bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1), iscrowd=0))
            objects.append(f'<object><name>{CLASSES[label]}</name><difficult>0</difficult><bndbox><xmin>{x1}'
                           f'</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>')
        (root / 'labels/val' / f'{name}.txt').write_text('\n'.join(lines))
        images.append(dict(id=index + 10, file_name=f'{name}.jpg', width=w, height=h))
        (root / 'Annotations' / f'{name}.xml').write_text(
            f'<annotation><filename>{name}.jpg</filename><size><width>{w}</width><height>{h}</height>'
            f'</size>{"".join(objects)}</annotation>')
    (root / 'ImageSets/Main/val.txt').write_text('\n'.join(f'im{i}' for i in range(len(SIZES))))
    categories = [dict(id=i + 1, name=n) for i, n in enumerate(CLASSES)]
    (root / 'val.json').write_text(json.dumps(dict(images=images, annotations=anns, categories=categories)))
    (root / 'data.yaml').write_text(f'train: images/val\nval: images/val\nnames: {list(CLASSES)}\n')
    return dict(
        yolo=_load(data_yaml=str(root / 'data.yaml'), split='val', test_mode=True),
        coco=CocoDataset(ann_file=str(root / 'val.json'), data_prefix=dict(img=str(root / 'images/val')),
                         test_mode=True),
        # VOC corners are used as given (no 1-based shift, see VOCDataset), so the xml holds the same
        # integers as the COCO json's x, y, x + w, y + h.
        voc=VOCDataset(data_root=str(root), split='val', metainfo=dict(classes=CLASSES),
                       data_prefix=dict(img='images/val', ann='Annotations'), test_mode=True))


def test_yolo_coco_voc_give_the_same_ground_truth_and_metrics(tmp_path):
    datasets = _three_formats(tmp_path)
    gt = {}
    for fmt, ds in datasets.items():
        assert ds.metainfo['classes'] == CLASSES
        records = [ds.get_data_info(i) for i in range(len(ds))]
        gt[fmt] = [(r['img_path'], r['height'], r['width'], np.array([i['bbox'] for i in r['instances']]),
                    [i['bbox_label'] for i in r['instances']]) for r in records]
    assert sum(len(g[4]) for g in gt['coco']) > 5
    for fmt in ('yolo', 'voc'):
        for (path, h, w, boxes, labels), ref in zip(gt[fmt], gt['coco']):
            assert (path, h, w, labels) == (ref[0], ref[1], ref[2], ref[4])
            np.testing.assert_allclose(boxes.reshape(-1, 4), ref[3].reshape(-1, 4), rtol=0, atol=1e-9)

    # The same detections (the boxes jittered, some missed, a false positive) scored on each.
    metrics = {}
    for fmt, ds in datasets.items():
        metric = CocoMetric()
        metric.dataset_meta = ds.metainfo
        run = np.random.default_rng(3)  # the same draws for each format
        samples = []
        for i in range(len(ds)):
            record = ds.get_data_info(i)
            boxes = np.array([inst['bbox'] for inst in record['instances']], np.float64).reshape(-1, 4)
            labels = np.array([inst['bbox_label'] for inst in record['instances']], np.int64)
            boxes = np.concatenate([boxes + run.normal(0, 2, boxes.shape), [[1, 1, 12, 12]]])
            labels = np.concatenate([labels, [0]])
            samples.append(dict(img_id=record['img_id'], ori_shape=(record['height'], record['width']),
                                instances=record['instances'],
                                pred_instances=dict(bboxes=boxes, labels=labels,
                                                    scores=run.uniform(0.1, 1, len(labels)))))
        metric.process({}, samples)
        metrics[fmt] = metric.compute_metrics(metric.results)
    assert 0 < metrics['coco']['AP'] < 1
    assert metrics['yolo'] == pytest.approx(metrics['coco'], abs=1e-12)
    assert metrics['voc'] == pytest.approx(metrics['coco'], abs=1e-12)
