"""Second-stage heads of two-stage detectors: RoI feature extractors and the box head on them."""
from .roi_extractors import PSRoIAlignExtractor, RoIAlignExtractor  # noqa: F401
from .standard_roi_head import StandardRoIHead  # noqa: F401
