"""COCO-format detection dataset (json read with pycocotools)."""
import contextlib
import io
import json
import os.path as osp
import warnings
from collections import Counter

from mmengine.dataset import BaseDataset
from pycocotools.coco import COCO

from det.evaluation.coco_eval import complete_coco_gt
from det.registry import DATASETS

from .box_sanity import BoxSanityLog
from .checks import (
    INVALID_BOX,
    JSON_FILLED,
    ORPHAN_ANNOTATION,
    UNUSED_CLASS,
    AnnotationIssues,
    no_images_error,
    split_left_out,
)
from .transforms.builder import build_pipeline


def has_gt(record: dict) -> bool:
    """Whether a record holds at least one box that is not ignored."""
    return any(not inst['ignore_flag'] for inst in record['instances'])


def filter_records(dataset, name: str) -> list:
    """``filter_data`` of det's datasets: drop images without a non-ignored box when training with
    ``filter_empty_gt``; in test mode, leave out the unreadable images the run's data check registered
    (:func:`~det.datasets.checks.split_left_out`). Raise a ``ValueError`` saying why when no image is
    left (instead of mmengine's "need at least one array to concatenate" when it serialises an empty
    list)."""
    if dataset.test_mode:
        return split_left_out(dataset, name)
    if not dataset.filter_empty_gt:
        return dataset.data_list
    kept = [r for r in dataset.data_list if has_gt(r)]
    if not kept:
        issues = dataset.annotation_issues
        skipped = sum(issues.unknown_categories.values())
        raise no_images_error(name, (
            f"filter_empty_gt=True removed all {len(dataset.data_list)} images: none holds a box of the "
            f"classes {tuple(dataset.metainfo['classes'])} that is not ignored (crowd / difficult)"
            + (f"; {skipped} annotations of other categories were skipped" if skipped else '')
            + (f"; invalid boxes were dropped in {len(issues.files[INVALID_BOX])} files"
               if issues.files[INVALID_BOX] else '')))
    return kept


