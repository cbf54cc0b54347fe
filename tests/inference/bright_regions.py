"""A flip-symmetric test double: a detector whose boxes are the connected regions of its input brighter
than mid-grey, in network-input pixels (score 1, label 0). Mirroring the image mirrors its boxes exactly,
up to the resize's rounding at the edges (one input pixel)."""
import numpy as np
import torch
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from scipy import ndimage

from det.models.heads import BaseDenseHead
from det.registry import MODELS


@MODELS.register_module(force=True)
class PassThroughBackbone(BaseModule):
    """The normalised input as the only feature map (stride 1, 3 channels)."""

    out_channels, strides = [3], [1]

    def forward(self, x):
        return (x,)


@MODELS.register_module(force=True)
class BrightRegionHead(BaseDenseHead):
    """Connected regions brighter than mid-grey as boxes in network-input pixels, score 1, label 0."""

    def forward(self, feats):
        return (feats[self.in_index].mean(dim=1),)

    def loss_by_feat(self, grey, batch_gt_instances, batch_img_metas):
        return {'loss_none': grey.sum() * 0}

    def predict_by_feat(self, grey, batch_img_metas):
        results = []
        for img in grey.cpu().numpy():
            regions, _ = ndimage.label(img > 127.5)
            boxes = [[s[1].start, s[0].start, s[1].stop, s[0].stop] for s in ndimage.find_objects(regions)]
            boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
            results.append(InstanceData(bboxes=boxes, scores=torch.ones(len(boxes)),
                                        labels=torch.zeros(len(boxes), dtype=torch.long)))
        return results


def bright_region_detector():
    """The double as a SingleStageDetector in eval mode (no normalisation, so the threshold is 127.5)."""
    model = MODELS.build(dict(
        type='SingleStageDetector', backbone=dict(type='PassThroughBackbone'),
        data_preprocessor=dict(type='DetDataPreprocessor', mean=(0, 0, 0), std=(1, 1, 1), bgr_to_rgb=False),
        head=dict(type='BrightRegionHead', num_classes=1)))
    return model.eval()


def assert_boxes_close(found, expected, tol):
    """Same number of boxes, and each expected box has a found one within ``tol`` pixels."""
    found, expected = np.asarray(found, np.float64).reshape(-1, 4), np.asarray(expected, np.float64)
    assert len(found) == len(expected), (found, expected)
    for box in expected:
        assert np.abs(found - box).max(axis=1).min() <= tol, (box, found)
