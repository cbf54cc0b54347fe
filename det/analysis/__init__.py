"""Analysis behind the tools in ``tools/analysis/``: receptive fields, precision-recall curves per class
and size tier, confusion matrices, and training curves from mmengine's scalar logs."""
