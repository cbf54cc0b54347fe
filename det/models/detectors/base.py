"""The detector base: an mmengine ``BaseModel`` whose ``mode`` is always explicit, and the one place
where predictions go from network-input pixels back to original pixels."""
from abc import abstractmethod

import torch
from mmengine.model import BaseModel

from det.models.backbones.pretrained import check_normalisation
from det.structures import instances_to_original


class BaseDetector(BaseModel):
    """Dispatches ``forward(inputs, data_samples, mode)`` to ``loss``, ``predict`` or ``_forward``.

    - ``'loss'``: dict of ``loss_*`` tensors;
    - ``'predict'``: the input ``data_samples`` with ``pred_instances`` (xyxy boxes in original pixels,
      mapped back here, once, for every head: by ``scale_factor``, then clipped to ``ori_shape``);
    - ``'tensor'``: the head's raw outputs (for export, analysis and pyramid inference).
    The return type depends on ``mode`` alone, never on ``self.training``.
    """

    def init_weights(self):
        """mmengine's, after checking that pretrained backbone weights were trained with the input
        normalisation of ``data_preprocessor`` (a ValueError naming both otherwise)."""
        backbone = getattr(self, 'backbone', None)
        if backbone is not None and not getattr(backbone, '_is_init', False):
            check_normalisation(backbone.init_cfg, self.data_preprocessor)
        super().init_weights()

    def forward(self, inputs: torch.Tensor, data_samples=None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")

    @abstractmethod
    def extract_feat(self, inputs: torch.Tensor) -> tuple:
        """Backbone (and neck) features of ``inputs`` [B, 3, H, W], finest first."""

    @abstractmethod
    def loss(self, inputs: torch.Tensor, data_samples: list) -> dict:
        """Training losses."""

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
