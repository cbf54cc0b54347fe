"""Backbone -> neck -> RPN (proposals) -> [SAM] -> RoI head. Faster R-CNN and ThunderNet are configs
of this one class."""
import torch

from det.models.roi_heads.standard_roi_head import proposals_to_rois
from det.registry import MODELS

from .base import BaseDetector, with_shapes


@MODELS.register_module()
class TwoStageDetector(BaseDetector):
    """A two-stage detector built from config dicts, with ``SingleStageDetector``'s mode contract.

    Channels and strides flow from the backbone to the neck, RPN and RoI head, so configs leave
    ``in_channels`` / ``strides`` out. With ``sam`` (ThunderNet's Spatial Attention Module) the RoI head
    reads ``SAM(feats[0], rpn_feats[0])`` (the neck's single map re-weighted by the RPN's shared-conv
    output) instead of the neck's maps, so the RoI loss also trains the RPN's conv.

    Ground truth is xyxy network-input pixels, checked by :meth:`BaseDetector.sanitise_gt`. Proposals
    carry no gradient.
    """

    def __init__(self, backbone: dict, rpn_head: dict, roi_head: dict, neck: dict = None, sam: dict = None,
                 data_preprocessor: dict = None, init_cfg=None):
        super().__init__(backbone, neck, data_preprocessor, init_cfg)
        channels, strides = self.feat_channels, self.feat_strides
        self.rpn_head = MODELS.build(with_shapes(rpn_head, channels, strides))
        self.sam = None
        if sam is not None:
            if len(self.rpn_head.in_index) != 1 or len(channels) != 1:
                raise ValueError('SAM re-weights one map with the RPN feature of that map: the neck must '
                                 f'give one level (it gives strides {strides}) and the RPN read it')
            self.sam = MODELS.build(dict(dict(rpn_channels=self.rpn_head.feat_channels,
                                              cem_channels=channels[0]), **sam))
            channels = list(self.sam.out_channels)
        self.roi_head = MODELS.build(with_shapes(roi_head, channels, strides))

    def _roi_feats(self, feats: tuple, rpn_feats: list) -> tuple:
        return (self.sam(feats[0], rpn_feats[0]),) if self.sam is not None else feats

    def loss_by_gt(self, inputs: torch.Tensor, data_samples: list) -> dict:
        """``loss_rpn_cls``, ``loss_rpn_bbox`` (RPN) and ``loss_cls``, ``loss_bbox`` (RoI head); the RoI
        head trains on the RPN's training proposals (``rpn_head.train_cfg``)."""
        gts = [s.gt_instances for s in data_samples]
        metas = [s.metainfo for s in data_samples]
        feats = self.extract_feat(inputs)
        cls_scores, bbox_preds, rpn_feats = self.rpn_head(feats)
        proposals = self.rpn_head.predict_by_feat(cls_scores, bbox_preds, metas, self.rpn_head.train_cfg)
        losses = self.rpn_head.loss_by_feat(cls_scores, bbox_preds, gts, metas)
        losses.update(self.roi_head.loss(self._roi_feats(feats, rpn_feats), proposals, gts))
        return losses

    def proposals_and_feats(self, inputs: torch.Tensor, batch_img_metas: list) -> tuple:
        """Test-time proposals (``rpn_head.test_cfg``), per image ``InstanceData(bboxes, scores)`` in
        input pixels, and the maps the RoI head reads."""
        feats = self.extract_feat(inputs)
        cls_scores, bbox_preds, rpn_feats = self.rpn_head(feats)
        proposals = self.rpn_head.predict_by_feat(cls_scores, bbox_preds, batch_img_metas)
        return proposals, self._roi_feats(feats, rpn_feats), (cls_scores, bbox_preds)

    def predict_in_input_pixels(self, inputs: torch.Tensor, data_samples: list) -> list:
        metas = [s.metainfo for s in data_samples]
        proposals, roi_feats, _ = self.proposals_and_feats(inputs, metas)
        return self.roi_head.predict(roi_feats, proposals, metas)

    def _forward(self, inputs: torch.Tensor, data_samples=None) -> tuple:
        """Raw outputs: ``(rpn_cls_scores, rpn_bbox_preds, cls_score [K, C + 1], bbox_pred [K, 4C],
        rois [K, 5])`` for the test-time proposals (images of the input's size without samples)."""
        shape = tuple(inputs.shape[-2:])
        metas = ([s.metainfo for s in data_samples] if data_samples is not None
                 else [dict(img_shape=shape)] * inputs.shape[0])
        proposals, roi_feats, (cls_scores, bbox_preds) = self.proposals_and_feats(inputs, metas)
        rois = proposals_to_rois([p.bboxes for p in proposals])
        cls_score, bbox_pred = self.roi_head(roi_feats, rois)
        return tuple(cls_scores), tuple(bbox_preds), cls_score, bbox_pred, rois
