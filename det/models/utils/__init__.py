"""Model-level utilities that are not modules of their own: inference-time Conv-BN fusion, and a summary
of what a (fine-tuning) run trains."""
from .fuse import fuse_conv_bn
from .trainable import describe_trainable

__all__ = ['describe_trainable', 'fuse_conv_bn']
