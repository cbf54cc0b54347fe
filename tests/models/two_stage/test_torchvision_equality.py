"""det's Faster R-CNN config against torchvision's ``fasterrcnn_mobilenet_v3_large_320_fpn``: the same
random weights (torchvision's state dict converted into det's model) give the same proposals and
detections in eval mode and the same RPN and RoI losses in training, with both samplers drawing from
torch's generator seeded identically.

torchvision's model is run part by part (backbone -> rpn -> roi_heads on an ``ImageList``), which is its
``forward`` without ``GeneralizedRCNNTransform``: det normalises in its data preprocessor, so both get
the same already-normalised 320x320 batch (no resize, no padding, identity box rescaling)."""
from collections import OrderedDict, defaultdict
from itertools import accumulate
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from scipy.optimize import linear_sum_assignment
from torch import nn
from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_320_fpn
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.rpn import concat_box_prediction_layers
from torchvision.ops import batched_nms, clip_boxes_to_image, remove_small_boxes

import det.models  # noqa: F401  (registers the modules)
from det.registry import MODELS
from tests.conftest import make_sample
from tests.decision_margins import cut_margin, min_side_margin, nms_margins, threshold_margin

CONFIG = Path(__file__).resolve().parents[3] / 'configs/faster_rcnn_mobilenetv3_fpn_320_shapes.py'
NUM_CLASSES = 5
SIZE = 320

pytestmark = pytest.mark.reference
# How far torchvision's decisions must be from flipping for det's to be the same on any CPU. det and
# torchvision run the same modules on the same tensors up to the RoI head, where det's class rows are
# permuted, its box rows sliced and its softmax sums in another order: that head's float32 rounding
# error, against a float64 run of it on the same features, is 2.4e-6 in the scores (the RPN head's:
# 1.4e-6 in the logits) and 1.2e-5 in the IoUs of its boxes. Scores (logits for the RPN's top-k,
# probabilities elsewhere) must clear 1e-4, 40 times that and 5 times the 2.1e-5 by which the scores
# move when every kernel of the network changes (ATEN_CPU_CAPABILITY=default or ONEDNN_MAX_CPU_ISA=AVX2
# against an AMX Xeon's); IoUs 1e-4; box sides the min size by twice the 1e-3 px box tolerance.
MARGINS = dict(score=1e-4, iou=1e-4, px=2e-3)


def convert_faster_rcnn(tv_state: dict, num_classes: int) -> OrderedDict:
    """torchvision Faster R-CNN (MobileNetV3-FPN) keys -> det's TwoStageDetector keys.

    torchvision's class 0 is the background and ``box_predictor`` has 4 deltas for it; det puts the
    background last among the logits and has deltas for the C real classes only."""
    out = OrderedDict()
    for key, value in tv_state.items():
        if key.startswith('backbone.body.'):
            out['backbone.body.features.' + key[len('backbone.body.'):]] = value
        elif key.startswith('backbone.fpn.'):
            kind, level, _, param = key[len('backbone.fpn.'):].split('.')
            name = {'inner_blocks': 'lateral_convs', 'layer_blocks': 'output_convs'}[kind]
            out[f'neck.{name}.{level}.{param}'] = value
        elif key.startswith('rpn.head.'):
            part = key[len('rpn.head.'):]
            name = {'conv': 'rpn_conv', 'cls_logits': 'rpn_cls', 'bbox_pred': 'rpn_reg'}[part.split('.')[0]]
            out[f'rpn_head.{name}.{part.split(".")[-1]}'] = value
        elif key.startswith('roi_heads.box_head.'):
            layer, param = key[len('roi_heads.box_head.'):].split('.')
            out[f'roi_head.fcs.{ {"fc6": 0, "fc7": 1}[layer] }.{param}'] = value
        elif key.startswith('roi_heads.box_predictor.cls_score.'):
            order = list(range(1, num_classes + 1)) + [0]
            out['roi_head.fc_cls.' + key.split('.')[-1]] = value[order]
        elif key.startswith('roi_heads.box_predictor.bbox_pred.'):
            out['roi_head.fc_reg.' + key.split('.')[-1]] = value[4:]
        else:
            raise KeyError(f'unexpected torchvision key {key}')
    return out


