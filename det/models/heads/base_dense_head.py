"""What every dense head shares: ``loss`` / ``predict`` around ``forward``, one ``test_cfg`` and one
post-processing path (MMDetection 3.x's dense-head shape).

A head implements three methods and nothing else of the contract:

- ``forward(feats) -> tuple of raw tensors`` (logits and encoded boxes; nothing decoded);
- ``loss_by_feat(*raw, batch_gt_instances, batch_img_metas) -> dict of 'loss_*' tensors``: targets come
  from the head's TASK_UTILS module, each term from its own registered loss config;
- ``predict_by_feat(*raw, batch_img_metas) -> list[InstanceData]``, usually by decoding every position
  into boxes and per-class scores and handing them to :meth:`select_detections`.

Boxes leave a head in network-input pixels (xyxy, absolute); the detector maps them to original pixels.
"""
from abc import abstractmethod

import torch
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torchvision.ops import batched_nms

# The one post-processing vocabulary of every head. ``topk``: candidates (position, class) kept by score
# before the threshold and NMS; ``score_thr``: minimum score; ``nms``: ``None`` or ``dict(iou_thr=...)``
# for class-wise NMS; ``max_per_img``: detections returned per image.
TEST_CFG_KEYS = ('score_thr', 'nms', 'max_per_img', 'topk')


def build_test_cfg(test_cfg, defaults: dict) -> dict:
    """``defaults`` updated with ``test_cfg``; unknown keys or a malformed ``nms`` are errors."""
    cfg = dict(defaults)
    unknown = sorted(set(test_cfg or {}) - set(TEST_CFG_KEYS))
    if unknown:
        raise KeyError(f'test_cfg keys {unknown} are not known; a head reads {list(TEST_CFG_KEYS)}')
    cfg.update(test_cfg or {})
    if cfg['nms'] is not None and set(cfg['nms']) != {'iou_thr'}:
        raise ValueError(f"test_cfg['nms'] must be None or dict(iou_thr=...), got {cfg['nms']!r}")
    return cfg


class BaseDenseHead(BaseModule):
    """Base of the single-stage heads: reads ``feats[in_index]`` of the neck's (or backbone's) tuple.

    Args:
        num_classes: C, labels ``0..C-1`` (no background index).
        in_channels / strides: channels and strides of every level the detector passes (it fills them in
            from the neck or backbone).
        in_index: the level the head reads; 0, the finest, in every head by default.
        test_cfg: overrides of the subclass's ``default_test_cfg`` (keys ``TEST_CFG_KEYS``).
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
        self.test_cfg = build_test_cfg(test_cfg, self.default_test_cfg)

    def loss(self, feats: tuple, data_samples: list) -> dict:
        """Losses of the batch; ``data_samples[i].gt_instances`` are xyxy network-input pixels."""
        raw = self(feats)
        return self.loss_by_feat(*raw, batch_gt_instances=[s.gt_instances for s in data_samples],
                                 batch_img_metas=[s.metainfo for s in data_samples])

    @torch.no_grad()
    def predict(self, feats: tuple, data_samples: list) -> list:
        """One ``InstanceData(bboxes [K, 4] xyxy network-input pixels, scores [K], labels [K])`` per
        image, best first."""
        return self.predict_by_feat(*self(feats), batch_img_metas=[s.metainfo for s in data_samples])

    @abstractmethod
    def loss_by_feat(self, *raw, batch_gt_instances: list, batch_img_metas: list) -> dict:
        """Raw outputs and ground truth -> ``{'loss_<term>': scalar}``."""

    @abstractmethod
    def predict_by_feat(self, *raw, batch_img_metas: list) -> list:
        """Raw outputs -> one ``InstanceData`` per image, boxes in network-input pixels."""

    def select_detections(self, bboxes: torch.Tensor, scores: torch.Tensor) -> InstanceData:
        """One image's candidates -> detections, by ``test_cfg``.

        ``bboxes`` ``[P, 4]`` xyxy input pixels of P positions (predictors, heatmap pixels), ``scores``
        ``[P, C]``: every (position, class) pair is a candidate. Keeps the ``topk`` best pairs, those
        above ``score_thr``, runs class-wise NMS when ``nms`` is set, and returns at most ``max_per_img``
        sorted by score.
        """
        cfg = self.test_cfg
        flat = scores.flatten()
        flat, order = flat.topk(min(cfg['topk'], flat.numel()))
        above = flat > cfg['score_thr']
        flat, order = flat[above], order[above]
        boxes, labels = bboxes[order // self.num_classes], order % self.num_classes
        if cfg['nms'] is not None:
            keep = batched_nms(boxes, flat, labels, cfg['nms']['iou_thr'])
        else:
            keep = torch.arange(flat.numel(), device=flat.device)  # topk already sorted them
        keep = keep[:cfg['max_per_img']]
        return InstanceData(bboxes=boxes[keep], scores=flat[keep], labels=labels[keep])
