"""Pascal-VOC-format detection dataset (``Annotations/*.xml``, ``JPEGImages/``, ``ImageSets/Main``)."""
import os
import os.path as osp
import xml.etree.ElementTree as ET
from collections import Counter

from mmengine.dataset import BaseDataset

from det.registry import DATASETS

from .box_sanity import BoxSanityLog
from .checks import UNKNOWN_CATEGORY, AnnotationIssues, no_images_error
from .coco import filter_records
from .image_size import upright_size
from .transforms.builder import build_pipeline

# Image file extensions tried, in order, for an xml without <filename>.
_IMAGE_EXTENSIONS = ('.jpg', '.JPG', '.jpeg', '.JPEG', '.png', '.PNG')

VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
               'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa',
               'train', 'tvmonitor')


def _split_names(data_root: str, split, ann_dir: str) -> list:
    """Image names (xml stems) of ``ImageSets/Main/<split>.txt``, or of every xml in ``ann_dir``."""
    if split:
        with open(osp.join(data_root, 'ImageSets', 'Main', f'{split}.txt')) as f:
            return [line.split()[0] for line in f if line.strip()]
    return sorted(osp.splitext(n)[0] for n in os.listdir(ann_dir) if n.lower().endswith('.xml'))


def _xml_path(ann_dir: str, name: str) -> str:
    """``<ann_dir>/<name>.xml``, or ``<name>.XML`` where only that exists."""
    path = osp.join(ann_dir, f'{name}.xml')
    upper = osp.join(ann_dir, f'{name}.XML')
    return upper if not osp.exists(path) and osp.exists(upper) else path


def voc_classes(data_root: str, split=None, ann_dir: str = 'Annotations') -> tuple:
    """The class names a VOC folder's annotations use: sorted unique ``<object><name>`` values of the xml
    files of ``split`` (``None``: every xml in ``data_root/ann_dir``). For data given without a class
    list; the order fixes the labels, so train and val must share one list (read it from all files)."""
    ann_dir = osp.join(data_root, ann_dir)
    names = set()
    for name in _split_names(data_root, split, ann_dir):
        root = ET.parse(_xml_path(ann_dir, name)).getroot()
        names.update(obj.findtext('name', '').strip() for obj in root.iter('object'))
    return tuple(sorted(names))


