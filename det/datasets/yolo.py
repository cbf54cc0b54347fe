"""YOLO-format (Ultralytics layout) detection dataset: a ``data.yaml``, ``images/<split>/*`` and
``labels/<split>/*.txt`` with one ``class cx cy w h`` line per object (normalised to 0-1)."""
import math
import os
import os.path as osp
import warnings
from collections import Counter

import yaml
from mmengine.dataset import BaseDataset

from det.registry import DATASETS

from .box_sanity import BoxSanityLog
from .checks import AnnotationIssues, no_images_error
from .coco import filter_records
from .image_size import upright_size
from .transforms.builder import build_pipeline

# Suffixes of the image files a split folder contributes (compared lower-case): what OpenCV decodes.
IMG_SUFFIXES = ('.bmp', '.jpe', '.jpeg', '.jpg', '.mpo', '.pbm', '.pgm', '.png', '.ppm', '.tif', '.tiff',
                '.webp')
SPLIT_KEYS = ('train', 'val', 'test')


def _resolve(root: str, entry: str) -> str:
    """Absolute path of a split entry of a data.yaml, as Ultralytics finds it: relative to ``root``,
    and for a missing ``../x`` entry (Roboflow's exports write ``train: ../train/images`` beside the
    yaml) ``root/x``."""
    path = osp.normpath(osp.join(root, entry))
    if not osp.exists(path) and entry.startswith('../') and osp.exists(osp.join(root, entry[3:])):
        path = osp.normpath(osp.join(root, entry[3:]))
    return path


def _class_names(data: dict, yaml_path: str) -> tuple:
    """``names`` of a data.yaml (a list, or a dict ``{0: name, 1: name, ...}``) as a tuple; without
    ``names``, ``class_0 ... class_{nc-1}`` from ``nc`` as Ultralytics does."""
    names = data.get('names')
    if names is None:
        if not isinstance(data.get('nc'), int):
            raise ValueError(f'{yaml_path}: no `names` (a list, or a dict of class index -> name)')
        names = [f'class_{i}' for i in range(data['nc'])]
    if isinstance(names, dict):
        names = {int(k) if str(k).isdigit() else k: v for k, v in names.items()}  # '0': written by json
        if set(names) != set(range(len(names))):
            raise ValueError(f'{yaml_path}: the keys of `names` must be the class indices '
                             f'0..{len(names) - 1}, got {sorted(names, key=str)}')
        names = [names[k] for k in range(len(names))]
    if not isinstance(names, (list, tuple)) or not names:
        raise ValueError(f'{yaml_path}: `names` must be a non-empty list or dict, got {names!r}')
    if data.get('nc') is not None and data['nc'] != len(names):
        raise ValueError(f"{yaml_path}: nc={data['nc']} but `names` lists {len(names)} classes")
    names = tuple(str(n) for n in names)
    if len(set(names)) != len(names):
        raise ValueError(f'{yaml_path}: `names` repeats a class: {list(names)}')
    return names


