"""Backbone → optional neck → dense head. YOLO v1 and CenterNet are configs of this one class."""
import torch

from det.registry import MODELS

from .base import BaseDetector


@MODELS.register_module()
class SingleStageDetector(BaseDetector):
    """A one-shot detector built from config dicts.

    The neck is sized from ``backbone.out_channels`` / ``backbone.strides`` and the head from the
    neck's (or backbone's) ``out_channels`` / ``strides``, so configs do not repeat channel counts:
    a config may leave ``in_channels`` / ``strides`` out of the neck and head dicts.
    """

    def __init__(self, backbone: dict, head: dict, neck: dict = None, data_preprocessor: dict = None,
                 init_cfg=None):
        # Built through det's registry so the detector also builds outside a 'det' default scope.
        preprocessor = MODELS.build(data_preprocessor or dict(type='DetDataPreprocessor'))
        super().__init__(data_preprocessor=preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        channels, strides = list(self.backbone.out_channels), list(self.backbone.strides)
        self.neck = None
        if neck is not None:
            neck = dict(neck)
            neck.setdefault('in_channels', channels)
            neck.setdefault('strides', strides)
            self.neck = MODELS.build(neck)
            channels, strides = list(self.neck.out_channels), list(self.neck.strides)
        head = dict(head)
        head.setdefault('in_channels', channels)
        head.setdefault('strides', strides)
        self.head = MODELS.build(head)

    def extract_feat(self, inputs: torch.Tensor) -> tuple:
        feats = self.backbone(inputs)
        if self.neck is not None:
            feats = self.neck(feats)
        return tuple(feats)

    def loss(self, inputs, data_samples):
        return self.head.loss(self.extract_feat(inputs), data_samples)

    def predict_in_input_pixels(self, inputs, data_samples):
        return self.head.predict(self.extract_feat(inputs), data_samples)

    def _forward(self, inputs, data_samples=None):
        return self.head(self.extract_feat(inputs))
