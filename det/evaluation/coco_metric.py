"""mmengine metric: COCO bbox AP, size tiers and per-class AP of a model's predictions.

Predictions are the detector's ``pred_instances``, already in original pixels. Ground truth is the
dataset's own, never the transformed ``gt_instances``: a COCO json (real COCO semantics: the json's areas
and iscrowd flags), or, for datasets without one (VOC), the original annotations each sample carries in
its ``instances`` metainfo. All numbers come from :func:`det.evaluation.coco_eval.evaluate_coco`.
"""
import json
import logging
import os
import os.path as osp

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.structures import BaseDataElement

from det.registry import METRICS

from .coco_eval import DEFAULT_BACKEND, DEFAULT_TIERS, evaluate_coco, format_report, load_coco_gt


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


def _detection_rows(img_ids: list, results: list, cat_ids=None) -> np.ndarray:
    """The processed predictions as the ``[N, 7]`` float64 rows ``(image_id, x, y, w, h, score,
    category_id)`` that :func:`evaluate_coco` reads in one pass (xywh original pixels); category id
    ``cat_ids[label]``, or ``label + 1`` where the ground truth was built from the samples (``None``)."""
    rows = [np.zeros((0, 7))]
    for img_id, r in zip(img_ids, results):
        labels = r['labels'].astype(np.int64)
        cats = labels + 1 if cat_ids is None else np.asarray(cat_ids, dtype=np.int64)[labels]
        rows.append(np.column_stack([np.full(len(labels), img_id, dtype=np.float64),
                                     _xyxy_to_xywh(r['bboxes']), r['scores'], cats]))
    return np.concatenate(rows)


