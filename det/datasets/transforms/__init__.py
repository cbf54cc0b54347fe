"""Importing det.datasets.transforms registers every transform in det's TRANSFORMS registry."""
from .albu import Albu
from .builder import build_pipeline
from .formatting import PackDetInputs
from .loading import LoadAnnotations, LoadImageFromFile
from .mix import MixUp, Mosaic
from .resize import Pad, Resize

__all__ = ['Albu', 'LoadAnnotations', 'LoadImageFromFile', 'MixUp', 'Mosaic', 'PackDetInputs', 'Pad',
           'Resize', 'build_pipeline']