def build_models():
    """torchvision's model with seeded random weights and det's model with the converted copy."""
    torch.manual_seed(0)
    tv = fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None,
                                               num_classes=NUM_CLASSES + 1)
    # BatchNorm: random affine parameters, and running statistics measured on four other random images
    # (a train-mode pass, cumulative average) so that eval mode normalises each layer's real activations.
    # Made-up statistics shrink the signal block by block until the two test images' features differ in
    # the last bits only, and every proposal and detection is then decided by rounding.
    norms = [m for m in tv.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        nn.init.uniform_(norm.weight, 0.5, 1.5)
        nn.init.uniform_(norm.bias, -0.1, 0.1)
        norm.reset_running_stats()
        norm.momentum = None
    tv.backbone.train()
    with torch.no_grad():
        tv.backbone(torch.randn(4, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2)))
    for norm in norms:
        norm.momentum = 0.1
    # Positive first-layer biases keep the box head's ReLUs from zeroing every RoI's feature, which
    # would give many RoIs the same (bias-only) scores and make the detection order a matter of ties.
    for fc in (tv.roi_heads.box_head.fc6, tv.roi_heads.box_head.fc7):
        nn.init.uniform_(fc.bias, 0.0, 0.1)
    # Spread scores and proposals apart (torchvision draws these layers with std 0.01, so many candidates
    # differ in the last bits only): objectness logits of std ~0.6 and RoI class logits of std ~5, whose
    # softmax scores cover (0, 1). Their own generators, seeded so that every decision clears MARGINS
    # (test_decisions_are_far_from_their_boundaries); most seeds leave one near tie somewhere.
    rpn_generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for conv in (tv.rpn.head.cls_logits, tv.rpn.head.bbox_pred):
            conv.weight.copy_(0.1 * torch.randn(conv.weight.shape, generator=rpn_generator))
        cls_score = tv.roi_heads.box_predictor.cls_score.weight
        cls_score.copy_(torch.randn(cls_score.shape, generator=torch.Generator().manual_seed(3)))
    cfg = Config.fromfile(str(CONFIG))
    with DefaultScope.overwrite_default_scope('det'):
        ours = MODELS.build(cfg.model)
    # torchvision's detector builds its backbone with plain nn.BatchNorm2d (eps 1e-5, momentum 0.1)
    # when not pretrained; so does the config (norm_layer='BatchNorm2d'), not mobilenet_v3_large's own.
    norms = [(m.eps, m.momentum) for m in ours.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and set(norms) == {(1e-5, 0.1)}
    missing = ours.load_state_dict(convert_faster_rcnn(tv.state_dict(), NUM_CLASSES), strict=True)
    assert not missing.missing_keys and not missing.unexpected_keys
    return tv, ours


@pytest.fixture(scope='module')
def models():
    return build_models()


def torchvision_decision_margins(tv, image_list: ImageList, feats: OrderedDict) -> dict:
    """How far each of torchvision's test-time decisions is from flipping, on its own values (eval
    mode, no gradient): ``{(stage, kind): smallest margin over both images}`` with ``kind`` a key of
    ``MARGINS``. It follows ``RegionProposalNetwork.filter_proposals`` (top-k per level by logit, min
    size, score threshold, NMS per level, the post-NMS cut) and ``RoIHeads.postprocess_detections``
    (score threshold, min size, class-wise NMS, the cut at ``detections_per_img``)."""
    rpn, roi = tv.rpn, tv.roi_heads
    margins = defaultdict(list)
    features = list(feats.values())
    objectness, deltas = rpn.head(features)
    anchors = rpn.anchor_generator(image_list, features)
    counts = [level[0].numel() for level in objectness]
    objectness, deltas = concat_box_prediction_layers(objectness, deltas)
    num_images = len(image_list.image_sizes)
    boxes = rpn.box_coder.decode(deltas, anchors).view(num_images, -1, 4)
    for image_boxes, logits, shape in zip(boxes, objectness.view(num_images, -1), image_list.image_sizes):
        top, levels = [], []
        for level, (start, level_logits) in enumerate(zip(accumulate([0] + counts), logits.split(counts))):
            k = min(rpn.pre_nms_top_n(), len(level_logits))
            margins['rpn top-k', 'score'].append(cut_margin(level_logits, k))
            top.append(level_logits.topk(k).indices + start)
            levels.append(torch.full((k,), level))
        top, levels = torch.cat(top), torch.cat(levels)
        cand, scores = clip_boxes_to_image(image_boxes[top], shape), torch.sigmoid(logits[top])
        margins['rpn min size', 'px'].append(min_side_margin(cand, rpn.min_size))
        margins['rpn score threshold', 'score'].append(threshold_margin(scores, rpn.score_thresh))
        keep = remove_small_boxes(cand, rpn.min_size)
        keep = keep[scores[keep] >= rpn.score_thresh]
        cand, scores, levels = cand[keep], scores[keep], levels[keep]
        iou_margin, score_margin = nms_margins(cand, scores, levels, rpn.nms_thresh)
        margins['rpn nms', 'iou'].append(iou_margin)
        margins['rpn nms', 'score'].append(score_margin)
        kept = scores[batched_nms(cand, scores, levels, rpn.nms_thresh)]
        margins['rpn post-nms cut', 'score'].append(cut_margin(kept, rpn.post_nms_top_n()))
    proposals, _ = rpn(image_list, feats)
    class_logits, box_regression = roi.box_predictor(
        roi.box_head(roi.box_roi_pool(feats, proposals, image_list.image_sizes)))
    boxes = roi.box_coder.decode(box_regression, proposals).split([len(p) for p in proposals])
    scores = torch.softmax(class_logits, -1).split([len(p) for p in proposals])
    for image_boxes, image_scores, shape in zip(boxes, scores, image_list.image_sizes):
        cand = clip_boxes_to_image(image_boxes, shape)[:, 1:].reshape(-1, 4)
        cand_scores = image_scores[:, 1:].reshape(-1)
        labels = torch.arange(1, image_scores.shape[1]).repeat(len(image_scores))
        margins['roi score threshold', 'score'].append(threshold_margin(cand_scores, roi.score_thresh))
        keep = torch.where(cand_scores > roi.score_thresh)[0]
        cand, cand_scores, labels = cand[keep], cand_scores[keep], labels[keep]
        margins['roi min size', 'px'].append(min_side_margin(cand, 1e-2))  # torchvision's constant
        keep = remove_small_boxes(cand, 1e-2)
        cand, cand_scores, labels = cand[keep], cand_scores[keep], labels[keep]
        iou_margin, score_margin = nms_margins(cand, cand_scores, labels, roi.nms_thresh)
        margins['roi nms', 'iou'].append(iou_margin)
        margins['roi nms', 'score'].append(score_margin)
        kept = cand_scores[batched_nms(cand, cand_scores, labels, roi.nms_thresh)]
        margins['roi detections cut', 'score'].append(cut_margin(kept, roi.detections_per_img))
    return {key: min(values) for key, values in margins.items()}


def _batch():
    """Two normalised 320x320 random images with boxes; the second has none."""
    images = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    gts = [(torch.tensor([[20., 30., 120., 150.], [200., 40., 300., 100.], [60., 200., 110., 310.]]),
            torch.tensor([0, 3, 4])),
           (torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))]
    samples = []
    for bboxes, labels in gts:
        samples.append(make_sample(bboxes, labels, (SIZE, SIZE)))
    targets = [dict(boxes=b, labels=lab + 1) for b, lab in gts]  # torchvision: 0 is the background
    return images, samples, targets


