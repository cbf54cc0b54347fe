"""det: a lean object-detection toolkit on mmengine."""
__version__ = '0.1.0'
