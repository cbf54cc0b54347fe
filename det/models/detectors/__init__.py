from .base import BaseDetector
from .single_stage import SingleStageDetector

__all__ = ['BaseDetector', 'SingleStageDetector']