def run_torchvision(tv, images: torch.Tensor, targets: list = None) -> tuple:
    """torchvision's ``forward`` without its transform: backbone -> rpn -> roi_heads on ``images`` as an
    ``ImageList`` of SIZE x SIZE images. Returns (proposals, RPN losses, detections, RoI losses); the
    losses only with ``targets`` in train mode."""
    image_list = ImageList(images, [(SIZE, SIZE)] * len(images))
    feats = tv.backbone(images)
    props, rpn_losses = tv.rpn(image_list, feats, targets)
    dets, roi_losses = tv.roi_heads(feats, props, image_list.image_sizes, targets)
    return props, rpn_losses, dets, roi_losses


def test_decisions_are_far_from_their_boundaries(models):
    """The comparison below is well-conditioned: no top-k, threshold, NMS or cut of torchvision's
    eval pipeline on the test batch is within ``MARGINS`` of flipping, so det (whose computations differ
    by rounding only) decides each one the same way on any CPU (issue 25). Exactly tied scores (RoIs
    RoIAlign pools alike) are ties on both sides, whose candidates come in the same (proposal, class)
    order."""
    tv, _ = models
    tv.eval()
    images = _batch()[0]
    with torch.no_grad():
        margins = torchvision_decision_margins(tv, ImageList(images, [(SIZE, SIZE)] * len(images)),
                                               tv.backbone(images))
    near = {key: value for key, value in margins.items() if value < MARGINS[key[1]]}
    assert not near, f'near ties (margin < {MARGINS}): {near}'


