"""The detector base: an mmengine ``BaseModel`` whose ``mode`` is always explicit."""
from abc import abstractmethod

import torch
from mmengine.model import BaseModel


class BaseDetector(BaseModel):
    """Dispatches ``forward(inputs, data_samples, mode)`` to ``loss``, ``predict`` or ``_forward``.

    - ``'loss'``: dict of ``loss_*`` tensors;
    - ``'predict'``: the input ``data_samples`` with ``pred_instances`` (xyxy boxes in original pixels);
    - ``'tensor'``: the head's raw outputs (for export, analysis and pyramid inference).
    The return type depends on ``mode`` alone, never on ``self.training``.
    """

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

    @abstractmethod
    def predict(self, inputs: torch.Tensor, data_samples: list) -> list:
        """Samples with ``pred_instances`` set."""

    @abstractmethod
    def _forward(self, inputs: torch.Tensor, data_samples=None):
        """Raw head outputs."""
