"""CocoMetric driven like mmengine's evaluator, against pycocotools on the equivalent COCO json."""
import json

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from det.evaluation import DEFAULT_TIERS, CocoMetric, coco_metric, evaluate_coco
from det.registry import METRICS
from det.structures import DetDataSample

from .coco_cases import CAT_IDS, pycocotools_stats, random_case

CLASSES = [f'class{c}' for c in CAT_IDS]
LABEL = {c: i for i, c in enumerate(CAT_IDS)}
KEYS = ['AP', 'AP50', 'AP75', 'AP_vt', 'AP_t', 'AP_s', 'AP_m', 'AP_l', 'AR100',
        'AR_vt', 'AR_t', 'AR_s', 'AR_m', 'AR_l']


def _xyxy(xywh_list) -> torch.Tensor:
    b = torch.tensor(xywh_list, dtype=torch.float64).reshape(-1, 4)
    return torch.cat([b[:, :2], b[:, :2] + b[:, 2:]], dim=1).float()


def _samples(gt: dict, dets: list, with_gt: bool = True) -> list:
    """One DetDataSample per image: predictions in original pixels; the dataset's annotations in the
    ``instances`` metainfo (original pixels); ``gt_instances`` in resized-input pixels (each image resized
    by its own scale factor, none of them 1), which the metric must not read."""
    samples = []
    for i, img in enumerate(gt['images']):
        sx, sy = 0.5 + 0.25 * i, 1.25 - 0.1 * i
        sample = DetDataSample(metainfo={'img_id': img['id'], 'ori_shape': (img['height'], img['width']),
                                         'scale_factor': (sx, sy)})
        own = [d for d in dets if d['image_id'] == img['id']]
        sample.pred_instances = InstanceData(
            bboxes=_xyxy([d['bbox'] for d in own]), scores=torch.tensor([d['score'] for d in own]),
            labels=torch.tensor([LABEL[d['category_id']] for d in own], dtype=torch.long))
        if with_gt:
            anns = [a for a in gt['annotations'] if a['image_id'] == img['id']]
            sample.set_metainfo({'instances': [
                dict(bbox=_xyxy([a['bbox']])[0].tolist(), bbox_label=LABEL[a['category_id']],
                     ignore_flag=a['iscrowd']) for a in anns]})
            plain = [a for a in anns if not a['iscrowd']]
            sample.gt_instances = InstanceData(
                bboxes=_xyxy([a['bbox'] for a in plain]) * torch.tensor([sx, sy, sx, sy]),
                labels=torch.tensor([LABEL[a['category_id']] for a in plain], dtype=torch.long))
        samples.append(sample)
    return samples


def _run(metric, samples, **dataset_meta) -> dict:
    """Batches of 2; mmengine's Evaluator hands the metric dicts (``to_dict()``), so half go as dicts.
    ``dataset_meta`` is what the evaluated dataset's metainfo adds to its classes."""
    metric.dataset_meta = {'classes': CLASSES, **dataset_meta}
    for start in range(0, len(samples), 2):
        batch = samples[start:start + 2]
        metric.process({}, [s.to_dict() if start % 4 else s for s in batch])
    return metric.evaluate(len(samples))


def _expected(gt, dets) -> dict:
    ref = pycocotools_stats(gt, dets)
    out = {'AP': ref[0], 'AP50': ref[1], 'AP75': ref[2], 'AR100': ref[8]}
    for name, lo, hi in DEFAULT_TIERS:
        tier = pycocotools_stats(gt, dets, area_rng=[lo ** 2, hi ** 2])
        out[f'AP_{name}'], out[f'AR_{name}'] = tier[3], tier[9]
    return out


def _check(metrics: dict, expected: dict):
    assert list(metrics) == [f'coco/{k}' for k in KEYS]
    for k in KEYS:
        assert metrics[f'coco/{k}'] == pytest.approx(expected[k], abs=1e-4), k