def test_eval_proposals_and_detections_match(models):
    tv, ours = models
    tv.eval()
    ours.eval()
    images, samples, _ = _batch()
    with torch.no_grad():
        tv_props, _, tv_dets, _ = run_torchvision(tv, images)
        props, _, _ = ours.proposals_and_feats(images, [s.metainfo for s in samples])
        dets = ours.predict_in_input_pixels(images, samples)
    for tv_p, p in zip(tv_props, props):
        assert len(p.bboxes) == len(tv_p) > 50
        torch.testing.assert_close(p.bboxes, tv_p, atol=1e-3, rtol=0)
    for tv_d, d in zip(tv_dets, dets):
        assert len(d.bboxes) == len(tv_d['boxes']) > 10
        # Scores equal to the last bits (det's background logit is last, torchvision's first, so the
        # softmax sums in another order) may swap places, so detections are paired by label and box
        # (scipy's assignment), then compared.
        cost = torch.cdist(d.bboxes, tv_d['boxes'], p=float('inf'))
        cost[(d.labels[:, None] + 1) != tv_d['labels'][None]] = 1e9
        rows, cols = linear_sum_assignment(cost.numpy())
        torch.testing.assert_close(d.bboxes[rows], tv_d['boxes'][cols], atol=1e-3, rtol=0)
        torch.testing.assert_close(d.scores[rows], tv_d['scores'][cols], atol=1e-5, rtol=0)
        assert torch.equal(d.labels[rows] + 1, tv_d['labels'][cols])
        torch.testing.assert_close(d.scores, tv_d['scores'], atol=1e-5, rtol=0)  # same ranking


def test_training_losses_match(models):
    tv, ours = models
    tv.train()
    ours.train()
    images, samples, targets = _batch()
    torch.manual_seed(123)  # the RPN's then the RoI head's samplers draw from it, in the same order
    _, rpn_losses, _, roi_losses = run_torchvision(tv, images, targets)
    torch.manual_seed(123)
    losses = ours.loss(images, samples)
    expected = dict(loss_rpn_cls=rpn_losses['loss_objectness'], loss_rpn_bbox=rpn_losses['loss_rpn_box_reg'],
                    loss_cls=roi_losses['loss_classifier'], loss_bbox=roi_losses['loss_box_reg'])
    assert set(losses) == set(expected)
    for key, value in expected.items():
        assert value > 0, key
        torch.testing.assert_close(losses[key], value, atol=1e-4, rtol=0, msg=key)
    # Gradients agree too (a last check that the same anchors and RoIs were sampled).
    sum(losses.values()).backward()
    sum(expected.values()).backward()
    torch.testing.assert_close(ours.rpn_head.rpn_reg.weight.grad, tv.rpn.head.bbox_pred.weight.grad,
                               atol=1e-5, rtol=1e-3)
    torch.testing.assert_close(ours.roi_head.fcs[0].weight.grad, tv.roi_heads.box_head.fc6.weight.grad,
                               atol=1e-5, rtol=1e-3)
