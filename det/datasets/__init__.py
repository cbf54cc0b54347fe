"""Importing det.datasets registers every dataset (and, through ``transforms``, every transform)."""
from . import transforms  # noqa: F401
from .box_sanity import BoxSanityLog, sanitize_instances
from .coco import CocoDataset
from .mix_dataset import MultiImageMixDataset
from .shapes import ShapesDataset, generate_shapes
from .voc import VOCDataset
from .yolo import YOLODataset

__all__ = ['BoxSanityLog', 'CocoDataset', 'MultiImageMixDataset', 'ShapesDataset', 'VOCDataset',
           'YOLODataset', 'generate_shapes', 'sanitize_instances']
