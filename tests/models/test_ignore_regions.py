"""Ignored boxes (COCO iscrowd, VOC difficult) as ignore regions in the training targets of YOLO v1 and
CenterNet: whatever the network predicts inside one costs nothing (the loss is exactly unchanged when
those predictions change), while without the ignore the same change does cost. The region is checked
against a hand-computed list of cells."""
import numpy as np
import pytest
import torch
from torch import nn

import det.models  # noqa: F401  (registers the modules)
from det.datasets.transforms import PackDetInputs
from det.models.task_modules import ignore_mask
from det.registry import MODELS
from tests.conftest import make_sample

GT = [[4.0, 6.0, 22.0, 20.0]]            # top-left object
IGNORED = [[36.0, 30.0, 60.0, 58.0]]     # crowd region in the bottom-right, away from the object


def sample(gt, ignored, img_shape=(64, 64)):
    """A packed sample, as PackDetInputs builds it from a results dict with ``gt_ignore_flags``."""
    boxes = np.array(gt + ignored, np.float32).reshape(-1, 4)
    results = dict(img=np.zeros((*img_shape, 3), np.uint8), gt_bboxes=boxes,
                   gt_bboxes_labels=np.zeros(len(boxes), np.int64),
                   gt_ignore_flags=np.array([False] * len(gt) + [True] * len(ignored)),
                   img_shape=img_shape, ori_shape=img_shape)
    return PackDetInputs()(results)['data_samples']


def test_ignore_mask_cells_by_hand():
    # stride 4: pixel centres (x + 0.5) * 4 inside [36, 60] -> x = 9..14 (38..58); inside [30, 58],
    # borders included -> y = 7..14 (30..58).
    mask = ignore_mask(torch.tensor(IGNORED), (16, 16), 4)
    expected = np.zeros((16, 16), bool)
    expected[7:15, 9:15] = True
    np.testing.assert_array_equal(mask.numpy(), expected)
    # A box smaller than a pixel still marks the pixel holding its centre.
    tiny = ignore_mask(torch.tensor([[17.2, 9.1, 18.0, 10.0]]), (16, 16), 4)
    assert tiny.nonzero().tolist() == [[2, 4]]
    assert not ignore_mask(None, (4, 4), 8).any() and not ignore_mask(torch.zeros(0, 4), (4, 4), 8).any()


@pytest.mark.parametrize('head_type', ['CenterNetHead', 'TTFNetHead'])
def test_centernet_heatmap_inside_ignored_region_carries_no_loss(head_type):
    torch.manual_seed(0)
    head = MODELS.build(dict(type=head_type, num_classes=2, in_channels=[8], strides=[4], feat_channels=8))
    heatmap, wh, offset = head((torch.randn(1, 8, 16, 16),))
    region = ignore_mask(torch.tensor(IGNORED), (16, 16), 4)
    changed = heatmap.detach().clone()
    changed[:, :, region] = torch.randn(2, int(region.sum())) * 5     # arbitrary logits inside the region

    def losses(heat, with_ignore):
        s = sample(GT, IGNORED if with_ignore else [])
        ign = [s.ignored_instances] if with_ignore else None
        out = head.loss_by_feat(heat, wh, offset, [s.gt_instances], [s.metainfo], ign)
        return {k: v.item() for k, v in out.items()}

    with_ign, with_ign_changed = losses(heatmap, True), losses(changed, True)
    assert with_ign == with_ign_changed                                # exactly, term by term
    assert losses(heatmap, False)['loss_heatmap'] != losses(changed, False)['loss_heatmap']
    assert with_ign['loss_heatmap'] < losses(heatmap, False)['loss_heatmap']
    # The sample path (head.loss reads ignored_instances) gives the same numbers.
    feats = (torch.randn(1, 8, 16, 16),)
    s = sample(GT, IGNORED)
    by_samples = head.loss(feats, [s])
    raw = head(feats)
    direct = head.loss_by_feat(*raw, [s.gt_instances], [s.metainfo], [s.ignored_instances])
    assert {k: v.item() for k, v in by_samples.items()} == {k: v.item() for k, v in direct.items()}


def test_centernet_object_inside_ignored_region_still_trained():
    """A real object inside a crowd box keeps its positive (peak) term: the heatmap loss changes when
    its centre logit changes."""
    head = MODELS.build(dict(type='CenterNetHead', num_classes=1, in_channels=[8], strides=[4],
                             feat_channels=8))
    heatmap, wh, offset = head((torch.randn(1, 8, 16, 16),))
    s = sample([[40.0, 36.0, 52.0, 48.0]], IGNORED)                   # centre (46, 42) -> pixel (11, 10)
    base = head.loss_by_feat(heatmap, wh, offset, [s.gt_instances], [{}], [s.ignored_instances])
    changed = heatmap.detach().clone()
    changed[0, 0, 10, 11] += 3.0
    after = head.loss_by_feat(changed, wh, offset, [s.gt_instances], [{}], [s.ignored_instances])
    assert after['loss_heatmap'].item() < base['loss_heatmap'].item()


def _raw_yolo(**kwargs):
    """YOLO v1 head whose forward passes its input through (hand-built raw predictions)."""
    head = MODELS.build(dict(type='YOLOV1Head', num_classes=2, num_boxes=2, num_convs=0, in_channels=[12],
                             strides=[16], **kwargs))
    head.out = nn.Identity()
    return head


@pytest.mark.parametrize('giou', [False, True], ids=['mse', 'giou'])
def test_yolov1_no_object_loss_skips_cells_in_ignored_region(giou):
    """Grid 4x4 at stride 16: cell centres (8 + 16k) inside [36, 60] x [30, 58] -> columns 2, 3 and
    rows 2, 3. Changing every raw output of those cells (confidence, box, class) leaves the loss
    exactly unchanged; without the ignore the no-object term changes."""
    torch.manual_seed(0)
    head = _raw_yolo(**(dict(loss_bbox=dict(type='GIoULoss', loss_weight=5.0)) if giou else {}))
    raw = torch.randn(1, 12, 4, 4)
    changed = raw.clone()
    changed[:, :, 2:4, 2:4] = torch.randn(1, 12, 2, 2) * 5
    cells = head.assigner.assign(torch.zeros(32, 4), torch.zeros(0, 4), torch.zeros(0, dtype=torch.long),
                                 (4, 4), 16, 2, ignored_bboxes=torch.tensor(IGNORED)).ignored
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[2:4, 2:4] = True
    assert torch.equal(cells, expected.flatten().repeat_interleave(2))

    def losses(r, ignored):
        return {k: v.item() for k, v in head.loss((r,), [sample(GT, ignored)]).items()}

    assert losses(raw, IGNORED) == losses(changed, IGNORED)
    assert losses(raw, [])['loss_noobj'] != losses(changed, [])['loss_noobj']
    assert losses(raw, IGNORED)['loss_noobj'] < losses(raw, [])['loss_noobj']


def test_samples_without_ignored_instances_field():
    """Samples built by hand (no ``ignored_instances``) train as before."""
    head = _raw_yolo()
    losses = head.loss((torch.randn(1, 12, 4, 4),), [make_sample(GT, [1])])
    assert all(torch.isfinite(v) for v in losses.values())
