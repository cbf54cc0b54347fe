"""Python entry points: build a detector from a config and checkpoint, run it on images."""
from .inference import inference_detector, init_detector, load_image

__all__ = ['inference_detector', 'init_detector', 'load_image']
