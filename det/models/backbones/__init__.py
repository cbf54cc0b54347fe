# Each module here registers itself; add one import line per module.
from .efficientnet import EfficientNet  # noqa: F401
from .efficientnet_lite import EfficientNetLite  # noqa: F401
from .mobilenet_v1 import MobileNetV1  # noqa: F401
from .mobilenet_v2 import MobileNetV2  # noqa: F401
from .mobilenet_v3 import MobileNetV3  # noqa: F401
from .snet import SNet  # noqa: F401
from .torchvision_backbone import TorchvisionBackbone  # noqa: F401
