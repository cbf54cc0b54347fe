# Each module here registers itself; add one import line per module.
from .binary_cross_entropy_loss import BinaryCrossEntropyLoss  # noqa: F401
from .cross_entropy_loss import CrossEntropyLoss  # noqa: F401
from .gaussian_focal_loss import GaussianFocalLoss  # noqa: F401
from .giou_loss import GIoULoss  # noqa: F401
from .l1_loss import L1Loss  # noqa: F401
from .matchability_aware_loss import MatchabilityAwareLoss  # noqa: F401
from .mse_loss import MSELoss  # noqa: F401
from .position_supervised_loss import PositionSupervisedLoss  # noqa: F401
from .smooth_l1_loss import SmoothL1Loss  # noqa: F401
from .varifocal_loss import VarifocalLoss  # noqa: F401
