"""Two-stage query selection (``query_type='encoder'``): token anchors against hand-computed centres, the
selected queries against a brute-force ranking of the token scores, padding never selected, the
encoder proposals' set loss reaching the backbone, and clear errors."""
import pytest
import torch
from mmengine.structures import InstanceData
from torch.utils._python_dispatch import TorchDispatchMode

from det.registry import MODELS
from tests.conftest import make_sample

SIZE = 64


class NoFloat64(TorchDispatchMode):
    """Fails any operator that returns a float64 tensor."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for value in out if isinstance(out, (tuple, list)) else (out,):
            assert not (isinstance(value, torch.Tensor) and value.dtype == torch.float64), str(func)
        return out


def _model(num_queries=6, proposal_size=0.1):
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='DETR', backbone=dict(type='MobileNetV2', widen_factor=0.35, out_indices=(3,)),
        num_queries=num_queries, embed_dims=32, query_type='encoder', proposal_size=proposal_size,
        encoder=dict(num_layers=1, num_heads=4, ffn_dims=64, dropout=0.0),
        decoder=dict(num_layers=2, num_heads=4, ffn_dims=64, dropout=0.0),
        head=dict(type='DETRHead', num_classes=3)))
    model.init_weights()
    return model


def _batch(model, boxes_per_image=((4, 8, 30, 40),), shapes=((SIZE, SIZE), (SIZE, SIZE))):
    inputs, samples = [], []
    for h, w in shapes:
        inputs.append(torch.randint(0, 255, (3, h, w), dtype=torch.uint8))
        samples.append(make_sample(boxes_per_image, [0] * len(boxes_per_image), (h, w)))
    return model.data_preprocessor(dict(inputs=inputs, data_samples=samples), training=True)


def test_token_anchors_centre_on_tokens_of_the_unpadded_region():
    model = _model()
    mask = torch.zeros(2, 2, 3, dtype=torch.bool)
    mask[1, :, 2:] = True                                     # image 1: only 2 valid columns
    anchors = model.queries.token_anchors(mask).view(2, 2, 3, 4)
    for b, valid_w in ((0, 3), (1, 2)):
        for i in range(2):
            for j in range(3):
                expected = [(j + 0.5) / valid_w, (i + 0.5) / 2, 0.1, 0.1]
                torch.testing.assert_close(anchors[b, i, j], torch.tensor(expected))


@pytest.mark.reference
def test_selected_queries_are_the_best_unpadded_tokens():
    model = _model(num_queries=5).eval()
    memory = torch.randn(2, 12, 32)
    mask = torch.zeros(2, 3, 4, dtype=torch.bool)
    mask[1, 2:, :] = True                                     # image 1: last row padded
    with torch.no_grad():
        content, _, reference, (logits, boxes, valid) = model.queries(memory, mask, model.head)
        tokens = model.queries.project(memory, mask.flatten(1))
    assert torch.equal(valid, ~mask.flatten(1))
    for b in range(2):
        scores = logits[b].softmax(-1)[:, :-1].max(-1).values.tolist()
        ranked = sorted((i for i in range(12) if not mask.flatten(1)[b, i]), key=lambda i: -scores[i])[:5]
        selected = [int((tokens[b] == row).all(-1).nonzero()) for row in content[b]]
        assert sorted(selected) == sorted(ranked)
        torch.testing.assert_close(reference[b], boxes[b, selected])
        assert not any(mask.flatten(1)[b, i] for i in selected)


def test_encoder_proposals_are_trained_and_queries_carry_no_gradient():
    model = _model().train()
    data = _batch(model)
    _, references, _, proposals, _ = model.forward_transformer(data['inputs'], data['data_samples'])
    assert proposals.cls_logits.shape == (2, 16, 4) and proposals.boxes.shape == (2, 16, 4)  # 4x4, C + 1
    assert not references.requires_grad
    losses = model.loss(data['inputs'], data['data_samples'])
    assert {'enc.loss_cls', 'enc.loss_bbox', 'enc.loss_iou'} <= set(losses)
    model.zero_grad()
    (losses['enc.loss_bbox'] + losses['enc.loss_iou']).backward()
    first = next(model.backbone.parameters())                        # the stem's conv
    assert first.grad is not None and first.grad.abs().sum() > 0     # the proposal loss reaches it
    assert model.decoder.layers[0].self_attn.v_proj.weight.requires_grad  # queries carry content here


def test_no_boxes_gives_class_loss_only():
    model = _model().train()
    data = _batch(model, boxes_per_image=())
    losses = model.loss(data['inputs'], data['data_samples'])
    assert losses['enc.loss_cls'] > 0
    assert losses['enc.loss_bbox'] == 0 and losses['enc.loss_iou'] == 0


def test_fewer_tokens_than_queries_and_bad_size_are_errors():
    model = _model(num_queries=50).eval()                     # 64x64 at stride 16: 16 tokens
    data = _batch(model)
    with pytest.raises(ValueError, match='fewer than the 50 queries'):
        model(data['inputs'], data['data_samples'], mode='predict')
    with pytest.raises(ValueError, match='proposal_size'):
        _model(proposal_size=1.5)


def test_tied_scores_select_the_lowest_token_indices_without_float64():
    """Random init often ties: the Q selected tokens are then the first Q, and no step computes in
    float64 (the old tie-break did, which backends such as MPS lack)."""
    model = _model(num_queries=5).eval()
    torch.nn.init.zeros_(model.head.enc_cls_branch.weight)          # every token scores the same
    memory = torch.randn(1, 12, 32)
    mask = torch.zeros(1, 3, 4, dtype=torch.bool)
    with torch.no_grad(), NoFloat64():
        content = model.queries(memory, mask, model.head).content
        tokens = model.queries.project(memory, mask.flatten(1))
    torch.testing.assert_close(content[0], tokens[0, :5])


def test_padded_tokens_are_neither_matched_nor_scored_by_the_proposal_loss():
    """The proposal loss of a padded batch equals the same loss computed on the valid tokens only."""
    from det.models.detr import Proposals
    model = _model()
    head = model.head
    torch.manual_seed(1)
    logits, boxes = torch.randn(1, 12, 4), torch.rand(1, 12, 4) * 0.5 + 0.25
    valid = torch.ones(1, 12, dtype=torch.bool)
    valid[0, 8:] = False                                      # last 4 tokens are padding
    logits[0, 8:, :3] = 20.0                                  # padding that would be a strong match
    gt = [InstanceData(bboxes=torch.tensor([[8.0, 8.0, 40.0, 40.0]]), labels=torch.tensor([1]))]
    metas = [dict(img_shape=(SIZE, SIZE))]
    hidden = torch.zeros(1, 1, 2, 4), torch.full((1, 1, 2, 4), 0.5)   # two decoder queries, one layer
    padded = head.loss_by_feat(*hidden, gt, metas, proposals=Proposals(logits, boxes, valid))
    cut = head.loss_by_feat(*hidden, gt, metas,
                            proposals=Proposals(logits[:, :8], boxes[:, :8], valid[:, :8]))
    for name in ('enc.loss_cls', 'enc.loss_bbox', 'enc.loss_iou'):
        torch.testing.assert_close(padded[name], cut[name])
    scored_padding = head.loss_by_feat(*hidden, gt, metas,
                                       proposals=Proposals(logits, boxes, torch.ones_like(valid)))
    assert scored_padding['enc.loss_cls'] != padded['enc.loss_cls']


def test_selection_equals_a_stable_ranking_with_many_ties():
    """``select`` against Python's stable sort by descending score (ties: lower index first)."""
    model = _model(num_queries=7)
    scores = torch.randint(0, 4, (6, 20)).float() / 4                       # 4 values over 20 tokens
    with NoFloat64():
        selected = model.queries.select(scores)
    for row, picked in zip(scores.tolist(), selected.tolist()):
        expected = sorted(sorted(range(20), key=lambda i: -row[i])[:7])
        assert picked == expected
