"""Recognise a dataset folder's annotation format and describe its train and val datasets, so that
``tools/train.py CONFIG --data-root DIR`` trains on a folder no config names.

Each format is one function ``detect(root, train_ann=None, val_ann=None) -> FolderData | None``
registered with :func:`register_format`: it returns ``None`` when ``root`` is not in its format, a
:class:`FolderData` when it is, and raises :class:`FolderFormatError` (naming the files) when the
folder looks like its format but cannot be used. :func:`detect_folder` tries them in registration
order; adding a format is one more such function.

Layouts (the first is the convention; the others are accepted):

- COCO: ``annotations/train.json`` and ``annotations/val.json``; also ``annotations/instances_train*.json``
  / ``instances_val*.json`` (COCO 2017's names) and Roboflow's ``train/_annotations.coco.json`` /
  ``valid/_annotations.coco.json``. A json's ``file_name``s are found under ``<split>/`` (e.g. ``train/``,
  ``train2017/``), the json's own folder, ``images/<split>/``, ``images/`` or the root, whichever holds
  its first image. Classes are the json's categories in id order.
- VOC: ``Annotations/*.xml`` + ``JPEGImages/`` with ``ImageSets/Main/{trainval|train}.txt`` for training
  and ``test.txt`` (else ``val.txt``) for validation. Classes are the ``<object><name>``s of the two
  splits' xml files, sorted.
- YOLO (Ultralytics): a ``data.yaml`` given as ``DIR`` itself or found in it (``path``, ``train``, ``val``,
  ``names``), images under ``images/<split>/`` and labels under ``labels/<split>/*.txt``. Classes are the
  yaml's ``names``.
"""
import glob
import json
import os
import os.path as osp
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from .voc import voc_classes
from .yolo import read_yolo_data_yaml


class FolderFormatError(ValueError):
    """A folder looks like a dataset format but cannot be used as one; the message says why."""


@dataclass
class FolderData:
    """What a format found in a folder.

    Attributes:
        format: the format's name, e.g. ``'coco'``.
        dataset_type: the registered dataset class that reads it, e.g. ``'CocoDataset'``.
        train, val: the dataset config keys that locate each split (``data_root``, ``ann_file``,
            ``data_prefix``, ...); the config's other keys (pipeline, test_mode, ...) are kept.
        classes: the class names found in the annotations, in label order.
        eval_ann_file: the COCO json the evaluator scores against (relative to ``data_root``), or
            ``None`` to build the ground truth from the val dataset's samples.
        files: how the splits were found, for the log (e.g. ``'train: annotations/train.json ...'``).
        root: the dataset folder (or the YOLO ``data.yaml``) that was recognised.
    """
    format: str
    dataset_type: str
    train: dict
    val: dict
    classes: tuple
    eval_ann_file: str = None
    files: list = field(default_factory=list)
    root: str = ''


FORMATS = {}  # name -> (dataset type, detect function), tried in this order


def register_format(name: str, dataset_type: str):
    """Decorator: add a ``detect(root, train_ann=None, val_ann=None)`` function under ``name``, for
    folders that the registered dataset class ``dataset_type`` reads."""
    def register(detect):
        FORMATS[name] = (dataset_type, detect)
        return detect
    return register


def detect_folder(root: str, train_ann: str = None, val_ann: str = None):
    """The :class:`FolderData` of the first registered format that recognises ``root``, or ``None``
    (also when ``root`` does not exist).

    Args:
        root: the dataset folder (or a YOLO ``data.yaml`` file).
        train_ann, val_ann: annotation files relative to ``root`` (a COCO json, a VOC
            ``ImageSets/Main/<split>.txt``) when they differ from the convention.
    """
    if not (osp.isdir(root) or _is_yaml(root)):
        return None
    for _, detect in FORMATS.values():
        found = detect(root, train_ann, val_ann)
        if found is not None:
            return found
    return None


def format_names() -> str:
    """One line per format for error messages: what each looks for."""
    return '; '.join(f'{name}: {" ".join((detect.__doc__ or "").split())}'
                     for name, (_, detect) in FORMATS.items())


# --- COCO -------------------------------------------------------------------------------------------

_COCO_PATTERNS = {
    'train': ('annotations/train.json', 'annotations/instances_train*.json', 'train/_annotations.coco.json'),
    'val': ('annotations/val.json', 'annotations/instances_val*.json', 'valid/_annotations.coco.json',
            'val/_annotations.coco.json'),
}