@DATASETS.register_module()
class VOCDataset(BaseDataset):
    """Images and boxes of a VOC-layout folder.

    Records follow :class:`CocoDataset`'s format; ``img_id`` is the image's index in the split file.
    Classes come from ``metainfo=dict(classes=...)`` (default: the 20 VOC classes); objects of other
    names are skipped with one warning that counts them (``self.annotation_issues`` names the files),
    except where that is surely a mistake: with the default classes (no ``classes`` in ``metainfo``), or
    when no object of the split is of the classes, loading stops with a ``ValueError`` that names the
    xml's class names (:func:`voc_classes` lists them). An ``<object>`` without ``<bndbox>`` is dropped
    and counted and named with the invalid boxes. ``difficult=1`` objects get ``ignore_flag=1``. An
    empty split, or one that ``filter_empty_gt`` empties, is a ``ValueError`` that says why.

    Coordinates: the xml corners are used as given, as continuous pixel coordinates (as mmdet 3.x does),
    not shifted by VOC's 1-based offset. The shift is below annotation noise, and this way a zero-size
    annotation (``xmin == xmax``) stays degenerate and is dropped instead of becoming a 1-pixel box.
    Image size comes from the xml ``<size>``, or from the image header when missing or zero (the
    upright size, see :func:`~det.datasets.image_size.upright_size`). File extensions may be upper-case
    (``.XML``, ``.JPG``).

    Args:
        split: name of ``ImageSets/Main/<split>.txt``; ``None`` loads every xml in ``Annotations/``.
        filter_empty_gt: in training, drop images without a non-ignored box (off: negatives are valid).
    """

    METAINFO = dict(classes=VOC_CLASSES)

    def __init__(self, data_root='', split='trainval', data_prefix=None, pipeline=(), filter_empty_gt=False,
                 metainfo=None, **kwargs):
        self.split = split
        self.classes_given = bool(metainfo and metainfo.get('classes'))
        self.filter_empty_gt = filter_empty_gt
        ann_file = osp.join('ImageSets', 'Main', f'{split}.txt') if split else ''
        data_prefix = data_prefix or dict(img='JPEGImages', ann='Annotations')
        super().__init__(ann_file=ann_file, data_root=data_root, data_prefix=data_prefix,
                         pipeline=build_pipeline(pipeline), metainfo=metainfo, **kwargs)

    def load_data_list(self) -> list:
        """Records ``dict(img_id, img_path, height, width, instances=[dict(bbox, bbox_label,
        ignore_flag)])``, one per image of the split."""
        cat2label = {name: i for i, name in enumerate(self._metainfo['classes'])}
        self._metainfo.update(data_root=self.data_root)  # CocoMetric resolves relative paths from it
        log = BoxSanityLog(self._name())
        self.annotation_issues = issues = AnnotationIssues(self._name())
        records, known = [], Counter()
        for img_id, name in enumerate(_split_names(self.data_root, self.split, self.data_prefix['ann'])):
            xml_path = _xml_path(self.data_prefix['ann'], name)
            root = ET.parse(xml_path).getroot()
            file_name = root.findtext('filename') or self._image_file(name)
            img_path = osp.join(self.data_prefix['img'], file_name)
            width = int(float(root.findtext('size/width') or 0))
            height = int(float(root.findtext('size/height') or 0))
            if width <= 0 or height <= 0:
                try:
                    width, height = upright_size(img_path)
                except OSError as error:
                    raise ValueError(f'{xml_path} gives no image size and {error}') from error
            instances = []
            for index, obj in enumerate(root.iter('object'), start=1):
                obj_name = obj.findtext('name', '').strip()
                label = cat2label.get(obj_name)
                box = obj.find('bndbox')
                if label is None:
                    issues.unknown_category(obj_name, osp.basename(xml_path))
                    continue
                known[obj_name] += 1
                if box is None:
                    why = f'object {index} {obj_name!r} has no <bndbox>'
                    issues.invalid(log, osp.basename(xml_path), why)
                    continue
                instances.append(dict(
                    bbox=[float(box.findtext(k, 'nan')) for k in ('xmin', 'ymin', 'xmax', 'ymax')],
                    bbox_label=label, ignore_flag=int(obj.findtext('difficult', '0').strip() == '1')))
            records.append(dict(img_id=img_id, img_path=img_path, height=height, width=width,
                                instances=issues.sanitize(log, instances, width, height,
                                                          osp.basename(xml_path))))
        self._check_classes(issues, known)
        log.warn()
        issues.warn()
        return records

    def _check_classes(self, issues: AnnotationIssues, known: Counter) -> None:
        """Stop when the skipped unknown names are surely a mistake rather than a chosen subset: the
        classes were not given (the 20 VOC classes by default), or no object of the split has one."""
        if not issues.unknown_categories or (self.classes_given and known):
            return
        classes = (f"(the {len(VOC_CLASSES)} Pascal VOC classes: metainfo=dict(classes=...) is not set)"
                   if not self.classes_given else repr(tuple(self._metainfo['classes'])))
        unknown = sorted(issues.unknown_categories)
        files = dict.fromkeys(f.rsplit(' (', 1)[0] for f in issues.files[UNKNOWN_CATEGORY])
        found = tuple(sorted(set(unknown) | set(known)))
        raise ValueError(
            f'{self._name()}: the xml files name classes that are not in `classes` {classes}: '
            f'{unknown} ({sum(issues.unknown_categories.values())} objects, e.g. in '
            f"{', '.join(list(files)[:3])}; {sum(known.values())} objects of the classes). "
            f'Set metainfo=dict(classes={found!r}) (every name in these files, sorted; '
            'det.datasets.voc.voc_classes reads them), or the subset to train on.')

    def _image_file(self, name: str) -> str:
        """The image file of an xml without ``<filename>``: ``<name>.jpg``, or the first of the other
        usual spellings (``.JPG``, ``.jpeg``, ``.png``, ...) that exists."""
        for ext in _IMAGE_EXTENSIONS:
            if osp.exists(osp.join(self.data_prefix['img'], name + ext)):
                return name + ext
        return f'{name}.jpg'

    def _name(self) -> str:
        return f'{type(self).__name__}({self.data_root}, split={self.split})'

    def filter_data(self) -> list:
        if not self.data_list:
            source = self.ann_file if self.ann_file else osp.join(self.data_prefix['ann'], '*.xml')
            raise no_images_error(self._name(), f'{source} lists no images')
        return filter_records(self, self._name())

