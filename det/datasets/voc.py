"""Pascal-VOC-format detection dataset (``Annotations/*.xml``, ``JPEGImages/``, ``ImageSets/Main``)."""
import os
import os.path as osp
import xml.etree.ElementTree as ET

import numpy as np
from mmengine.dataset import BaseDataset

from det.registry import DATASETS

from .box_sanity import BoxSanityLog
from .checks import AnnotationIssues, no_images_error
from .coco import filter_records
from .transforms.builder import build_pipeline
from .transforms.image_decoding import decode, header_size

# Image file extensions tried, in order, for an xml without <filename>.
_IMAGE_EXTENSIONS = ('.jpg', '.JPG', '.jpeg', '.JPEG', '.png', '.PNG')

VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
               'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa',
               'train', 'tvmonitor')


@DATASETS.register_module()
class VOCDataset(BaseDataset):
    """Images and boxes of a VOC-layout folder.

    Records follow :class:`CocoDataset`'s format; ``img_id`` is the image's index in the split file.
    Classes come from ``metainfo=dict(classes=...)`` (default: the 20 VOC classes); objects of other
    names are skipped with one warning that counts them (``self.annotation_issues`` names the files).
    ``difficult=1`` objects get ``ignore_flag=1``. An empty split, or one that ``filter_empty_gt``
    empties, is a ``ValueError`` that says why.

    Coordinates: the xml corners are used as given, as continuous pixel coordinates (as mmdet 3.x does),
    not shifted by VOC's 1-based offset. The shift is below annotation noise, and this way a zero-size
    annotation (``xmin == xmax``) stays degenerate and is dropped instead of becoming a 1-pixel box.
    Image size comes from the xml ``<size>``, or from the image header when missing or zero (the
    upright size: width and height swap for a JPEG whose EXIF orientation turns it by 90 degrees, as the
    image loader applies that orientation). File extensions may be upper-case (``.XML``, ``.JPG``).

    Args:
        split: name of ``ImageSets/Main/<split>.txt``; ``None`` loads every xml in ``Annotations/``.
        filter_empty_gt: in training, drop images without a non-ignored box (off: negatives are valid).
    """

    METAINFO = dict(classes=VOC_CLASSES)

    def __init__(self, data_root='', split='trainval', data_prefix=None, pipeline=(), filter_empty_gt=False,
                 **kwargs):
        self.split = split
        self.filter_empty_gt = filter_empty_gt
        ann_file = osp.join('ImageSets', 'Main', f'{split}.txt') if split else ''
        data_prefix = data_prefix or dict(img='JPEGImages', ann='Annotations')
        super().__init__(ann_file=ann_file, data_root=data_root, data_prefix=data_prefix,
                         pipeline=build_pipeline(pipeline), **kwargs)

    def _image_names(self) -> list:
        if self.ann_file:
            with open(self.ann_file) as f:
                return [line.split()[0] for line in f if line.strip()]
        return sorted(osp.splitext(n)[0] for n in os.listdir(self.data_prefix['ann'])
                      if n.lower().endswith('.xml'))

    def load_data_list(self) -> list:
        """Records ``dict(img_id, img_path, height, width, instances=[dict(bbox, bbox_label,
        ignore_flag)])``, one per image of the split."""
        cat2label = {name: i for i, name in enumerate(self._metainfo['classes'])}
        self._metainfo.update(data_root=self.data_root)  # CocoMetric resolves relative paths from it
        log = BoxSanityLog(self._name())
        self.annotation_issues = issues = AnnotationIssues(self._name())
        records = []
        for img_id, name in enumerate(self._image_names()):
            xml_path = self._xml_path(name)
            root = ET.parse(xml_path).getroot()
            file_name = root.findtext('filename') or self._image_file(name)
            img_path = osp.join(self.data_prefix['img'], file_name)
            width = int(float(root.findtext('size/width') or 0))
            height = int(float(root.findtext('size/height') or 0))
            if width <= 0 or height <= 0:
                height, width = _upright_size(img_path, xml_path)
            instances = []
            for obj in root.iter('object'):
                obj_name = obj.findtext('name', '').strip()
                label = cat2label.get(obj_name)
                box = obj.find('bndbox')
                if label is None:
                    issues.unknown_category(obj_name, osp.basename(xml_path))
                    continue
                if box is None:
                    continue
                instances.append(dict(
                    bbox=[float(box.findtext(k, 'nan')) for k in ('xmin', 'ymin', 'xmax', 'ymax')],
                    bbox_label=label, ignore_flag=int(obj.findtext('difficult', '0').strip() == '1')))
            records.append(dict(img_id=img_id, img_path=img_path, height=height, width=width,
                                instances=issues.sanitize(log, instances, width, height,
                                                          osp.basename(xml_path))))
        log.warn()
        issues.warn()
        return records

    def _xml_path(self, name: str) -> str:
        """``Annotations/<name>.xml``, or ``<name>.XML`` where only that exists."""
        path = osp.join(self.data_prefix['ann'], f'{name}.xml')
        upper = osp.join(self.data_prefix['ann'], f'{name}.XML')
        return upper if not osp.exists(path) and osp.exists(upper) else path

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


def _upright_size(img_path: str, xml_path: str) -> tuple:
    """``(height, width)`` of the image as the loader returns it (EXIF orientation applied), from its
    header, or by decoding it when the header does not parse."""
    data = np.fromfile(img_path, dtype=np.uint8)
    size = header_size(data)
    if size is None:
        decoded = decode(data)
        if decoded.img is None:
            raise ValueError(f'{xml_path} gives no image size and {img_path} cannot be read '
                             f'({decoded.reason})')
        size = decoded.img.shape[:2]
    return size
