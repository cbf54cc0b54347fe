"""Data checks (det.datasets.checks): every kind of finding on a VOC folder built to hold each one, the
cache keyed by file size and mtime, skipped annotations that are counted, datasets that end up empty,
EXIF orientation, unreadable files warned about once, truncated JPEGs as warnings, header-only checks
of training images, and unreadable test-mode images left out of evaluation."""
import json
import re
import warnings

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from det.datasets import CocoDataset, VOCDataset
from det.datasets import checks as checks_module
from det.datasets.checks import (
    CLIPPED_BOX,
    DUPLICATE,
    INVALID_BOX,
    MISSING,
    NO_BOX,
    SIZE_MISMATCH,
    TRUNCATED,
    UNKNOWN_CATEGORY,
    UNREADABLE,
    ImageCache,
    check_dataset,
    format_report,
    leave_out_of_evaluation,
)
from det.datasets.transforms.loading import REPORTED_UNREADABLE, LoadImageFromFile

from .test_image_decoding import broken_png_bytes

CLASSES = ('box', 'disc')
OBJECT = ('<object><name>{}</name><difficult>0</difficult><bndbox><xmin>{}</xmin><ymin>{}</ymin>'
          '<xmax>{}</xmax><ymax>{}</ymax></bndbox></object>')


def write_voc(root, objects_of, sizes=None, split='train'):
    """A VOC folder of 64x48 noise JPEGs, one per key of ``objects_of`` (name -> [(class, box)]);
    ``sizes`` overrides the xml <size> (None: no size element)."""
    for sub in ('Annotations', 'JPEGImages', 'ImageSets/Main'):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name, objects in objects_of.items():
        cv2.imwrite(str(root / 'JPEGImages' / f'{name}.jpg'), rng.integers(0, 255, (48, 64, 3), np.uint8))
        size = (sizes or {}).get(name, (64, 48))
        size_xml = '' if size is None else f'<size><width>{size[0]}</width><height>{size[1]}</height></size>'
        body = ''.join(OBJECT.format(label, *box) for label, box in objects)
        (root / 'Annotations' / f'{name}.xml').write_text(
            f'<annotation><filename>{name}.jpg</filename>{size_xml}{body}</annotation>')
    (root / 'ImageSets/Main' / f'{split}.txt').write_text('\n'.join(objects_of))


@pytest.fixture
def bad_voc(tmp_path):
    good = [('box', (5, 5, 30, 30))]
    objects_of = {
        'ok0': good, 'ok1': good,
        'clipped': good + [('disc', (50, 30, 90, 60))],         # partly outside 64x48: clipped
        'invalid': good + [('box', (20, 20, 20, 35)), ('box', (70, 50, 80, 60))],  # empty; outside
        'unknown': good + [('dog', (1, 1, 9, 9)), ('dog', (2, 2, 9, 9)), ('cat', (1, 1, 5, 5))],
        'empty': [],
        'corrupt': good, 'missing': good, 'dup': good,
    }
    root = tmp_path / 'voc'
    write_voc(root, objects_of)
    (root / 'JPEGImages/corrupt.jpg').write_bytes(b'not a jpeg at all')
    (root / 'JPEGImages/missing.jpg').unlink()
    (root / 'JPEGImages/dup.jpg').write_bytes((root / 'JPEGImages/ok0.jpg').read_bytes())
    return root