@pytest.mark.parametrize('seed', (0, 1))
def test_metric_from_samples_matches_pycocotools(seed, tmp_path):
    gt, dets = random_case(seed)
    metric = METRICS.build(dict(type='CocoMetric', outfile_prefix=str(tmp_path / 'run')))
    metrics = _run(metric, _samples(gt, dets))
    _check(metrics, _expected(gt, dets))
    # the files it wrote evaluate to the same numbers with plain pycocotools
    written_gt = json.loads((tmp_path / 'run.gt.json').read_text())
    written_dets = json.loads((tmp_path / 'run.bbox.json').read_text())
    ref = pycocotools_stats(written_gt, written_dets)
    assert ref[0] == pytest.approx(metrics['coco/AP'], abs=1e-4)
    assert [c['name'] for c in written_gt['categories']] == CLASSES


def test_metric_with_ann_file(tmp_path):
    gt, dets = random_case(2)
    ann_file = tmp_path / 'gt.json'
    ann_file.write_text(json.dumps(gt))
    metric = CocoMetric(ann_file=str(ann_file), backend='pycocotools', outfile_prefix=str(tmp_path / 'r'))
    _check(_run(metric, _samples(gt, dets, with_gt=False)), _expected(gt, dets))
    written = json.loads((tmp_path / 'r.bbox.json').read_text())
    assert {d['category_id'] for d in written} <= set(CAT_IDS)  # labels mapped back to the json's ids
    assert not (tmp_path / 'r.gt.json').exists()


def test_metric_with_ann_file_evaluates_only_processed_images(tmp_path):
    gt, dets = random_case(3)
    ann_file = tmp_path / 'gt.json'
    ann_file.write_text(json.dumps(gt))
    samples = _samples(gt, dets, with_gt=False)[:3]
    metrics = _run(CocoMetric(ann_file=str(ann_file)), samples)
    ref = pycocotools_stats(gt, [d for d in dets if d['image_id'] <= 3], img_ids=[1, 2, 3])
    assert metrics['coco/AP'] == pytest.approx(ref[0], abs=1e-4)
    assert metrics['coco/AR100'] == pytest.approx(ref[8], abs=1e-4)


def test_metric_uses_the_datasets_json_and_resolves_relative_paths_from_its_root(tmp_path):
    """No ann_file: the evaluated dataset's own json (so overriding its data_root moves the evaluation);
    a relative ann_file is taken from the dataset's data_root, not the working directory."""
    gt, dets = random_case(2)
    (tmp_path / 'annotations').mkdir()
    (tmp_path / 'annotations' / 'val.json').write_text(json.dumps(gt))
    expected = _expected(gt, dets)
    _check(_run(CocoMetric(), _samples(gt, dets, with_gt=False), data_root=str(tmp_path),
                ann_file=str(tmp_path / 'annotations' / 'val.json')), expected)
    _check(_run(CocoMetric(ann_file='annotations/val.json'), _samples(gt, dets, with_gt=False),
                data_root=str(tmp_path)), expected)
    with pytest.raises(FileNotFoundError, match='missing.json'):
        CocoMetric(ann_file='missing.json').dataset_meta = {'classes': CLASSES, 'data_root': str(tmp_path)}


def test_metric_rejects_annotations_of_another_dataset(tmp_path):
    """Class names the json lacks fail when the evaluator is given the dataset (before any training);
    image ids the json lacks fail instead of scoring against nothing."""
    gt, dets = random_case(2)
    ann_file = tmp_path / 'gt.json'
    ann_file.write_text(json.dumps(gt))
    metric = CocoMetric(ann_file=str(ann_file))
    with pytest.raises(ValueError, match=r"classes \['cat'\] are not categories"):
        metric.dataset_meta = {'classes': CLASSES[:-1] + ['cat']}
    samples = _samples(gt, dets, with_gt=False)
    samples[0].set_metainfo({'img_id': 9999})
    with pytest.raises(ValueError, match='9999'):
        _run(CocoMetric(ann_file=str(ann_file)), samples)


