"""Faster R-CNN's TASK_UTILS: anchors against hand-computed ones and torchvision's AnchorGenerator, the
max-IoU assigner against torchvision's Matcher, the sampler's quotas, the delta coder against
torchvision's BoxCoder and its round trip."""
import math

import pytest
import torch
from torchvision.models.detection._utils import BoxCoder, Matcher
from torchvision.models.detection.anchor_utils import AnchorGenerator as TvAnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import box_iou

import det.models  # noqa: F401  (registers the modules)
from det.models.task_modules import (
    AnchorGenerator,
    AssignResult,
    DeltaXYWHBBoxCoder,
    MaxIoUAssigner,
    RandomSampler,
)
from det.registry import TASK_UTILS


def test_anchors_hand_computed():
    gen = AnchorGenerator(strides=[16], sizes=[32], ratios=[0.5, 1.0, 2.0])
    # ratio r = h / w: h = 32 * sqrt(r), w = 32 / sqrt(r); 0.5 -> 45.25 x 22.63 -> rounded half-sides
    # 22.63 -> 23 and 11.31 -> 11.
    base = torch.tensor([[-23., -11., 23., 11.], [-16., -16., 16., 16.], [-11., -23., 11., 23.]])
    assert torch.equal(gen.base_anchors[0], base)
    (anchors,) = gen.grid_anchors([(2, 3)])
    assert anchors.shape == (2 * 3 * 3, 4)
    # position (row y, column x) -> shift (16 x, 16 y); index (y * W + x) * A + a
    for y in range(2):
        for x in range(3):
            shift = torch.tensor([16. * x, 16. * y] * 2)
            assert torch.equal(anchors[(y * 3 + x) * 3:(y * 3 + x + 1) * 3], base + shift)


def test_anchors_equal_torchvision_on_several_levels():
    sizes, ratios = ((32, 64, 128, 256, 512),) * 3, ((0.5, 1.0, 2.0),) * 3
    images = ImageList(torch.zeros(1, 3, 320, 320), [(320, 320)])
    feats = [torch.zeros(1, 8, 10, 10), torch.zeros(1, 8, 10, 10), torch.zeros(1, 8, 5, 5)]
    (expected,) = TvAnchorGenerator(sizes, ratios)(images, feats)
    ours = AnchorGenerator(strides=[32, 32, 64], sizes=[list(s) for s in sizes], ratios=[0.5, 1.0, 2.0])
    assert ours.num_base_anchors == [15, 15, 15]
    assert torch.equal(torch.cat(ours.grid_anchors([(10, 10), (10, 10), (5, 5)])), expected)


def test_anchor_generator_rejects_bad_config():
    with pytest.raises(ValueError, match='levels'):
        AnchorGenerator(strides=[8, 16], sizes=[[32], [64], [128]], ratios=[1.0])
    with pytest.raises(ValueError, match='positive'):
        AnchorGenerator(strides=[8], sizes=[0], ratios=[1.0])


def _random_boxes(n, gen, size=200.0):
    xy = torch.rand(n, 2, generator=gen) * size
    wh = 4 + torch.rand(n, 2, generator=gen) * size / 2
    return torch.cat([xy, xy + wh], 1)


@pytest.mark.parametrize('pos, neg, low_quality', [(0.7, 0.3, True), (0.5, 0.5, False)])
def test_assigner_matches_torchvision_matcher(pos, neg, low_quality):
    gen = torch.Generator().manual_seed(0)
    priors, gts = _random_boxes(300, gen), _random_boxes(6, gen)
    labels = torch.tensor([3, 1, 4, 1, 0, 2])
    result = MaxIoUAssigner(pos, neg, match_low_quality=low_quality).assign(priors, gts, labels)
    matched = Matcher(pos, neg, allow_low_quality_matches=low_quality)(box_iou(gts, priors))
    # torchvision: k >= 0 matched, -1 below the low threshold, -2 between the thresholds
    expected = torch.where(matched >= 0, matched + 1, torch.where(matched == -1, 0, -1))
    assert torch.equal(result.gt_inds, expected)
    assert (result.gt_inds > 0).any() and (result.gt_inds == 0).any()
    assert torch.equal(result.labels[result.gt_inds > 0], labels[result.gt_inds[result.gt_inds > 0] - 1])
    assert (result.labels[result.gt_inds <= 0] == -1).all()


