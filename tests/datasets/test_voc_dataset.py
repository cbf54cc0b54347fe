"""VOCDataset on the real BCCD dataset (checked against an independent xml parse) and on a tiny
hand-made VOC folder (difficult objects, missing image size)."""
import os
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest

from det.datasets import VOCDataset

# The real data lies in ../shared beside the repository (absent from a user's clone: tests skip).
BCCD = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'shared', 'data', 'BCCD_Dataset', 'BCCD')
BCCD_CLASSES = ('RBC', 'WBC', 'Platelets')
needs_bccd = pytest.mark.skipif(not os.path.isdir(BCCD), reason=f'BCCD dataset not found at {BCCD}')


def _parse_bccd(names):
    """Independent count: images, and objects split into valid and zero-size ones (raw xml corners)."""
    n_valid, n_invalid = 0, 0
    for name in names:
        root = ET.parse(os.path.join(BCCD, 'Annotations', name + '.xml')).getroot()
        for obj in root.findall('object'):
            b = obj.find('bndbox')
            x1, y1, x2, y2 = (float(b.find(k).text) for k in ('xmin', 'ymin', 'xmax', 'ymax'))
            if x2 > x1 and y2 > y1:
                n_valid += 1
            else:
                n_invalid += 1
    return n_valid, n_invalid


@needs_bccd
@pytest.mark.parametrize('split', ['trainval', None])
def test_bccd_counts_and_single_warning(split):
    if split:
        names = open(os.path.join(BCCD, 'ImageSets', 'Main', f'{split}.txt')).read().split()
    else:
        names = sorted(n[:-4] for n in os.listdir(os.path.join(BCCD, 'Annotations')))
    n_valid, n_invalid = _parse_bccd(names)
    assert n_invalid == 2
    with pytest.warns(UserWarning) as record:
        ds = VOCDataset(data_root=BCCD, split=split, metainfo=dict(classes=BCCD_CLASSES))
    sanity = [str(w.message) for w in record if 'boxes clipped' in str(w.message)]
    assert len(sanity) == 1
    assert '0 boxes clipped' in sanity[0] and '2 invalid boxes dropped' in sanity[0]
    assert 'BloodImage_00338.xml' in sanity[0] and 'BloodImage_00343.xml' in sanity[0]
    assert len(ds) == len(names) == (292 if split else 364)
    records = [ds.get_data_info(i) for i in range(len(ds))]
    assert sum(len(r['instances']) for r in records) == n_valid
    assert ds.metainfo['classes'] == BCCD_CLASSES
    first = records[0]
    assert first['img_path'] == os.path.join(BCCD, 'JPEGImages', names[0] + '.jpg')
    assert (first['height'], first['width']) == (480, 640)
    if split is None:  # BloodImage_00000.xml: first object WBC at 260 177 491 376 (xml corners as given)
        assert first['instances'][0] == dict(bbox=[260.0, 177.0, 491.0, 376.0], bbox_label=1, ignore_flag=0)


def _write_xml(path, objects, size=None):
    parts = [f'<annotation><filename>{path.stem}.jpg</filename>']
    if size:
        parts.append(f'<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>')
    for name, difficult, box in objects:
        parts.append(f'<object><name>{name}</name><difficult>{difficult}</difficult><bndbox>'
                     f'<xmin>{box[0]}</xmin><ymin>{box[1]}</ymin><xmax>{box[2]}</xmax><ymax>{box[3]}</ymax>'
                     '</bndbox></object>')
    path.write_text(''.join(parts) + '</annotation>')


def test_tiny_voc_difficult_and_header_size(tmp_path):
    for sub in ('Annotations', 'JPEGImages', 'ImageSets/Main'):
        (tmp_path / sub).mkdir(parents=True)
    cv2.imwrite(str(tmp_path / 'JPEGImages' / 'img0.jpg'), np.zeros((30, 40, 3), np.uint8))
    _write_xml(tmp_path / 'Annotations' / 'img0.xml',
               [('dog', 0, (1, 2, 10, 20)), ('cat', 1, (5, 5, 35, 25)), ('unicorn', 0, (1, 1, 5, 5)),
                ('dog', 0, (30, 10, 60, 20))])  # no <size>: read from the image; last box partly outside
    _write_xml(tmp_path / 'Annotations' / 'img1.xml', [('cat', 0, (1, 1, 9, 9))], size=(40, 30))
    (tmp_path / 'ImageSets' / 'Main' / 'mini.txt').write_text('img0\nimg1\n')
    with pytest.warns(UserWarning, match='1 boxes clipped'):
        ds = VOCDataset(data_root=str(tmp_path), split='mini', metainfo=dict(classes=('cat', 'dog')))
    record = ds.get_data_info(0)
    assert (record['img_id'], record['height'], record['width']) == (0, 30, 40)
    assert record['instances'] == [
        dict(bbox=[1.0, 2.0, 10.0, 20.0], bbox_label=1, ignore_flag=0),
        dict(bbox=[5.0, 5.0, 35.0, 25.0], bbox_label=0, ignore_flag=1),
        dict(bbox=[30.0, 10.0, 40.0, 20.0], bbox_label=1, ignore_flag=0)]
    filtered = VOCDataset(data_root=str(tmp_path), split='mini', metainfo=dict(classes=('cat',)),
                          filter_empty_gt=True)
    assert len(filtered) == 1 and filtered.get_data_info(0)['img_id'] == 1  # img0: only a difficult cat