def test_metric_without_json_needs_the_datasets_annotations():
    gt, dets = random_case(0)
    with pytest.raises(KeyError, match='instances'):
        _run(CocoMetric(), _samples(gt, dets, with_gt=False))


def test_metric_hands_evaluate_coco_detection_columns_and_keeps_pycocotools_numbers(monkeypatch, tmp_path):
    """The detections go to ``evaluate_coco`` as one ``[N, 7]`` array (image id, xywh, score, the json's
    category id), not one dict per detection; AP is pycocotools' on the same detections."""
    gt, dets = random_case(3)
    ann_file = tmp_path / 'gt.json'
    ann_file.write_text(json.dumps(gt))
    handed = []

    def spy(gt_arg, detections, **kwargs):
        handed.append(detections)
        return evaluate_coco(gt_arg, detections, **kwargs)
    monkeypatch.setattr(coco_metric, 'evaluate_coco', spy)
    metric = CocoMetric(ann_file=str(ann_file), backend='pycocotools')
    _check(_run(metric, _samples(gt, dets, with_gt=False)), _expected(gt, dets))
    (rows,) = handed
    assert isinstance(rows, np.ndarray) and rows.shape == (len(dets), 7)
    expected = sorted((d['image_id'], *d['bbox'], d['score'], d['category_id']) for d in dets)
    np.testing.assert_allclose(sorted(map(tuple, rows.tolist())), expected, atol=1e-4)


def test_metric_with_empty_predictions():
    gt, _ = random_case(0)
    metrics = _run(CocoMetric(), _samples(gt, []))
    _check(metrics, _expected(gt, []))
    assert metrics['coco/AP'] == 0 and all(metrics[f'coco/AP_{t[0]}'] == 0 for t in DEFAULT_TIERS)


def test_format_only_writes_detections_and_returns_nothing(tmp_path):
    gt, dets = random_case(1)
    metric = CocoMetric(format_only=True, outfile_prefix=str(tmp_path / 'out' / 'x'))
    assert _run(metric, _samples(gt, dets)) == {}
    written = json.loads((tmp_path / 'out' / 'x.bbox.json').read_text())
    assert len(written) == len(dets)
    scores = sorted(d['score'] for d in written)
    np.testing.assert_allclose(scores, sorted(d['score'] for d in dets), atol=1e-6)
    with pytest.raises(ValueError, match='outfile_prefix'):
        CocoMetric(format_only=True)


def test_metric_says_what_it_covers_when_unreadable_images_were_left_out(tmp_path):
    """The evaluated dataset left an unreadable image out (``metainfo['unreadable_images']``, set by the
    data check): the numbers are those of the other images, scored against the json as pycocotools
    scores them, and the metric says it covers 3 of 4 images."""
    gt, dets = random_case(3)
    ann_file = tmp_path / 'gt.json'
    ann_file.write_text(json.dumps(gt))
    samples = _samples(gt, dets, with_gt=False)[:3]
    metrics = _run(CocoMetric(ann_file=str(ann_file)), samples, unreadable_images=['/data/val/broken.jpg'])
    ref = pycocotools_stats(gt, [d for d in dets if d['image_id'] <= 3], img_ids=[1, 2, 3])
    assert metrics['coco/AP'] == pytest.approx(ref[0], abs=1e-4)
    assert metrics['coco/images_evaluated'] == 3 and metrics['coco/images_unreadable'] == 1
    assert metrics['coco/coverage'] == 'evaluated on 3 of 4 images; 1 unreadable, listed above'
    # Nothing left out: the results are the usual keys only.
    assert list(_run(CocoMetric(ann_file=str(ann_file)), samples)) == [f'coco/{k}' for k in KEYS]
