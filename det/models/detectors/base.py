"""The detector base: an mmengine ``BaseModel`` whose ``mode`` is always explicit, the one skeleton every
detector shares (data preprocessor ─▶ backbone ─▶ optional neck, channels and strides handed on, ground
truth checked before any loss), and the one place where predictions go from network-input pixels back
to original pixels."""
from abc import abstractmethod

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModel

from det.models.backbones.pretrained import check_normalisation
from det.registry import MODELS
from det.structures import instances_to_original


def with_shapes(cfg: dict, channels: list, strides: list) -> dict:
    """``cfg`` with ``in_channels`` / ``strides`` filled in where the config leaves them out, so configs
    do not repeat what the previous stage already says."""
    return dict(dict(in_channels=list(channels), strides=list(strides)), **cfg)


class BaseDetector(BaseModel):
    """Builds ``data_preprocessor``, ``backbone`` and the optional ``neck`` (sized by the backbone's
    ``out_channels`` / ``strides``) and dispatches ``forward(inputs, data_samples, mode)``:

    - ``'loss'``: dict of ``loss_*`` tensors, after :meth:`sanitise_gt`;
    - ``'predict'``: the input ``data_samples`` with ``pred_instances`` (xyxy boxes in original pixels,
      mapped back here, once, for every head: by ``scale_factor``, then clipped to ``ori_shape``);
    - ``'tensor'``: the head's raw outputs (for export, analysis and pyramid inference).
    The return type depends on ``mode`` alone, never on ``self.training``.

    ``feat_channels`` / ``feat_strides`` are the channels and strides of the maps :meth:`extract_feat`
    returns (the neck's, or the backbone's without one): the heads are sized from them.
    """

    def __init__(self, backbone: dict, neck: dict = None, data_preprocessor: dict = None, init_cfg=None):
        # Built through det's registry so the detector also builds outside a 'det' default scope.
        preprocessor = MODELS.build(data_preprocessor or dict(type='DetDataPreprocessor'))
        super().__init__(data_preprocessor=preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        channels, strides = list(self.backbone.out_channels), list(self.backbone.strides)
        self.neck = None
        if neck is not None:
            self.neck = MODELS.build(with_shapes(neck, channels, strides))
            channels, strides = list(self.neck.out_channels), list(self.neck.strides)
        self.feat_channels, self.feat_strides = channels, strides

    def init_weights(self):
        """mmengine's, after checking that pretrained backbone weights were trained with the input
        normalisation of ``data_preprocessor`` (a ValueError naming both otherwise)."""
        if not getattr(self.backbone, '_is_init', False):
            check_normalisation(self.backbone.init_cfg, self.data_preprocessor)
        super().init_weights()

    def forward(self, inputs: torch.Tensor, data_samples=None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")

    def extract_feat(self, inputs: torch.Tensor) -> tuple:
        """Backbone (and neck) features of ``inputs`` [B, 3, H, W], finest first."""
        feats = self.backbone(inputs)
        if self.neck is not None:
            feats = self.neck(feats)
        return tuple(feats)

    @staticmethod
    def sanitise_gt(data_samples: list) -> list:
        """Checks each sample's ``gt_instances`` (xyxy network-input pixels) and drops, in place and with
        a warning naming the image, boxes with no area (``x2 <= x1`` or ``y2 <= y1``), which no loss can
        regress (GIoU and the box coders divide by their size). Boxes that are not a finite ``[N, 4]``
        raise a ValueError naming the image. Returns ``data_samples``."""
        for sample in data_samples:
            gt = sample.gt_instances
            bboxes = gt.bboxes
            name = sample.metainfo.get('img_path', 'a sample')
            if bboxes.dim() != 2 or bboxes.shape[-1] != 4 or not torch.isfinite(bboxes).all():
                raise ValueError(f'gt_instances.bboxes of {name} must be finite [N, 4] xyxy, got shape '
                                 f'{tuple(bboxes.shape)}')
            valid = (bboxes[:, 2] > bboxes[:, 0]) & (bboxes[:, 3] > bboxes[:, 1])
            if not valid.all():
                print_log(f'{int((~valid).sum())} ground-truth boxes with no area skipped in {name}',
                          logger='current', level=30)
                sample.gt_instances = gt[valid]
        return data_samples

    def loss(self, inputs: torch.Tensor, data_samples: list) -> dict:
        """Training losses of the batch, on ground truth checked by :meth:`sanitise_gt`."""
        return self.loss_by_gt(inputs, self.sanitise_gt(data_samples))

    @abstractmethod
    def loss_by_gt(self, inputs: torch.Tensor, data_samples: list) -> dict:
        """Training losses; every ``data_samples[i].gt_instances`` box has an area."""

    def predict(self, inputs: torch.Tensor, data_samples: list, rescale: bool = True) -> list:
        """``data_samples`` with ``pred_instances`` set: boxes in original pixels, or in network-input
        pixels with ``rescale=False`` (for callers that map views back themselves)."""
        results = self.predict_in_input_pixels(inputs, data_samples)
        for sample, pred in zip(data_samples, results):
            sample.pred_instances = instances_to_original(pred, sample.metainfo) if rescale else pred
        return data_samples

    @abstractmethod
    def predict_in_input_pixels(self, inputs: torch.Tensor, data_samples: list) -> list:
        """One ``InstanceData(bboxes [K, 4] xyxy network-input pixels, scores [K], labels [K])`` per
        sample."""

    @abstractmethod
    def _forward(self, inputs: torch.Tensor, data_samples=None):
        """Raw head outputs."""
