"""Backbone → optional neck → dense head. YOLO v1 and CenterNet are configs of this one class."""
from det.registry import MODELS

from .base import BaseDetector, with_shapes


@MODELS.register_module()
class SingleStageDetector(BaseDetector):
    """A one-shot detector built from config dicts: :class:`BaseDetector`'s skeleton and one dense head,
    sized from the neck's (or backbone's) ``out_channels`` / ``strides``, so a config may leave
    ``in_channels`` / ``strides`` out of the neck and head dicts."""

    def __init__(self, backbone: dict, head: dict, neck: dict = None, data_preprocessor: dict = None,
                 init_cfg=None):
        super().__init__(backbone, neck, data_preprocessor, init_cfg)
        self.head = MODELS.build(with_shapes(head, self.feat_channels, self.feat_strides))

    def loss_by_gt(self, inputs, data_samples):
        return self.head.loss(self.extract_feat(inputs), data_samples)

    def predict_in_input_pixels(self, inputs, data_samples):
        return self.head.predict(self.extract_feat(inputs), data_samples)

    def _forward(self, inputs, data_samples=None):
        return self.head(self.extract_feat(inputs))