def _find_coco_json(root: str, split: str, given: str = None) -> str:
    """The ``split``'s json relative to ``root``: ``given`` if set, else the first convention that
    matches exactly one file."""
    if given:
        if not osp.isfile(osp.join(root, given)):
            raise FolderFormatError(f'{split} annotations {osp.join(root, given)} not found')
        return given
    for pattern in _COCO_PATTERNS[split]:
        found = sorted(glob.glob(osp.join(root, pattern)))
        if len(found) > 1:
            names = [osp.relpath(f, root) for f in found]
            raise FolderFormatError(f'{root}: several {split} jsons {names}; choose one with '
                                    f'--{split}-ann')
        if found:
            return osp.relpath(found[0], root)
    present = sorted(osp.relpath(f, root) for f in glob.glob(osp.join(root, 'annotations', '*.json')))
    raise FolderFormatError(
        f'{root}: no {split} annotations: looked for {", ".join(_COCO_PATTERNS[split])} (found '
        f'{present or "no json in annotations/"}); name the file with --{split}-ann')


def _coco_image_prefix(root: str, split: str, ann_file: str, coco: dict) -> str:
    """The folder (relative to ``root``, ending in ``/`` or empty) under which ``coco``'s first image
    exists: one named like the json (``train2017/`` for ``instances_train2017.json``), the json's own,
    one named after the split, the same under ``images/``, ``images/`` or the root."""
    if not coco.get('images'):
        raise FolderFormatError(f'{osp.join(root, ann_file)} lists no images')
    first = coco['images'][0]['file_name']
    stem = osp.splitext(osp.basename(ann_file))[0]
    split_dir = stem[len('instances_'):] if stem.startswith('instances_') else stem
    json_dir = osp.dirname(ann_file)
    candidates = [split_dir, json_dir if json_dir != 'annotations' else None, split,
                  osp.join('images', split_dir), osp.join('images', split), 'images', '']
    candidates = [c for c in dict.fromkeys(candidates) if c is not None]
    for prefix in candidates:
        if osp.isfile(osp.join(root, prefix, first)):
            return osp.join(prefix, '') if prefix else ''
    tried = ', '.join(osp.join(root, c, first) for c in candidates)
    raise FolderFormatError(f'{osp.join(root, ann_file)}: its first image {first!r} is in none of the '
                            f'folders tried ({tried})')


@register_format('coco', 'CocoDataset')
def detect_coco(root: str, train_ann: str = None, val_ann: str = None):
    """annotations/train.json + annotations/val.json (or instances_train*.json / instances_val*.json,
    or Roboflow's train/_annotations.coco.json + valid/_annotations.coco.json), images under train/, val/
    """
    if not osp.isdir(root):
        return None
    if not (train_ann or val_ann) and not any(
            glob.glob(osp.join(root, p)) for patterns in _COCO_PATTERNS.values() for p in patterns) \
            and not glob.glob(osp.join(root, 'annotations', '*.json')):
        return None
    splits, classes, files = {}, None, []
    for split, given in (('train', train_ann), ('val', val_ann)):
        ann_file = _find_coco_json(root, split, given)
        try:
            with open(osp.join(root, ann_file)) as f:
                coco = json.load(f)
        except (OSError, ValueError) as error:
            raise FolderFormatError(f'{osp.join(root, ann_file)} is not a readable json: {error}') from error
        if not isinstance(coco, dict) or not coco.get('categories'):
            raise FolderFormatError(f'{osp.join(root, ann_file)} has no "categories": not a COCO json')
        prefix = _coco_image_prefix(root, split, ann_file, coco)
        names = tuple(c['name'] for c in sorted(coco['categories'], key=lambda c: c['id']))
        if classes is not None and names != classes:
            raise FolderFormatError(f'{osp.join(root, ann_file)} has the categories {names} but the train '
                                    f'json has {classes}: labels would mean different things')
        classes = names
        splits[split] = dict(data_root=root, ann_file=ann_file, data_prefix=dict(img=prefix))
        files.append(f'{split}: {ann_file} ({len(coco["images"])} images under {prefix or "./"})')
    return FolderData('coco', 'CocoDataset', splits['train'], splits['val'], classes,
                      eval_ann_file=splits['val']['ann_file'], files=files, root=root)


# --- Pascal VOC ---------------------------------------------------------------------------------------

_VOC_SPLITS = {'train': ('trainval', 'train'), 'val': ('test', 'val')}


