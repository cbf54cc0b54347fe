# Each module here registers itself; add one import line per module.
from .centernet_targets import CenterNetTargetGenerator, CenterNetTargets, gaussian_radius  # noqa: F401
from .yolov1_assigner import YOLOV1Assigner, YOLOV1AssignResult  # noqa: F401
from .yolov1_bbox_coder import YOLOV1BBoxCoder  # noqa: F401
