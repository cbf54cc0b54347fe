# Each module here registers itself; add one import line per module.
from .base_dense_head import BaseDenseHead  # noqa: F401
from .centernet_head import CenterNetHead  # noqa: F401
from .detr_head import DETRHead  # noqa: F401
from .rpn_head import RPNHead  # noqa: F401
from .ttfnet_head import TTFNetHead  # noqa: F401
from .yolov1_head import YOLOV1Head  # noqa: F401