def test_assigner_low_quality_match_for_a_box_no_prior_covers_well():
    priors = torch.tensor([[0., 0., 100., 100.], [50., 50., 150., 150.]])
    gt = torch.tensor([[0., 0., 30., 30.]])  # IoU 0.09 with the first prior, 0 with the second
    strict = MaxIoUAssigner(0.7, 0.3, match_low_quality=False).assign(priors, gt, torch.tensor([2]))
    loose = MaxIoUAssigner(0.7, 0.3, match_low_quality=True).assign(priors, gt, torch.tensor([2]))
    assert strict.gt_inds.tolist() == [0, 0]
    assert loose.gt_inds.tolist() == [1, 0] and loose.labels.tolist() == [2, -1]
    far = torch.tensor([[500., 500., 510., 510.]])  # overlaps nothing: no low-quality match
    assert MaxIoUAssigner(0.7, 0.3).assign(priors, far, torch.tensor([0])).gt_inds.tolist() == [0, 0]


def test_assigner_empty_ground_truth():
    priors = _random_boxes(10, torch.Generator().manual_seed(1))
    result = MaxIoUAssigner(0.7, 0.3).assign(priors, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    assert result.gt_inds.tolist() == [0] * 10 and result.labels.tolist() == [-1] * 10
    assert result.max_overlaps.tolist() == [0.0] * 10


def test_sampler_quota_when_positives_exceed_it():
    gt_inds = torch.tensor([1] * 10 + [0] * 10 + [-1] * 5)
    result = RandomSampler(num=8, pos_fraction=0.5).sample(AssignResult(gt_inds, None, None))
    assert len(result.pos_inds) == 4 and len(result.neg_inds) == 4
    assert (gt_inds[result.pos_inds] == 1).all() and (gt_inds[result.neg_inds] == 0).all()
    assert len(set(result.pos_inds.tolist())) == 4 and result.mask.sum() == 8


def test_sampler_fills_with_negatives_and_handles_empty():
    gt_inds = torch.tensor([2, 0, 0, 0, 0, -1])
    result = RandomSampler(num=4, pos_fraction=0.5).sample(AssignResult(gt_inds, None, None))
    assert result.pos_inds.tolist() == [0] and len(result.neg_inds) == 3
    only_neg = RandomSampler(num=4, pos_fraction=0.5).sample(AssignResult(torch.zeros(3, dtype=torch.long),
                                                                          None, None))
    assert len(only_neg.pos_inds) == 0 and sorted(only_neg.neg_inds.tolist()) == [0, 1, 2]
    with pytest.raises(ValueError):
        RandomSampler(num=0, pos_fraction=0.5)


@pytest.mark.parametrize('weights', [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)])
def test_coder_matches_torchvision_and_round_trips(weights):
    gen = torch.Generator().manual_seed(2)
    refs, gts = _random_boxes(50, gen), _random_boxes(50, gen)
    coder = TASK_UTILS.build(dict(type='DeltaXYWHBBoxCoder', weights=weights))
    tv = BoxCoder(weights)
    deltas = coder.encode(gts, refs)
    torch.testing.assert_close(deltas, tv.encode_single(gts, refs))
    torch.testing.assert_close(coder.decode(deltas, refs), gts, atol=1e-3, rtol=0)
    torch.testing.assert_close(coder.decode(deltas, refs), tv.decode_single(deltas, refs))


def test_coder_clamps_log_sizes():
    coder = DeltaXYWHBBoxCoder()
    ref = torch.tensor([[0., 0., 10., 10.]])
    box = coder.decode(torch.tensor([[0., 0., 50., 50.]]), ref)
    side = 10 * math.exp(math.log(1000 / 16))  # dw, dh clamped at log(1000/16)
    torch.testing.assert_close(box, torch.tensor([[5 - side / 2, 5 - side / 2, 5 + side / 2, 5 + side / 2]]))
    # class-specific deltas [K, C, 4] broadcast against proposals [K, 1, 4]
    proposals = torch.tensor([[0., 0., 10., 20.]] * 3)[:, None]
    assert coder.decode(torch.zeros(3, 5, 4), proposals).shape == (3, 5, 4)
