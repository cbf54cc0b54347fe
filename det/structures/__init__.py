from .bbox import instances_to_original, rescale_to_original
from .det_data_sample import DetDataSample

__all__ = ['DetDataSample', 'instances_to_original', 'rescale_to_original']
