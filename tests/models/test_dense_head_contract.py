"""The contract every dense head keeps: the same base, the same ``test_cfg`` keys and ``in_index``
default, boxes out of the head in network-input pixels, and one post-processing path checked against
torchvision's NMS."""
import pytest
import torch
from torchvision.ops import batched_nms

import det.models  # noqa: F401  (registers the modules)
from det.models.heads import BaseDenseHead
from det.models.heads.base_dense_head import TEST_CFG_KEYS
from det.registry import MODELS

HEADS = {'YOLOV1Head': dict(feat_channels=8, num_convs=1), 'CenterNetHead': dict(feat_channels=8)}


def _build(name, **kwargs):
    return MODELS.build(dict(type=name, num_classes=3, in_channels=[8, 16], strides=[4, 8],
                             **HEADS[name], **kwargs))


@pytest.mark.parametrize('name', sorted(HEADS))
def test_heads_share_base_keys_and_in_index_default(name):
    head = _build(name)
    assert isinstance(head, BaseDenseHead)
    assert head.in_index == 0 and head.stride == 4 and head.in_channels == 8
    assert set(head.test_cfg) == set(TEST_CFG_KEYS)
    assert _build(name, in_index=-1).stride == 8
    with pytest.raises(KeyError, match='iou_thr'):  # the old per-head argument names are not accepted
        _build(name, test_cfg=dict(iou_thr=0.5))
    with pytest.raises(ValueError, match='nms'):
        _build(name, test_cfg=dict(nms=dict(iou_threshold=0.5)))
    with pytest.raises(IndexError, match='in_index'):
        _build(name, in_index=2)


@pytest.mark.parametrize('nms', [None, dict(iou_thr=0.5)])
def test_select_detections_against_torchvision(nms):
    """topk -> score_thr -> class-wise NMS -> max_per_img, computed independently with torchvision."""
    torch.manual_seed(0)
    cfg = dict(score_thr=0.3, nms=nms, max_per_img=7, topk=40)
    head = _build('CenterNetHead', test_cfg=cfg)
    xy = torch.rand(50, 2) * 60
    boxes = torch.cat([xy, xy + 5 + torch.rand(50, 2) * 20], dim=1)
    scores = torch.rand(50, 3)
    out = head.select_detections(boxes, scores)

    pairs = [(scores[p, c].item(), p, c) for p in range(50) for c in range(3)]
    pairs = sorted(pairs, reverse=True)[:cfg['topk']]
    pairs = [t for t in pairs if t[0] > cfg['score_thr']]
    ref_boxes = torch.stack([boxes[p] for _, p, _ in pairs])
    ref_scores = torch.tensor([s for s, _, _ in pairs])
    ref_labels = torch.tensor([c for _, _, c in pairs])
    keep = torch.arange(len(pairs)) if nms is None else batched_nms(ref_boxes, ref_scores, ref_labels, 0.5)
    keep = keep[:cfg['max_per_img']]
    assert torch.equal(out.bboxes, ref_boxes[keep])
    assert torch.allclose(out.scores, ref_scores[keep])
    assert torch.equal(out.labels, ref_labels[keep])
