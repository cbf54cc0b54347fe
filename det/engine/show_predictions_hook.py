"""Saves, for each test image, its ground truth beside the model's predictions (``tools/test.py
--show-dir``)."""
import os.path as osp

import cv2
import numpy as np
from mmengine.hooks import Hook

from det.datasets.transforms.loading import read_image
from det.engine.atomic_backend import write_atomic
from det.registry import HOOKS
from det.visualization import gt_beside_pred


@HOOKS.register_module()
class ShowPredictionsHook(Hook):
    """After each test batch, draws every sample into ``out_dir/<image file name>.jpg``: the dataset's
    annotations (``instances`` metainfo, original pixels) beside the detector's predictions (original
    pixels too). Ignored (crowd / difficult) boxes are not drawn."""

    def __init__(self, out_dir: str, score_thr: float = 0.3):
        self.out_dir = out_dir
        self.score_thr = score_thr

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        classes = runner.test_dataloader.dataset.metainfo.get('classes', ())
        for sample in outputs:
            img = read_image(sample.img_path)  # as the model saw it (a file cut short included)
            if img is None:
                continue
            gt = [i for i in sample.metainfo.get('instances', []) if not i['ignore_flag']]
            gt_boxes = np.array([i['bbox'] for i in gt], dtype=np.float32).reshape(-1, 4)
            gt_labels = np.array([i['bbox_label'] for i in gt], dtype=np.int64)
            pred = sample.pred_instances
            canvas = gt_beside_pred(
                img, dict(bboxes=gt_boxes, labels=gt_labels),
                dict(bboxes=pred.bboxes.cpu().numpy(), labels=pred.labels.cpu().numpy(),
                     scores=pred.scores.cpu().numpy()), classes, self.score_thr)
            name = osp.splitext(osp.basename(sample.img_path))[0] + '.jpg'
            ok, encoded = cv2.imencode('.jpg', canvas)
            if ok:
                write_atomic(encoded.tobytes(), osp.join(self.out_dir, name))