def read_yolo_data_yaml(path: str) -> dict:
    """Read an Ultralytics ``data.yaml``.

    ``path`` (the dataset root) is taken relative to the yaml's folder; when it is absent, or names a
    folder that does not exist here (a yaml written on another machine), the yaml's folder is the root
    (with a warning in the second case). ``train`` / ``val`` / ``test`` are a folder, a ``.txt`` list of
    image paths, or a list of those, relative to the root.

    Returns:
        ``dict(root, train, val, test, classes)``: ``root`` an absolute folder; each split a list of
        absolute paths, or None when the yaml has no such key; ``classes`` a tuple of names in class
        index order.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'YOLO data.yaml not found: {path}')
    with open(path) as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict):
        raise ValueError(f'{path}: expected a mapping with train, val and names, got {type(data).__name__}')
    here = osp.dirname(osp.abspath(path))
    root = here
    if data.get('path'):
        root = osp.normpath(osp.join(here, str(data['path'])))
        if not osp.isdir(root):
            warnings.warn(f"{path}: path {data['path']!r} is not a folder here ({root}); reading the splits "
                          f"from the yaml's folder {here}", stacklevel=2)
            root = here
    out = dict(root=root, classes=_class_names(data, path))
    for key in SPLIT_KEYS:
        entries = data.get(key)
        if entries is None:
            out[key] = None
            continue
        entries = entries if isinstance(entries, (list, tuple)) else [entries]
        paths = [_resolve(root, str(e)) for e in entries]
        missing = [p for p in paths if not osp.exists(p)]
        if missing:
            raise FileNotFoundError(f'{path}: {key} {entries!r} not found (looked for {", ".join(missing)})')
        out[key] = paths
    if out['train'] is None and out['val'] is None:
        raise ValueError(f'{path}: neither `train` nor `val` is given')
    return out


def list_images(sources: list) -> tuple:
    """Image files of split entries (folders searched recursively, ``.txt`` lists whose relative lines
    are relative to the list's folder, or single image files), in order, each folder sorted.

    Returns:
        (image paths, ``Counter`` of the other files' suffixes found in the folders; hidden files and
        ``.txt`` files, which may be labels beside the images, are not counted).
    """
    images, others = [], Counter()
    for source in sources:
        if osp.isdir(source):
            for folder, _, files in sorted(os.walk(source)):  # folders in path order
                for name in sorted(files):
                    suffix = osp.splitext(name)[1].lower()
                    if suffix in IMG_SUFFIXES:
                        images.append(osp.join(folder, name))
                    elif not name.startswith('.') and suffix != '.txt':
                        others[suffix or name] += 1
        elif source.lower().endswith('.txt'):
            with open(source) as f:
                lines = [line.strip() for line in f if line.strip()]
            images += [osp.normpath(osp.join(osp.dirname(source), line)) for line in lines]
        else:
            images.append(source)
    return images, others


def label_path(img_path: str) -> str:
    """The label file of an image, by Ultralytics' rule: the last ``/images/`` of the path becomes
    ``/labels/`` and the suffix ``.txt`` (an image outside any ``images`` folder has its labels beside
    it)."""
    sa, sb = f'{os.sep}images{os.sep}', f'{os.sep}labels{os.sep}'
    return osp.splitext(sb.join(img_path.rsplit(sa, 1)))[0] + '.txt'


def parse_label_line(line: str, num_classes: int):
    """One label line -> ``(class, cx, cy, w, h)`` (normalised floats), or a string saying why the line
    is malformed: wrong column count, not a number, class not an index of ``names``, a coordinate
    outside 0-1 (or not finite), zero width or height."""
    fields = line.split()
    if len(fields) != 5:
        hint = ' (a segmentation polygon?)' if len(fields) > 5 and len(fields) % 2 else ''
        return f'{len(fields)} columns, expected 5: class cx cy w h{hint}'
    try:
        values = [float(v) for v in fields]
    except ValueError:
        return f'not a number: {line.strip()!r}'
    cls = values[0]
    if not cls.is_integer() or not 0 <= cls < num_classes:
        return f'class {fields[0]} not in 0-{num_classes - 1}'
    coords = values[1:]
    if not all(math.isfinite(v) and 0 <= v <= 1 for v in coords):
        return f'coordinates outside 0-1: {" ".join(fields[1:])}'
    if coords[2] == 0 or coords[3] == 0:
        return f'zero size: {" ".join(fields[1:])}'
    return (int(cls), *coords)


@DATASETS.register_module()
class YOLODataset(BaseDataset):
    """Images and boxes of a YOLO-format folder (Ultralytics' layout).

    Either ``data_yaml`` and ``split`` (the yaml gives the root, the split's images and the class names;
    see :func:`read_yolo_data_yaml`), or ``images`` (a folder, ``.txt`` list, or list of those, relative
    to ``data_root``) with ``metainfo=dict(classes=...)``. Each image's labels are read from the
    ``labels`` folder beside its ``images`` folder (:func:`label_path`); a missing or empty label file
    is an image without objects. Records follow :class:`CocoDataset`'s format (``img_id`` is the image's
    index in the split, ``ignore_flag`` always 0), boxes converted to xyxy pixels of the upright image
    (size read from the header: :func:`~det.datasets.image_size.upright_size`).

    Nothing is dropped silently: every malformed line (:func:`parse_label_line`) is dropped and named by
    file and line in ``self.annotation_issues`` (the data check's invalid-box row, e.g.
    ``labels/train/a.txt line 3 (class 7 not in 0-2)``), and a box reaching past the image is clipped
    and named by line in the clipped-box row; the dataset warns once with the counts. An image whose
    header cannot be read gets size 0 x 0 and no boxes; the data check names it unreadable.

    Args:
        data_yaml: an Ultralytics data.yaml (relative to ``data_root`` when that is given).
        split: 'train', 'val' or 'test', the yaml's key.
        images: the split's images without a yaml.
        filter_empty_gt: in training, drop images without a box (off: negatives are valid).
    """

    METAINFO = dict(classes=())

    def __init__(self, data_yaml=None, split='train', images=None, data_root='', pipeline=(),
                 filter_empty_gt=False, metainfo=None, **kwargs):
        if (data_yaml is None) == (images is None):
            raise ValueError('YOLODataset needs either data_yaml (with split) or images (with '
                             'metainfo=dict(classes=...))')
        self.split = split
        self.images = images
        self.filter_empty_gt = filter_empty_gt
        super().__init__(ann_file=data_yaml or '', data_root=data_root, data_prefix=dict(img=''),
                         pipeline=build_pipeline(pipeline), metainfo=metainfo, **kwargs)

    def _sources(self) -> list:
        """Absolute split entries, and the classes (from the yaml, or the given ones)."""
        given = tuple(self._metainfo.get('classes') or ())
        if not self.ann_file:
            if not given:
                raise ValueError(f'{self._name()}: without data_yaml, give metainfo=dict(classes=...)')
            entries = self.images if isinstance(self.images, (list, tuple)) else [self.images]
            sources = [osp.abspath(osp.join(self.data_root, e)) for e in entries]
            missing = [s for s in sources if not osp.exists(s)]
            if missing:
                raise FileNotFoundError(f'{self._name()}: images not found: {", ".join(missing)}')
            self._metainfo.update(data_root=self.data_root)
            return sources
        data = read_yolo_data_yaml(self.ann_file)
        if given and given != data['classes']:
            raise ValueError(f"{self._name()}: metainfo classes {given} differ from the yaml's names "
                             f"{data['classes']}; leave metainfo out to use the yaml's")
        if self.split not in SPLIT_KEYS or data[self.split] is None:
            raise ValueError(f'{self._name()}: {self.ann_file} has no {self.split!r} split '
                             f'(it has {[k for k in SPLIT_KEYS if data[k] is not None]})')
        self._metainfo.update(classes=data['classes'], data_root=data['root'])
        return data[self.split]

    def load_data_list(self) -> list:
        """Records ``dict(img_id, img_path, height, width, instances=[dict(bbox, bbox_label,
        ignore_flag)])``, one per image of the split."""
        sources = self._sources()
        num_classes = len(self._metainfo['classes'])
        root = self._metainfo['data_root']
        img_paths, others = list_images(sources)
        if others:
            warnings.warn(f'{self._name()}: {sum(others.values())} files in {", ".join(sources)} are not '
                          f'images det reads and were left out ({dict(others)}); images are '
                          f'{", ".join(IMG_SUFFIXES)}', stacklevel=2)
        log = BoxSanityLog(self._name())
        self.annotation_issues = issues = AnnotationIssues(self._name())
        records = []
        for img_id, img_path in enumerate(img_paths):
            try:
                width, height = upright_size(img_path)
            except OSError:  # missing or undecodable: the data check names the image
                records.append(dict(img_id=img_id, img_path=img_path, height=0, width=0, instances=[]))
                continue
            labels = label_path(img_path)
            lines = []
            if osp.isfile(labels):
                with open(labels, encoding='utf-8-sig') as f:
                    lines = f.read().splitlines()
            source = osp.relpath(labels, root) if root else labels
            instances = []
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                parsed = parse_label_line(line, num_classes)
                where = f'{source} line {number}'
                if isinstance(parsed, str):
                    issues.invalid(log, where, parsed)
                    continue
                cls, cx, cy, w, h = parsed
                box = dict(bbox=[(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width,
                                 (cy + h / 2) * height], bbox_label=cls, ignore_flag=0)
                instances += issues.sanitize(log, [box], width, height, where)
            records.append(dict(img_id=img_id, img_path=img_path, height=height, width=width,
                                instances=instances))
        log.warn()
        return records

    def _name(self) -> str:
        what = self.ann_file if self.ann_file else self.images
        return f'{type(self).__name__}({what}, split={self.split})'

    def filter_data(self) -> list:
        if not self.data_list:
            raise no_images_error(self._name(), 'the split holds no image files')
        return filter_records(self, self._name())
