"""What every dense head shares: ``loss`` / ``predict`` around ``forward``, one ``test_cfg`` and the
one post-processing path of :mod:`det.models.utils.selection` (MMDetection 3.x's dense-head shape).

A head implements three methods and nothing else of the contract:

- ``forward(feats) -> tuple of raw tensors`` (logits and encoded boxes; nothing decoded);
- ``loss_by_feat(*raw, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore) -> dict of
  'loss_*' tensors``: targets (ignore regions included) come from the head's TASK_UTILS module, each
  term from its own registered loss config;
- ``predict_by_feat(*raw, batch_img_metas) -> list[InstanceData]``, usually by decoding every position
  into boxes and per-class scores and handing them to :meth:`select_detections`.

Boxes leave a head in network-input pixels (xyxy, absolute); the detector maps them to original pixels.
"""
from abc import abstractmethod

import torch
from mmengine.model import BaseModule
from mmengine.structures import InstanceData

from det.models.utils.selection import build_selection_cfg, select_detections


class BaseDenseHead(BaseModule):
    """Base of the single-stage heads: reads ``feats[in_index]`` of the neck's (or backbone's) tuple.

    Args:
        num_classes: C, labels ``0..C-1`` (no background index).
        in_channels / strides: channels and strides of every level the detector passes (it fills them in
            from the neck or backbone).
        in_index: the level the head reads; 0, the finest, in every head by default.
        test_cfg: overrides of the subclass's ``default_test_cfg`` (keys of
            :mod:`det.models.utils.selection`).
    """

    default_test_cfg = dict(score_thr=0.0, nms=None, max_per_img=100, topk=1000)

    def __init__(self, num_classes: int, in_channels, strides, in_index: int = 0, test_cfg: dict = None,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if not -len(strides) <= in_index < len(strides):
            raise IndexError(f'in_index={in_index} but the head is given {len(strides)} levels '
                             f'(strides {list(strides)})')
        self.num_classes = num_classes
        self.in_index = in_index
        self.in_channels = int(in_channels[in_index])
        self.stride = int(strides[in_index])
        self.test_cfg = build_selection_cfg(test_cfg, self.default_test_cfg)

    def loss(self, feats: tuple, data_samples: list) -> dict:
        """Losses of the batch; ``data_samples[i].gt_instances`` are xyxy network-input pixels, and each
        sample's ``ignored_instances`` (crowd / difficult boxes, or None) go to the targets too."""
        raw = self(feats)
        return self.loss_by_feat(*raw, batch_gt_instances=[s.gt_instances for s in data_samples],
                                 batch_img_metas=[s.metainfo for s in data_samples],
                                 batch_gt_instances_ignore=[getattr(s, 'ignored_instances', None)
                                                            for s in data_samples])

    @torch.no_grad()
    def predict(self, feats: tuple, data_samples: list) -> list:
        """One ``InstanceData(bboxes [K, 4] xyxy network-input pixels, scores [K], labels [K])`` per
        image, best first."""
        return self.predict_by_feat(*self(feats), batch_img_metas=[s.metainfo for s in data_samples])

    @abstractmethod
    def loss_by_feat(self, *raw, batch_gt_instances: list, batch_img_metas: list,
                     batch_gt_instances_ignore: list = None) -> dict:
        """Raw outputs and ground truth (``batch_gt_instances_ignore``: one ``InstanceData`` of ignored
        ``bboxes`` or None per image) -> ``{'loss_<term>': scalar}``."""

    @abstractmethod
    def predict_by_feat(self, *raw, batch_img_metas: list) -> list:
        """Raw outputs -> one ``InstanceData`` per image, boxes in network-input pixels."""

    def select_detections(self, bboxes: torch.Tensor, scores: torch.Tensor) -> InstanceData:
        """One image's candidates -> detections by ``test_cfg``: ``bboxes`` ``[P, 4]`` xyxy input pixels
        of P positions (predictors, heatmap pixels), ``scores`` ``[P, C]``; every (position, class) pair
        is a candidate (:func:`~det.models.utils.selection.select_detections`). A method so that export
        can take the candidates instead (``tools/export_onnx.py``)."""
        return select_detections(bboxes, scores, **self.test_cfg)
