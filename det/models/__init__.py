"""Importing det.models registers every backbone, neck, head, loss, task util and detector."""
from . import backbones, detectors, heads, losses, necks, roi_heads, task_modules  # noqa: F401
from .data_preprocessor import DetDataPreprocessor  # noqa: F401