def _voc_split(root: str, split: str, given: str = None) -> str:
    """The split name (``ImageSets/Main/<name>.txt``) for ``split``."""
    main = osp.join(root, 'ImageSets', 'Main')
    if given:
        path = osp.join(root, given)
        if osp.dirname(osp.abspath(path)) != osp.abspath(main) or not given.endswith('.txt'):
            raise FolderFormatError(f'--{split}-ann {given}: a VOC split is a file ImageSets/Main/NAME.txt')
        if not osp.isfile(path):
            raise FolderFormatError(f'{split} split {path} not found')
        return osp.splitext(osp.basename(given))[0]
    for name in _VOC_SPLITS[split]:
        if osp.isfile(osp.join(main, f'{name}.txt')):
            return name
    tried = ' or '.join(f'{n}.txt' for n in _VOC_SPLITS[split])
    raise FolderFormatError(f'{root}: no {split} split: looked for {tried} in {main}; write the image '
                            f'names there (one per line) or name the file with --{split}-ann')


def voc_class_names(root: str, splits: list) -> tuple:
    """The sorted ``<object><name>``s of the xml files listed in ``ImageSets/Main/<split>.txt`` of each
    of ``splits`` (:func:`det.datasets.voc.voc_classes`)."""
    try:
        names = set().union(*(voc_classes(root, split) for split in splits))
    except (OSError, ET.ParseError) as error:
        raise FolderFormatError(f'{root}: an xml file of the splits {splits} cannot be read: {error}') \
            from error
    names.discard('')
    if not names:
        raise FolderFormatError(f'{root}: no <object><name> in the xml files of the splits {splits}')
    return tuple(sorted(names))


@register_format('voc', 'VOCDataset')
def detect_voc(root: str, train_ann: str = None, val_ann: str = None):
    """Annotations/*.xml + JPEGImages/ with ImageSets/Main/trainval.txt (or train.txt) and test.txt
    (or val.txt)"""
    if not osp.isdir(osp.join(root, 'Annotations')) or not osp.isdir(osp.join(root, 'JPEGImages')) or \
            not any(n.lower().endswith('.xml') for n in os.listdir(osp.join(root, 'Annotations'))):
        return None
    train, val = _voc_split(root, 'train', train_ann), _voc_split(root, 'val', val_ann)
    if train == val:
        raise FolderFormatError(f'{root}: the train and val splits are both {train}.txt')
    files = [f'train: ImageSets/Main/{train}.txt', f'val: ImageSets/Main/{val}.txt']
    return FolderData('voc', 'VOCDataset', dict(data_root=root, split=train), dict(data_root=root, split=val),
                      voc_class_names(root, [train, val]), eval_ann_file=None, files=files, root=root)


# --- YOLO (Ultralytics) -------------------------------------------------------------------------------

def _is_yaml(path: str) -> bool:
    return osp.isfile(path) and path.lower().endswith(('.yaml', '.yml'))


def _find_data_yaml(root: str):
    """``root`` itself when it is a yaml file; else the folder's ``data.yaml`` (or its only ``*.yaml``),
    or None when it holds none."""
    if _is_yaml(root):
        return root
    found = sorted(glob.glob(osp.join(root, '*.yaml')) + glob.glob(osp.join(root, '*.yml')))
    if not found:
        return None
    named = [f for f in found if osp.splitext(osp.basename(f))[0] == 'data']
    if named:
        return named[0]
    if len(found) > 1:
        raise FolderFormatError(f'{root}: several yaml files {[osp.basename(f) for f in found]} and no '
                                'data.yaml; give the one to use as --data-root DIR/NAME.yaml')
    return found[0]


@register_format('yolo', 'YOLODataset')
def detect_yolo(root: str, train_ann: str = None, val_ann: str = None):
    """data.yaml (Ultralytics: path, train, val, names), given as DIR or found in it, with images/<split>/
    and labels/<split>/*.txt"""
    data_yaml = _find_data_yaml(root)
    if data_yaml is None:
        return None
    if train_ann or val_ann:
        raise FolderFormatError(f"--train-ann / --val-ann do not apply to a YOLO dataset: {data_yaml}'s "
                                'train and val keys name its splits')
    try:
        info = read_yolo_data_yaml(data_yaml)
    except (OSError, ValueError) as error:
        raise FolderFormatError(f'{data_yaml} is not a usable YOLO data.yaml: {error}') from error
    missing = [key for key in ('train', 'val') if info[key] is None]
    if missing:
        raise FolderFormatError(f'{data_yaml} has no {" and no ".join(missing)} key: both splits are needed '
                                '(a folder or .txt list of images each)')
    data_yaml = osp.abspath(data_yaml)
    files = [f'{split}: {", ".join(osp.relpath(p, info["root"]) for p in info[split])}'
             for split in ('train', 'val')]
    return FolderData('yolo', 'YOLODataset', dict(data_yaml=data_yaml, split='train'),
                      dict(data_yaml=data_yaml, split='val'), info['classes'], eval_ann_file=None,
                      files=files, root=data_yaml)
