from .bbox import rescale_to_original
from .det_data_sample import DetDataSample

__all__ = ['DetDataSample', 'rescale_to_original']