@METRICS.register_module()
class CocoMetric(BaseMetric):
    """COCO bbox evaluation of ``pred_instances`` (xyxy original pixels, scores, labels ``0..C-1``).

    Args:
        ann_file: COCO json used as ground truth. A relative path is taken relative to the evaluated
            dataset's ``data_root``. ``None`` (the default) uses the dataset's own json when it has one
            (``CocoDataset`` and its subclasses), so overriding the dataset's ``data_root`` also moves the
            evaluation; otherwise (VOC) the ground truth is built from each sample's ``instances``
            metainfo (the dataset's original annotations; ignored ones are evaluated as iscrowd), with
            area = box w*h. The json's category names must include every class of the dataset (labels map
            by name); a mismatch is an error as soon as the evaluator is given the dataset.
        tiers: ``(name, lo, hi)`` sqrt(area) ranges in pixels reported as ``AP_<name>`` / ``AR_<name>``.
            With the defaults ``AP_s`` is the 16-32 px tier, not COCO's 0-32 "small" (that one is in the
            logged summary).
        backend: ``'faster_coco_eval'`` or ``'pycocotools'``.
        outfile_prefix: if set, write the detections to ``{prefix}.bbox.json`` (and, when the ground
            truth was built from the samples, ``{prefix}.gt.json``; image ids are then 1..N in
            processing order, category ids label + 1).
        format_only: only write the files, return no metrics (e.g. for a test server).

    ``compute_metrics`` returns ``AP, AP50, AP75, AP_<tier>..., AR100, AR_<tier>...``; -1 where a tier has
    no ground truth. When the dataset left unreadable images out of evaluation (listed in its
    ``metainfo['unreadable_images']`` by the start-up data check, see ``det.datasets.checks``), the
    numbers cover the other images only, and the metric says so: a warning in the log and
    ``images_evaluated``, ``images_unreadable`` and ``coverage`` (e.g. "evaluated on 31 of 32 images; 1
    unreadable, listed above") among the results, which ``tools/test.py`` prints and mmengine writes to
    the run's json. mmengine prefixes them all with ``coco/``.
    """
    default_prefix = 'coco'

    def __init__(self, ann_file=None, tiers=DEFAULT_TIERS, backend: str = DEFAULT_BACKEND,
                 outfile_prefix=None, format_only: bool = False, collect_device: str = 'cpu', prefix=None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        if format_only and outfile_prefix is None:
            raise ValueError('format_only=True needs an outfile_prefix to write the detections to')
        self.ann_file = ann_file
        self.tiers = tuple(tuple(t) for t in tiers)
        self.backend = backend
        self.outfile_prefix = outfile_prefix
        self.format_only = format_only
        self._coco_gt = None  # loaded when the dataset is known, or on first use
        self._cat_ids = None  # label -> json category id

    @property
    def dataset_meta(self):
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, dataset_meta: dict) -> None:
        """Set by mmengine's loops before the first step: resolve the ground truth json now and check it
        against the dataset's classes, so a mismatch fails before any training."""
        BaseMetric.dataset_meta.fset(self, dataset_meta)
        self._coco_gt = self._cat_ids = None
        if self._gt_json() is not None:
            self._load_gt()

    def _gt_json(self):
        """Path of the ground-truth json, or None to build it from the samples."""
        meta = self.dataset_meta or {}
        if self.ann_file is None:
            return meta.get('ann_file')
        if not osp.isabs(self.ann_file) and meta.get('data_root'):
            return osp.join(meta['data_root'], self.ann_file)
        return self.ann_file

    def _load_gt(self):
        path = self._gt_json()
        if not osp.isfile(path):
            data_root = (self.dataset_meta or {}).get('data_root')
            raise FileNotFoundError(f'CocoMetric: annotation file {path} not found '
                                    f'(ann_file={self.ann_file!r}, dataset data_root={data_root!r})')
        self._coco_gt = load_coco_gt(path, self.backend)
        self._cat_ids = self._label_to_cat_id(self._coco_gt, path)
        return self._coco_gt

    def process(self, data_batch, data_samples) -> None:
        """Store each sample's predictions (and, without a json, its original annotations) as numpy."""
        for sample in data_samples:
            if isinstance(sample, BaseDataElement):
                sample = sample.to_dict()
            pred = sample['pred_instances']
            result = {'img_id': sample['img_id'], 'bboxes': _numpy(pred['bboxes']).reshape(-1, 4),
                      'scores': _numpy(pred['scores']).reshape(-1),
                      'labels': _numpy(pred['labels']).reshape(-1)}
            if self._gt_json() is None:
                if 'instances' not in sample:
                    raise KeyError("CocoMetric without a COCO json builds the ground truth from each "
                                   "sample's 'instances' metainfo (the dataset's annotations); keep "
                                   "'instances' in PackDetInputs' meta_keys")
                instances = sample['instances']
                ignored = np.array([bool(i['ignore_flag']) for i in instances], dtype=bool)
                boxes = np.array([i['bbox'] for i in instances], dtype=np.float64).reshape(-1, 4)
                labels = np.array([i['bbox_label'] for i in instances], dtype=np.int64)
                result.update(ori_shape=tuple(int(v) for v in sample['ori_shape'][:2]),
                              gt_bboxes=boxes[~ignored], gt_labels=labels[~ignored],
                              ignored_bboxes=boxes[ignored], ignored_labels=labels[ignored])
            self.results.append(result)

    def _classes(self):
        return list((self.dataset_meta or {}).get('classes') or [])

    def _gt_from_results(self, results: list) -> dict:
        """COCO dict of the samples' ground truth: image ids 1..N, category id = label + 1."""
        names = self._classes()
        if not names:  # no dataset_meta: classes are the labels seen
            labels = [lab for r in results for lab in (r['gt_labels'], r['ignored_labels'], r['labels'])]
            seen = [int(lab.max()) for lab in labels if lab.size]
            names = [str(i) for i in range(max(seen, default=-1) + 1)]
        images, anns = [], []
        for img_id, r in enumerate(results, start=1):
            h, w = r['ori_shape']
            images.append({'id': img_id, 'height': h, 'width': w, 'img_id': str(r['img_id'])})
            for key, crowd in (('gt', 0), ('ignored', 1)):
                for box, label in zip(_xyxy_to_xywh(r[f'{key}_bboxes']), r[f'{key}_labels']):
                    anns.append({'id': len(anns) + 1, 'image_id': img_id, 'category_id': int(label) + 1,
                                 'bbox': box.tolist(), 'area': float(box[2] * box[3]), 'iscrowd': crowd})
        return {'images': images, 'annotations': anns,
                'categories': [{'id': i + 1, 'name': str(n)} for i, n in enumerate(names)]}

    def _label_to_cat_id(self, coco_gt, path: str) -> list:
        """Contiguous label -> json category id, by class name. Without known classes (the metric used
        outside a runner) labels follow the json's sorted category ids, as ``CocoDataset`` assigns them."""
        by_name = {c['name']: c['id'] for c in coco_gt.dataset['categories']}
        classes = self._classes()
        if not classes:
            return sorted(by_name.values())
        missing = [n for n in classes if n not in by_name]
        if missing:
            raise ValueError(f'CocoMetric: the dataset\'s classes {missing} are not categories of {path} '
                             f'(its categories: {sorted(by_name)}); the evaluator\'s annotations do not '
                             f'belong to this dataset')
        return [by_name[n] for n in classes]

    def _coverage(self, num_evaluated: int) -> dict:
        """``images_evaluated``, ``images_unreadable`` and a ``coverage`` sentence, logged as a warning,
        when the dataset left unreadable images out; ``{}`` otherwise."""
        left_out = len((self.dataset_meta or {}).get('unreadable_images', ()))
        if not left_out:
            return {}
        coverage = (f'evaluated on {num_evaluated} of {num_evaluated + left_out} images; {left_out} '
                    'unreadable, listed above')
        print_log(f'CocoMetric: {coverage} (in the data check table)', logger='current',
                  level=logging.WARNING)
        # Floats: mmengine's message hub turns ints into numpy ints, which its json writer drops.
        return {'images_evaluated': float(num_evaluated), 'images_unreadable': float(left_out),
                'coverage': coverage}

    def compute_metrics(self, results: list) -> dict:
        coverage = self._coverage(len(results))
        if self._gt_json() is None:
            gt = self._gt_from_results(results)
            img_ids = list(range(1, len(results) + 1))
            cat_ids = [c['id'] for c in gt['categories']]
        else:
            gt = self._coco_gt if self._coco_gt is not None else self._load_gt()
            img_ids = [r['img_id'].item() if isinstance(r['img_id'], np.generic) else r['img_id']
                       for r in results]
            cat_ids = self._cat_ids
            unknown = sorted(set(img_ids) - set(gt.getImgIds()), key=str)
            if unknown:
                raise ValueError(f'CocoMetric: {len(unknown)} evaluated image id(s) are not in '
                                 f'{self._gt_json()}, e.g. {unknown[:10]}: the evaluator\'s annotations do '
                                 f'not belong to the evaluated dataset')
        built_gt = self._gt_json() is None
        rows = _detection_rows(img_ids, results, None if built_gt else cat_ids)

        if self.outfile_prefix is not None:
            self._dump(rows, gt if built_gt else None)
            if self.format_only:
                return coverage

        result = evaluate_coco(gt, rows, tiers=self.tiers, backend=self.backend, img_ids=img_ids,
                               cat_ids=cat_ids)
        print_log('COCO bbox evaluation:\n' + format_report(result, 'original pixels'), logger='current')
        tier_names = [t[0] for t in self.tiers]
        metrics = {k: result.stats[k] for k in ('AP', 'AP50', 'AP75')}
        metrics.update({f'AP_{n}': result.tiers[n]['AP'] for n in tier_names})
        metrics['AR100'] = result.stats['AR100']
        metrics.update({f'AR_{n}': result.tiers[n]['AR'] for n in tier_names})
        metrics.update(coverage)
        return metrics

    def _dump(self, rows: np.ndarray, gt) -> None:
        """Write ``{prefix}.bbox.json`` (COCO result dicts of the ``[N, 7]`` detection rows) and, when the
        ground truth was built here, ``{prefix}.gt.json``."""
        dets = [{'image_id': int(r[0]), 'category_id': int(r[6]), 'bbox': r[1:5].tolist(),
                 'score': float(r[5])} for r in rows]
        files = {'bbox': dets} if gt is None else {'bbox': dets, 'gt': gt}
        for name, content in files.items():
            path = f'{self.outfile_prefix}.{name}.json'
            if osp.dirname(path):
                os.makedirs(osp.dirname(path), exist_ok=True)
            with open(path, 'w') as f:
                json.dump(content, f)
            print_log(f'wrote {path}', logger='current')
