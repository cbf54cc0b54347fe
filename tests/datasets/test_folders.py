"""det.datasets.folders: which format a folder is in, where its splits and images are, and its classes,
checked against pycocotools and ElementTree readings of the same files."""
import xml.etree.ElementTree as ET

import pytest
from pycocotools.coco import COCO

from det.datasets.folders import FolderFormatError, detect_folder

from .own_data import write_coco_folder, write_voc_folder


def _coco_classes(path) -> tuple:
    coco = COCO(str(path))
    return tuple(c['name'] for c in sorted(coco.loadCats(coco.getCatIds()), key=lambda c: c['id']))


def test_coco_convention(tmp_path):
    root = write_coco_folder(tmp_path / 'coco', num_train=3, num_val=2)
    found = detect_folder(str(root))
    assert (found.format, found.dataset_type) == ('coco', 'CocoDataset')
    assert found.train == dict(data_root=str(root), ann_file='annotations/train.json',
                               data_prefix=dict(img='train/'))
    assert found.val['ann_file'] == found.eval_ann_file == 'annotations/val.json'
    assert found.classes == _coco_classes(root / 'annotations/train.json')


@pytest.mark.parametrize('anns, dirs, prefixes', [
    (('annotations/instances_train2017.json', 'annotations/instances_val2017.json'), ('train2017', 'val2017'),
     ('train2017/', 'val2017/')),
    (('train/_annotations.coco.json', 'valid/_annotations.coco.json'), ('train', 'valid'),
     ('train/', 'valid/')),
    (('annotations/train.json', 'annotations/val.json'), ('images/train', 'images/val'),
     ('images/train/', 'images/val/')),
], ids=['coco2017', 'roboflow', 'images_subfolders'])
def test_other_coco_layouts(tmp_path, anns, dirs, prefixes):
    root = write_coco_folder(tmp_path / 'coco', num_train=2, num_val=2, ann_names=anns, image_dirs=dirs)
    found = detect_folder(str(root))
    assert (found.train['ann_file'], found.val['ann_file']) == anns
    assert (found.train['data_prefix']['img'], found.val['data_prefix']['img']) == prefixes


def test_coco_json_names_given(tmp_path):
    anns = ('labels/a.json', 'labels/b.json')
    root = write_coco_folder(tmp_path / 'coco', num_train=2, num_val=2, ann_names=anns, image_dirs=('a', 'b'))
    assert detect_folder(str(root)) is None  # no json where the conventions look
    found = detect_folder(str(root), *anns)
    assert (found.train['ann_file'], found.val['data_prefix']['img']) == ('labels/a.json', 'b/')


def test_coco_folder_errors_name_the_files(tmp_path):
    root = write_coco_folder(tmp_path / 'coco', num_train=2, num_val=2,
                             ann_names=('annotations/train.json', 'annotations/holdout.json'))
    with pytest.raises(FolderFormatError, match=r"no val annotations.*annotations/holdout.json.*--val-ann"):
        detect_folder(str(root))
    found = detect_folder(str(root), val_ann='annotations/holdout.json')
    assert found.val['data_prefix']['img'] == 'val/'
    (root / 'val' / '0000.png').unlink()
    with pytest.raises(FolderFormatError, match=r"first image '0000.png' is in none of the folders"):
        detect_folder(str(root), val_ann='annotations/holdout.json')


def test_voc_folder_classes_from_the_xml(tmp_path):
    root = write_voc_folder(tmp_path / 'voc')
    found = detect_folder(str(root))
    assert (found.format, found.dataset_type, found.eval_ann_file) == ('voc', 'VOCDataset', None)
    assert found.train == dict(data_root=str(root), split='trainval')
    assert found.val == dict(data_root=str(root), split='test')
    names = {obj.findtext('name') for xml in (root / 'Annotations').glob('*.xml')
             for obj in ET.parse(xml).getroot().iter('object')}
    assert found.classes == tuple(sorted(names))


def test_voc_folder_without_splits(tmp_path):
    root = write_voc_folder(tmp_path / 'voc')
    (root / 'ImageSets/Main/test.txt').unlink()
    with pytest.raises(FolderFormatError, match=r'no val split: looked for test.txt or val.txt'):
        detect_folder(str(root))


def test_other_folders_are_no_format(tmp_path):
    assert detect_folder(str(tmp_path / 'absent')) is None
    (tmp_path / 'photos').mkdir()
    assert detect_folder(str(tmp_path / 'photos')) is None
