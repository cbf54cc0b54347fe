"""Saves, for each test image, its ground truth beside the model's predictions (``tools/test.py
--show-dir``)."""
import os.path as osp

import cv2
from mmengine.hooks import Hook

from det.engine.atomic_backend import write_atomic
from det.registry import HOOKS
from det.structures import rescale_to_original
from det.visualization import gt_beside_pred


@HOOKS.register_module()
class ShowPredictionsHook(Hook):
    """After each test batch, draws every sample into ``out_dir/<image file name>.jpg``.
    Ground truth is mapped from the resized input back to original pixels, where predictions are."""

    def __init__(self, out_dir: str, score_thr: float = 0.3):
        self.out_dir = out_dir
        self.score_thr = score_thr

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        classes = runner.test_dataloader.dataset.metainfo.get('classes', ())
        for sample in outputs:
            img = cv2.imread(sample.img_path, cv2.IMREAD_COLOR)
            if img is None:
                continue
            gt = sample.gt_instances
            gt_boxes = rescale_to_original(gt.bboxes.float(), sample.scale_factor, sample.ori_shape)
            pred = sample.pred_instances
            canvas = gt_beside_pred(
                img, dict(bboxes=gt_boxes.cpu().numpy(), labels=gt.labels.cpu().numpy()),
                dict(bboxes=pred.bboxes.cpu().numpy(), labels=pred.labels.cpu().numpy(),
                     scores=pred.scores.cpu().numpy()), classes, self.score_thr)
            name = osp.splitext(osp.basename(sample.img_path))[0] + '.jpg'
            ok, encoded = cv2.imencode('.jpg', canvas)
            if ok:
                write_atomic(encoded.tobytes(), osp.join(self.out_dir, name))
