"""Model-level utilities that are not modules of their own: inference-time Conv-BN fusion."""
from .fuse import fuse_conv_bn

__all__ = ['fuse_conv_bn']
