# Each module here registers itself; add one import line per module.
from .anchor_generator import AnchorGenerator  # noqa: F401
from .centernet_targets import (  # noqa: F401
    CenterNetTargetGenerator,
    CenterNetTargets,
    TTFNetTargetGenerator,
    TTFNetTargets,
    gaussian_radius,
    ignore_mask,
)
from .delta_xywh_bbox_coder import DeltaXYWHBBoxCoder  # noqa: F401
from .hungarian_matcher import HungarianMatcher  # noqa: F401
from .max_iou_assigner import AssignResult, MaxIoUAssigner  # noqa: F401
from .random_sampler import RandomSampler, SamplingResult  # noqa: F401
from .yolov1_assigner import YOLOV1Assigner, YOLOV1AssignResult  # noqa: F401
from .yolov1_bbox_coder import YOLOV1BBoxCoder  # noqa: F401