def voc(root, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return VOCDataset(data_root=str(root), split='train', metainfo=dict(classes=CLASSES), **kwargs)


def test_every_kind_of_finding_is_reported_with_its_files(bad_voc):
    img = str(bad_voc / 'JPEGImages')
    report = check_dataset(voc(bad_voc), 'train')
    assert report.num_images == 9
    assert report.files[MISSING] == [f'{img}/missing.jpg']
    assert report.files[UNREADABLE] == [
        f'{img}/corrupt.jpg (not an image format OpenCV or Pillow knows; first bytes 6e 6f 74 20 61 20 6a '
        '70)']
    assert sorted(report.unreadable) == [f'{img}/corrupt.jpg', f'{img}/missing.jpg']
    assert report.files[INVALID_BOX] == ['invalid.xml (2)']
    assert report.files[CLIPPED_BOX] == ['clipped.xml (1)']
    assert report.files[UNKNOWN_CATEGORY] == ['unknown.xml (dog)', 'unknown.xml (cat)']
    assert report.files[NO_BOX] == [f'{img}/empty.jpg']
    assert report.files[DUPLICATE] == [f'{img}/ok0.jpg = {img}/dup.jpg']
    assert report.files[SIZE_MISMATCH] == []
    assert report.has_problems
    table = format_report([report], max_files=1)
    assert 'unknown-category annotations skipped  2' in table
    assert 'unknown.xml (dog), ... 1 more' in table  # max_files=1 names one and counts the rest
    # The loader is told not to warn about these files again in this run.
    assert {f'{img}/corrupt.jpg', f'{img}/missing.jpg'} <= REPORTED_UNREADABLE


def test_unknown_categories_are_counted_in_one_warning(bad_voc):
    with pytest.warns(UserWarning) as record:
        VOCDataset(data_root=str(bad_voc), split='train', metainfo=dict(classes=CLASSES))
    skipped = [str(w.message) for w in record if 'not among the dataset' in str(w.message)]
    assert len(skipped) == 1
    assert "3 annotations of categories that are not among the dataset's classes were skipped " \
           "('dog': 2, 'cat': 1), e.g. in unknown.xml" in skipped[0]


def test_coco_unknown_category_ids_are_counted(tmp_path):
    ann = {'images': [{'id': 1, 'file_name': 'a.jpg', 'width': 64, 'height': 48}],
           'categories': [{'id': 1, 'name': 'box'}, {'id': 2, 'name': 'disc'}],
           'annotations': [{'id': 1, 'image_id': 1, 'category_id': 1, 'bbox': [1, 1, 10, 10], 'area': 100},
                           {'id': 2, 'image_id': 1, 'category_id': 7, 'bbox': [1, 1, 10, 10], 'area': 100},
                           {'id': 3, 'image_id': 1, 'category_id': 2, 'bbox': [1, 1, 10, 10], 'area': 100}]}
    (tmp_path / 'ann.json').write_text(json.dumps(ann))
    with pytest.warns(UserWarning, match=r"2 annotations of categories .* \('category_id 7': 1, 'disc': 1\)"):
        dataset = CocoDataset(ann_file=str(tmp_path / 'ann.json'), metainfo=dict(classes=('box',)))
    kept = dataset.get_data_info(0)['instances']
    assert [(i['bbox'], i['bbox_label']) for i in kept] == [([1, 1, 11, 11], 0)]
    assert dataset.annotation_issues.files[UNKNOWN_CATEGORY] == ['a.jpg (category_id 7)', 'a.jpg (disc)']


def test_second_check_reads_no_image_and_a_changed_file_is_read_again(bad_voc, tmp_path, monkeypatch):
    cache_file = str(tmp_path / 'cache.json')
    cache = ImageCache(cache_file)
    first = check_dataset(voc(bad_voc), 'train', cache)
    cache.save()
    read = []
    real = checks_module._inspect
    monkeypatch.setattr(checks_module, '_inspect', lambda path, *args: read.append(path) or real(path, *args))
    cache = ImageCache(cache_file)  # as a second run finds it
    second = check_dataset(voc(bad_voc), 'train', cache)
    assert second.files == first.files
    # Only the missing file is looked for again (it may have appeared since); no image is decoded.
    assert read == [str(bad_voc / 'JPEGImages/missing.jpg')]
    cv2.imwrite(str(bad_voc / 'JPEGImages/corrupt.jpg'), np.zeros((48, 64, 3), np.uint8))  # repaired
    read.clear()
    third = check_dataset(voc(bad_voc), 'train', cache)
    assert sorted(read) == [str(bad_voc / 'JPEGImages/corrupt.jpg'), str(bad_voc / 'JPEGImages/missing.jpg')]
    assert third.files[UNREADABLE] == []


def test_empty_split_is_an_error_that_says_why(tmp_path):
    write_voc(tmp_path / 'voc', {'a': [('box', (5, 5, 30, 30))]})
    (tmp_path / 'voc/ImageSets/Main/val.txt').write_text('')
    with pytest.raises(ValueError, match=r'split=val\) is empty: .*val.txt lists no images'):
        VOCDataset(data_root=str(tmp_path / 'voc'), split='val', metainfo=dict(classes=CLASSES))


def test_split_emptied_by_filtering_is_an_error_that_says_why(tmp_path):
    # A zero-size 'box' (dropped) beside the 'dog': with no object of the classes at all, loading would
    # stop earlier, naming the xml's classes (tests/datasets/test_voc_dataset.py).
    write_voc(tmp_path / 'voc', {'a': [('dog', (5, 5, 30, 30)), ('box', (5, 5, 5, 30))], 'b': []})
    with pytest.raises(ValueError, match=r"is empty: filter_empty_gt=True removed all 2 images: none holds a "
                                         r"box of the classes \('box', 'disc'\).*1 annotations of other"):
        voc(tmp_path / 'voc', filter_empty_gt=True)


def test_empty_coco_json_is_an_error(tmp_path):
    (tmp_path / 'ann.json').write_text(json.dumps({'images': [], 'annotations': [],
                                                   'categories': [{'id': 1, 'name': 'box'}]}))
    with pytest.raises(ValueError, match='is empty: the json lists no images'):
        CocoDataset(ann_file=str(tmp_path / 'ann.json'))


def _exif_rotated_jpeg(path, orientation):
    """A JPEG stored 64 wide x 32 high with a white 16x8 block at rows 0-8, columns 8-24, tagged to be
    shown turned (EXIF ``orientation``)."""
    stored = np.zeros((32, 64, 3), np.uint8)
    stored[0:8, 8:24] = 255
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(path, exif=exif, quality=100)


def _bright_box(img):
    ys, xs = np.nonzero(np.asarray(img).max(axis=2) > 128)
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


@pytest.mark.parametrize('orientation', [3, 6, 8])
def test_exif_orientation_is_applied_so_boxes_line_up(tmp_path, orientation):
    path = tmp_path / 'turned.jpg'
    _exif_rotated_jpeg(path, orientation)
    # An annotator sees the upright picture; Pillow's exif_transpose is the independent reference.
    upright = ImageOps.exif_transpose(Image.open(path)).convert('RGB')
    box = _bright_box(upright)
    loaded = LoadImageFromFile()({'img_path': str(path)})
    assert loaded['ori_shape'] == (upright.height, upright.width)
    assert _bright_box(loaded['img']) == box
    # A VOC xml without <size>: the record's size is the upright one, so nothing is clipped or flagged.
    root = tmp_path / 'voc'
    write_voc(root, {'turned': [('box', tuple(box))]}, sizes={'turned': None})
    (root / 'JPEGImages/turned.jpg').write_bytes(path.read_bytes())
    dataset = voc(root)
    record = dataset.get_data_info(0)
    assert (record['height'], record['width']) == (upright.height, upright.width)
    assert record['instances'][0]['bbox'] == [float(v) for v in box]
    assert check_dataset(dataset).files[SIZE_MISMATCH] == []


def test_annotated_size_that_ignores_the_exif_turn_is_reported(tmp_path):
    root = tmp_path / 'voc'
    write_voc(root, {'turned': [('box', (1, 1, 10, 10))]}, sizes={'turned': (64, 32)})  # the stored size
    _exif_rotated_jpeg(root / 'JPEGImages/turned.jpg', 6)
    report = check_dataset(voc(root))
    assert report.files[SIZE_MISMATCH] == [
        f"{root}/JPEGImages/turned.jpg (annotated 64x32, decoded 32x64)"]


def test_unreadable_file_is_warned_about_once_per_process(tmp_path):
    path = str(tmp_path / 'broken.jpg')
    (tmp_path / 'broken.jpg').write_bytes(b'\xff\xd8 truncated')
    load = LoadImageFromFile(on_error='skip')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')  # defeat Python's own once-per-location filter
        for _ in range(3):  # three epochs
            assert load({'img_path': path}) is None
    assert [str(w.message) for w in caught] == [
        f'cannot read image {path} (JPEG file cut short after 12 bytes; no pixels could be read); skipping '
        'it (not warned again by this process)']
    with pytest.raises(OSError, match='missing'):
        LoadImageFromFile(on_error='raise')({'img_path': str(tmp_path / 'nowhere.jpg')})


def _cut_short(path, cut=20):
    """Remove the last ``cut`` bytes of a file (a JPEG loses its end-of-image marker)."""
    path.write_bytes(path.read_bytes()[:-cut])


@pytest.mark.parametrize('test_mode', [False, True])
def test_truncated_jpeg_is_a_warning_row_not_an_unreadable_image(tmp_path, test_mode):
    root = tmp_path / 'voc'
    write_voc(root, {'whole': [('box', (5, 5, 30, 30))], 'cut': [('box', (5, 5, 30, 30))]})
    _cut_short(root / 'JPEGImages/cut.jpg')
    report = check_dataset(voc(root, test_mode=test_mode), 'val' if test_mode else 'train')
    assert report.files[TRUNCATED] == [str(root / 'JPEGImages/cut.jpg')]
    assert report.files[UNREADABLE] == [] and report.unreadable == []
    assert report.has_problems  # logged as a warning
    assert re.search(r'truncated image, read +1 +\S+/cut\.jpg', format_report([report]))


def _write_body_broken_png(root, name):
    """Make ``name``'s image a PNG whose pixel data is noise behind a sound header and end chunk."""
    (root / 'JPEGImages' / f'{name}.jpg').unlink()
    (root / 'JPEGImages' / f'{name}.png').write_bytes(broken_png_bytes())
    xml = root / 'Annotations' / f'{name}.xml'
    xml.write_text(xml.read_text().replace(f'{name}.jpg', f'{name}.png'))


def test_training_images_are_checked_from_headers_and_test_mode_ones_decoded(tmp_path, monkeypatch):
    root = tmp_path / 'voc'
    write_voc(root, {f'img{i}': [('box', (5, 5, 30, 30))] for i in range(4)})
    _write_body_broken_png(root, 'img3')
    broken = str(root / 'JPEGImages/img3.png')
    decoded = []
    real = checks_module.decode
    monkeypatch.setattr(checks_module, 'decode', lambda data: decoded.append(data.size) or real(data))

    train = check_dataset(voc(root), 'train')
    assert decoded == []  # headers only: the training loader names the broken file when it meets it
    assert train.files[UNREADABLE] == [] and train.num_images == 4
    with pytest.warns(UserWarning, match=f'cannot read image {broken} \\(broken PNG data'):
        assert LoadImageFromFile(on_error='skip')({'img_path': broken}) is None
    full = check_dataset(voc(root), 'train', decode_all=True)
    assert len(decoded) == 4
    assert full.files[UNREADABLE] == [f'{broken} ({real(np.fromfile(broken, np.uint8)).reason})']
    decoded.clear()
    val = check_dataset(voc(root, test_mode=True), 'val')  # evaluation cannot skip an image mid-run
    assert len(decoded) == 4 and val.unreadable == [broken]


def test_header_checked_cache_entries_are_decoded_when_asked_and_then_kept(tmp_path, monkeypatch):
    root = tmp_path / 'voc'
    write_voc(root, {f'img{i}': [('box', (5, 5, 30, 30))] for i in range(3)})
    cache = ImageCache(str(tmp_path / 'cache.json'))
    check_dataset(voc(root), 'train', cache)
    decoded = []
    real = checks_module.decode
    monkeypatch.setattr(checks_module, 'decode', lambda data: decoded.append(data.size) or real(data))
    check_dataset(voc(root), 'train', cache, decode_all=True)
    assert len(decoded) == 3
    check_dataset(voc(root), 'train', cache, decode_all=True)
    check_dataset(voc(root), 'train', cache)
    assert len(decoded) == 3  # decoded entries serve both kinds of check


def test_test_mode_dataset_leaves_out_registered_unreadable_images(tmp_path):
    root = tmp_path / 'voc'
    write_voc(root, {f'img{i}': [('box', (5, 5, 30, 30))] for i in range(3)})
    (root / 'JPEGImages/img1.jpg').write_bytes(b'')
    bad = str(root / 'JPEGImages/img1.jpg')
    report = check_dataset(voc(root, test_mode=True), 'val')
    assert report.files[UNREADABLE] == [f'{bad} (empty file)']
    leave_out_of_evaluation(report.unreadable)

    val = voc(root, test_mode=True)
    assert [val.get_data_info(i)['img_path'] for i in range(len(val))] == [
        str(root / 'JPEGImages/img0.jpg'), str(root / 'JPEGImages/img2.jpg')]
    assert val.metainfo['unreadable_images'] == [bad]
    assert len(voc(root)) == 3  # training datasets keep them: their loader skips and names them
    again = check_dataset(val, 'val')  # a later check still names the left-out file
    assert again.num_images == 3 and again.files[UNREADABLE] == report.files[UNREADABLE]

    for name in ('img0', 'img2'):
        (root / 'JPEGImages' / f'{name}.jpg').write_bytes(b'')
    leave_out_of_evaluation([str(root / 'JPEGImages/img0.jpg'), str(root / 'JPEGImages/img2.jpg')])
    with pytest.raises(ValueError, match=r'split=train\) is empty: none of its 3 images can be read'):
        voc(root, test_mode=True)
