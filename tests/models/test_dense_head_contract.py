"""The contract every dense head keeps: the same base, the same ``test_cfg`` keys and ``in_index``
default, boxes out of the head in network-input pixels, and one post-processing path (tested in
test_selection.py)."""
import pytest

import det.models  # noqa: F401  (registers the modules)
from det.models.heads import BaseDenseHead
from det.models.utils.selection import TEST_CFG_KEYS
from det.registry import MODELS

HEADS = {'YOLOV1Head': dict(feat_channels=8, num_convs=1), 'CenterNetHead': dict(feat_channels=8),
         'TTFNetHead': dict(feat_channels=8)}


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