@DATASETS.register_module()
class CocoDataset(BaseDataset):
    """Images and boxes of a COCO json.

    Category ids are mapped to contiguous labels ``0..C-1`` in sorted id order; ``metainfo['classes']``
    comes from the json's categories unless given as ``metainfo=dict(classes=...)``, in which case only
    those category names are kept (in the given order). Annotations of other categories are skipped
    with one warning that counts them; ``self.annotation_issues`` names their files for the data check
    (``det.datasets.checks``). COCO ``[x, y, w, h]`` boxes become xyxy pixels; ``iscrowd`` boxes get
    ``ignore_flag=1`` (not trained on, passed to evaluation). Boxes are clipped to the image and invalid
    ones dropped (see ``box_sanity``). ``self.ann_file`` is the json's path.

    Labelling tools' exports load as they are: categories numbered from 0 or with gaps, images without
    annotations (negatives), sub-folders in ``file_name`` (joined to ``data_prefix['img']``), and
    annotations without ``area``, ``iscrowd`` or unique ids (filled in by
    :func:`~det.evaluation.coco_eval.complete_coco_gt`, as the evaluator fills them in). What changes
    what is trained or evaluated is named in the data check and one warning: fields filled in,
    annotations of image ids the json does not list (not loaded), classes that no annotation has. A
    dataset without images (an empty json, or every image filtered out) is a ``ValueError`` that says
    why.

    Args:
        filter_empty_gt: in training, drop images without a non-ignored box. Off by default because
            empty images are valid negatives; never applied in test mode.
    """

    METAINFO = dict(classes=())

    def __init__(self, *args, data_prefix=None, pipeline=(), filter_empty_gt=False, **kwargs):
        self.filter_empty_gt = filter_empty_gt
        super().__init__(*args, data_prefix=data_prefix or dict(img=''), pipeline=build_pipeline(pipeline),
                         **kwargs)

    def load_data_list(self) -> list:
        """Records ``dict(img_id, img_path, height, width, instances=[dict(bbox, bbox_label,
        ignore_flag)])``, one per image of the json, in image-id order."""
        with open(self.ann_file) as f:
            data, filled = complete_coco_gt(json.load(f))
        coco = COCO()
        coco.dataset = data
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
            coco.createIndex()
        cats = sorted(coco.loadCats(coco.getCatIds()), key=lambda c: c['id'])
        if self._metainfo.get('classes'):
            by_name = {c['name']: c['id'] for c in cats}
            missing = [n for n in self._metainfo['classes'] if n not in by_name]
            if missing:
                raise ValueError(f'classes {missing} are not categories of {self.ann_file}')
            cat_ids = [by_name[n] for n in self._metainfo['classes']]
        else:
            cat_ids = [c['id'] for c in cats]
            self._metainfo['classes'] = tuple(c['name'] for c in cats)
        self.cat2label = {cat_id: i for i, cat_id in enumerate(cat_ids)}
        # Where the evaluator finds this dataset's ground truth (CocoMetric with no ann_file).
        self._metainfo.update(data_root=self.data_root, ann_file=self.ann_file)

        name = f'{type(self).__name__}({self.ann_file})'
        log = BoxSanityLog(name)
        self.annotation_issues = issues = AnnotationIssues(name)
        cat_names = {c['id']: c['name'] for c in cats}
        records = []
        for img_id in sorted(coco.getImgIds()):
            info = coco.loadImgs([img_id])[0]
            instances = []
            for ann in coco.loadAnns(coco.getAnnIds(imgIds=[img_id])):
                if ann['category_id'] not in self.cat2label:
                    cat = ann['category_id']
                    issues.unknown_category(cat_names.get(cat, f'category_id {cat}'), info['file_name'])
                    continue
                x, y, w, h = ann['bbox']
                instances.append(dict(bbox=[x, y, x + w, y + h],
                                      bbox_label=self.cat2label[ann['category_id']],
                                      ignore_flag=int(bool(ann.get('iscrowd', 0)))))
            records.append(dict(
                img_id=int(img_id),
                img_path=osp.join(self.data_prefix['img'], info['file_name']),
                height=int(info['height']), width=int(info['width']),
                instances=issues.sanitize(log, instances, info['width'], info['height'], info['file_name'])))
        self._json_findings(coco, issues, filled)
        log.warn()
        issues.warn()
        return records

    def _json_findings(self, coco, issues: AnnotationIssues, filled: list) -> None:
        """Name, in the data check and one warning, what of the json changes what is trained or
        evaluated: fields filled in (``filled``: notes of ``complete_coco_gt``), annotations of image ids
        the json does not list (not loaded), and classes that no annotation has."""
        json_name = osp.basename(self.ann_file)
        issues.files[JSON_FILLED] += [f'{json_name} ({note})' for note in filled]
        anns = coco.dataset['annotations']
        orphans = Counter(a['image_id'] for a in anns if a['image_id'] not in coco.imgs)
        issues.files[ORPHAN_ANNOTATION] += [f'image_id {i} ({n})' for i, n in orphans.items()]
        used = Counter(a['category_id'] for a in anns if a['image_id'] in coco.imgs)
        issues.files[UNUSED_CLASS] += [f"{coco.cats[c]['name']} (category id {c})"
                                       for c in self.cat2label if not used[c]]
        found = [f'{kind}: {", ".join(issues.files[kind])}'
                 for kind in (JSON_FILLED, ORPHAN_ANNOTATION, UNUSED_CLASS) if issues.files[kind]]
        if found:
            warnings.warn(f'{type(self).__name__}({self.ann_file}): ' + '; '.join(found), stacklevel=3)

    def filter_data(self) -> list:
        if not self.data_list:
            raise no_images_error(f'{type(self).__name__}({self.ann_file})', 'the json lists no images')
        return filter_records(self, f'{type(self).__name__}({self.ann_file})')
