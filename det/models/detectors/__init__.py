from .base import BaseDetector
from .detr import DETR
from .single_stage import SingleStageDetector
from .two_stage import TwoStageDetector

__all__ = ['BaseDetector', 'DETR', 'SingleStageDetector', 'TwoStageDetector']