def _tiny_voc(root, xml_of):
    """A VOC folder with one 40x30 black JPEG per entry of ``xml_of`` (name -> xml body of <object>s)."""
    for sub in ('Annotations', 'JPEGImages', 'ImageSets/Main'):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for name, body in xml_of.items():
        cv2.imwrite(str(root / 'JPEGImages' / f'{name}.jpg'), np.zeros((30, 40, 3), np.uint8))
        (root / 'Annotations' / f'{name}.xml').write_text(
            f'<annotation><filename>{name}.jpg</filename><size><width>40</width><height>30</height></size>'
            f'{body}</annotation>')
    (root / 'ImageSets/Main/train.txt').write_text('\n'.join(xml_of))


def _obj(name, box=None):
    bndbox = '' if box is None else ('<bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax>'
                                     '</bndbox>'.format(*box))
    return f'<object><name>{name}</name>{bndbox}</object>'


def test_object_without_bndbox_is_counted_and_named(tmp_path):
    from det.datasets.checks import INVALID_BOX, check_dataset
    _tiny_voc(tmp_path, {'a': _obj('cat', (1, 1, 9, 9)) + _obj('dog'), 'b': _obj('cat', (2, 2, 8, 8))})
    with pytest.warns(UserWarning, match=r'1 invalid boxes dropped .* e\.g\. in a\.xml'):
        ds = VOCDataset(data_root=str(tmp_path), split='train', metainfo=dict(classes=('cat', 'dog')))
    assert [len(ds.get_data_info(i)['instances']) for i in range(2)] == [1, 1]
    report = check_dataset(ds, 'train', read_images=False)
    assert report.files[INVALID_BOX] == ["a.xml (object 2 'dog' has no <bndbox>)"]


def test_forgotten_classes_name_the_xml_classes(tmp_path):
    """Default (VOC) classes on a folder of other classes: the error names the xml's classes, instead of
    skipping every box and leaving the run to ask for num_classes=20."""
    _tiny_voc(tmp_path, {'a': _obj('RBC', (1, 1, 9, 9)) + _obj('WBC', (2, 2, 8, 8)),
                         'b': _obj('Platelets', (2, 2, 8, 8)) + _obj('person', (3, 3, 9, 9))})
    with pytest.raises(ValueError) as error:
        VOCDataset(data_root=str(tmp_path), split='train')
    message = str(error.value)
    assert "'Platelets', 'RBC', 'WBC'" in message and 'a.xml' in message
    assert "metainfo=dict(classes=('Platelets', 'RBC', 'WBC', 'person'))" in message
    # Classes given explicitly but none of them in the xml files: the same kind of error.
    with pytest.raises(ValueError, match=r"not in `classes` \('cat', 'dog'\).*'Platelets'"):
        VOCDataset(data_root=str(tmp_path), split='train', metainfo=dict(classes=('cat', 'dog')))


def test_voc_classes_reads_sorted_unique_names(tmp_path):
    from det.datasets.voc import voc_classes
    _tiny_voc(tmp_path, {'a': _obj(' WBC ', (1, 1, 9, 9)) + _obj('RBC', (2, 2, 8, 8)),
                         'b': _obj('RBC', (2, 2, 8, 8)) + _obj('Platelets')})
    (tmp_path / 'Annotations/c.xml').write_text(f"<annotation>{_obj('extra', (1, 1, 5, 5))}</annotation>")
    assert voc_classes(str(tmp_path)) == ('Platelets', 'RBC', 'WBC', 'extra')
    assert voc_classes(str(tmp_path), split='train') == ('Platelets', 'RBC', 'WBC')  # c is not in train.txt
    ds = VOCDataset(data_root=str(tmp_path), split='train', metainfo=dict(classes=voc_classes(str(tmp_path))))
    assert ds.metainfo['classes'] == ('Platelets', 'RBC', 'WBC', 'extra')


@needs_bccd
def test_bccd_classes_read_from_the_folder_and_named_when_forgotten():
    from det.datasets.voc import voc_classes
    assert voc_classes(BCCD) == tuple(sorted(BCCD_CLASSES))
    with pytest.raises(ValueError, match=r"\['Platelets', 'RBC', 'WBC'\] \(\d+ objects, e\.g\. in Blood"):
        VOCDataset(data_root=BCCD, split='trainval')


def test_upper_case_extensions_and_unusual_file_names(tmp_path):
    """A folder as cameras and Windows tools write it: ``.XML`` annotations found by the folder scan,
    ``.JPG`` images found for an xml without <filename>, spaces and non-ASCII characters in names."""
    (tmp_path / 'Annotations').mkdir()
    (tmp_path / 'JPEGImages').mkdir()
    rng = np.random.default_rng(0)
    names = ['IMG_0001', 'holiday photo é', 'фото 2']
    for name in names:
        cv2.imwrite(str(tmp_path / 'JPEGImages' / f'{name}.JPG'), rng.integers(0, 255, (30, 40, 3), np.uint8))
        (tmp_path / 'Annotations' / f'{name}.XML').write_text(
            '<annotation><object><name>cell</name><bndbox><xmin>2</xmin><ymin>3</ymin><xmax>20</xmax>'
            '<ymax>25</ymax></bndbox></object></annotation>', encoding='utf-8')
    dataset = VOCDataset(data_root=str(tmp_path), split=None, metainfo=dict(classes=('cell',)),
                         pipeline=[dict(type='LoadImageFromFile')])
    assert len(dataset) == 3
    for i, name in enumerate(sorted(names)):
        record = dataset.get_data_info(i)
        path = str(tmp_path / 'JPEGImages' / f'{name}.JPG')
        assert record['img_path'] == path
        assert (record['height'], record['width']) == (30, 40)  # from the header: the xml has no <size>
        assert record['instances'][0]['bbox'] == [2.0, 3.0, 20.0, 25.0]
        np.testing.assert_array_equal(dataset[i]['img'], cv2.imread(path))
