# Each module here registers itself; add one import line per module.
from .gaussian_focal_loss import GaussianFocalLoss  # noqa: F401
from .l1_loss import L1Loss  # noqa: F401
from .yolov1_loss import YOLOV1Loss  # noqa: F401
