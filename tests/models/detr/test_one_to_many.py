"""H-DETR's one-to-many branch (``one_to_many=dict(num_queries=M, repeats=K)``): the extra queries are
the next-best encoder tokens after the Q one-to-one ones; the attention mask keeps the groups apart
(checked through the decoder: perturbing one group leaves the others' outputs unchanged); every ground
truth gets K one-to-many matches (counted from the matcher's answers) and the box loss is normalised by
K x the box count (recomputed from those matches); the one-to-one, denoising and encoder losses and the
inference outputs equal those of the same weights without the switch; every parameter is trained; an
image without boxes works; bad configs are clear errors."""
import pytest
import torch

from det.models.detr import OneToMany, hybrid_attention_mask
from det.models.heads.detr_head import normalised_cxcywh
from det.registry import MODELS
from tests.conftest import make_sample

SIZE, Q, M, K = 64, 5, 6, 2                 # 64 px at stride 16: 16 encoder tokens >= Q + M
BOXES = ((4, 8, 30, 40), (30, 30, 60, 62))
O2M, DN = dict(num_queries=M, repeats=K), dict(num_groups=2)


def _model(one_to_many=O2M, query_type='encoder', denoising=DN):
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='DETR', backbone=dict(type='MobileNetV2', widen_factor=0.35, out_indices=(3,)),
        num_queries=Q, embed_dims=32, query_type=query_type, denoising=denoising, one_to_many=one_to_many,
        encoder=dict(num_layers=1, num_heads=4, ffn_dims=64, dropout=0.0),
        decoder=dict(num_layers=2, num_heads=4, ffn_dims=64, dropout=0.0),
        head=dict(type='DETRHead', num_classes=3)))
    model.init_weights()
    return model


def _pair(**kwargs):
    """The same weights with and without the one-to-many branch (it adds no parameter)."""
    with_o2m, without = _model(**kwargs), _model(one_to_many=None, **kwargs)
    without.load_state_dict(with_o2m.state_dict())
    return with_o2m, without


def _batch(model, boxes=(BOXES, BOXES[:1])):
    torch.manual_seed(1)
    inputs = [torch.randint(0, 255, (3, SIZE, SIZE), dtype=torch.uint8) for _ in boxes]
    samples = [make_sample(b, [i % 3 for i in range(len(b))], (SIZE, SIZE)) for b in boxes]
    return model.data_preprocessor(dict(inputs=inputs, data_samples=samples), training=True)


def _decoder_input(model, data):
    x = model.pre_transformer(model.extract_feat(data['inputs']), data['inputs'], data['data_samples'])
    memory = model.forward_encoder(x)
    return model.pre_decoder(memory, x, data['data_samples'], train_queries=True), memory, x


@pytest.mark.reference
def test_extra_queries_are_the_next_best_tokens_and_the_first_q_unchanged():
    model = _model().eval()
    memory, mask = torch.randn(2, 16, 32), torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[1, 3:, :] = True                                    # image 1: last row padded (12 valid tokens)
    with torch.no_grad():
        plain = model.queries(memory, mask, model.head)
        both = model.queries(memory, mask, model.head, M)
        tokens = model.queries.project(memory, mask.flatten(1))
    assert both.content.shape == (2, Q + M, 32) and both.reference.shape == (2, Q + M, 4)
    torch.testing.assert_close(both.content[:, :Q], plain.content, rtol=0, atol=0)
    for b in range(2):
        scores = model.head.class_scores(plain.proposals.cls_logits[b]).amax(-1)
        scores = scores.masked_fill(mask.flatten(1)[b], -1.0).tolist()
        ranked = sorted(range(16), key=lambda i: (-scores[i], i))
        selected = [int((tokens[b] == row).all(-1).nonzero()[0]) for row in both.content[b]]
        assert sorted(selected[:Q]) == sorted(ranked[:Q])
        assert sorted(selected[Q:]) == sorted(ranked[Q:Q + M])


def test_mask_keeps_the_groups_apart_through_the_decoder():
    model = _model().train()
    queries, memory, x = _decoder_input(model, _batch(model))
    num_dn = queries.denoising.labels.shape[1]
    total = num_dn + Q + M
    assert queries.content.shape[1] == total and queries.attn_mask.shape == (2, total, total)
    # The first P + Q rows / columns are the denoising mask as it was (DenoisingQueries.attention_mask).
    assert torch.equal(queries.attn_mask[:, :num_dn + Q, :num_dn + Q], queries.denoising.attn_mask)
    with torch.no_grad():
        hidden, _ = model.forward_decoder(queries, memory, x)
        perturbed = queries.content.clone()
        perturbed[:, num_dn + Q:] += torch.randn_like(perturbed[:, num_dn + Q:])
        hidden_o2m, _ = model.forward_decoder(queries._replace(content=perturbed), memory, x)
        perturbed = queries.content.clone()
        perturbed[:, num_dn:num_dn + Q] += torch.randn_like(perturbed[:, num_dn:num_dn + Q])
        hidden_o2o, _ = model.forward_decoder(queries._replace(content=perturbed), memory, x)
    # One-to-many content changes neither the denoising nor the one-to-one outputs, only its own.
    torch.testing.assert_close(hidden_o2m[:, :, :num_dn + Q], hidden[:, :, :num_dn + Q])
    assert not torch.allclose(hidden_o2m[:, :, num_dn + Q:], hidden[:, :, num_dn + Q:])
    # One-to-one content changes its own outputs but not the one-to-many ones.
    torch.testing.assert_close(hidden_o2o[:, :, num_dn + Q:], hidden[:, :, num_dn + Q:])
    assert not torch.allclose(hidden_o2o[:, :, num_dn:num_dn + Q], hidden[:, :, num_dn:num_dn + Q])


def test_mask_without_denoising_is_two_blocks():
    mask = hybrid_attention_mask(None, 2, 3, 4, 'cpu')
    expected = torch.block_diag(torch.ones(3, 3), torch.ones(4, 4)).bool()
    assert torch.equal(mask, expected.expand(2, -1, -1))


def _spy_matches(head, monkeypatch):
    """Records every ``(gt_labels, matches)`` of the head's matcher calls."""
    calls, match = [], head._match

    def spy(cls_logits, boxes, gt_labels, gt_boxes, valid):
        out = match(cls_logits, boxes, gt_labels, gt_boxes, valid)
        calls.append((cls_logits.shape[1], [len(g) for g in gt_labels], out, boxes, gt_boxes))
        return out
    monkeypatch.setattr(head, '_match', spy)
    return calls


@pytest.mark.parametrize('repeats, num_gts', [(2, 2), (3, 4)])      # K x G <= M, and K x G = 12 > M = 6
def test_each_ground_truth_gets_k_one_to_many_matches(repeats, num_gts, monkeypatch):
    torch.manual_seed(0)
    head = MODELS.build(dict(type='DETRHead', num_classes=3, embed_dims=16))
    o2m = OneToMany(num_queries=M, repeats=repeats, loss_weight=0.5)
    layers, batch = 2, 2
    cls_logits, boxes = torch.randn(layers, batch, Q + M, 4), torch.rand(layers, batch, Q + M, 4) * 0.5 + 0.2
    xy = torch.rand(num_gts, 2) * 30
    gts = [make_sample(torch.cat([xy, xy + 20], 1), torch.arange(num_gts) % 3), make_sample([], [])]
    calls = _spy_matches(head, monkeypatch)
    losses = head.loss_by_feat(cls_logits, boxes, [s.gt_instances for s in gts], [s.metainfo for s in gts],
                               one_to_many=o2m)
    assert {f'{p}o2m.loss_{t}' for p in ('', 'd0.') for t in ('cls', 'bbox', 'iou')} <= set(losses)
    o2m_calls = [c for c in calls if c[0] == M]
    assert len(o2m_calls) == layers and all(c[1] == [min(repeats * num_gts, M), 0] for c in o2m_calls)
    per_gt = min(repeats, M // num_gts)
    for layer, (_, _, matches, pred, _) in enumerate(o2m_calls):
        query, gt = matches[0]
        counts = torch.bincount(gt % num_gts, minlength=num_gts)
        assert counts.sum() == min(repeats * num_gts, M) and counts.min() >= per_gt
        assert counts.max() <= per_gt + (repeats * num_gts > M) and len(query.unique()) == len(query)
        assert len(matches[1][0]) == 0                                   # the image without boxes
        # The box loss from the matches alone: 5 x L1 summed, over K x the batch's boxes, x loss_weight.
        target = normalised_cxcywh(gts[0].gt_instances.bboxes, (64, 64))[gt % num_gts]
        expected = 5.0 * (pred[0, query] - target).abs().sum() / (repeats * num_gts) * 0.5
        key = 'o2m.loss_bbox' if layer == layers - 1 else 'd0.o2m.loss_bbox'
        torch.testing.assert_close(losses[key], expected)


@pytest.mark.reference
def test_one_to_one_denoising_and_encoder_losses_unchanged():
    with_o2m, without = _pair()
    with_o2m.train(), without.train()
    data = _batch(with_o2m)
    torch.manual_seed(2)                                     # the same denoising noise for both
    losses = with_o2m.loss(data['inputs'], data['data_samples'])
    torch.manual_seed(2)
    reference = without.loss(data['inputs'], data['data_samples'])
    extra = {f'{p}o2m.loss_{t}' for p in ('', 'd0.') for t in ('cls', 'bbox', 'iou')}
    assert set(losses) == set(reference) | extra
    assert {'loss_dn_cls', 'enc.loss_cls', 'd0.loss_bbox'} <= set(reference)
    for name, value in reference.items():
        torch.testing.assert_close(losses[name], value, msg=name)
    assert all(torch.isfinite(losses[name]) and losses[name] > 0 for name in extra)


def test_inference_outputs_are_those_without_the_branch():
    with_o2m, without = _pair()
    data = _batch(with_o2m)
    for mode in ('eval', 'train'):                           # no extra queries outside the loss
        getattr(with_o2m, mode)(), getattr(without, mode)()
        with torch.no_grad():
            logits, boxes = with_o2m(data['inputs'], data['data_samples'], mode='tensor')
            ref_logits, ref_boxes = without(data['inputs'], data['data_samples'], mode='tensor')
        assert logits.shape == ref_logits.shape == (2, 2, Q, 4) and boxes.shape == (2, 2, Q, 4)
        torch.testing.assert_close(logits, ref_logits, rtol=0, atol=0)
        torch.testing.assert_close(boxes, ref_boxes, rtol=0, atol=0)
    with_o2m.eval(), without.eval()
    with torch.no_grad():
        got = with_o2m(data['inputs'], data['data_samples'], mode='predict')
        expected = without(data['inputs'], data['data_samples'], mode='predict')
    for a, b in zip(got, expected):
        torch.testing.assert_close(a.pred_instances.bboxes, b.pred_instances.bboxes, rtol=0, atol=0)
        torch.testing.assert_close(a.pred_instances.scores, b.pred_instances.scores, rtol=0, atol=0)


@pytest.mark.parametrize('boxes', [(BOXES, ()), ((), ())], ids=['one-image-empty', 'no-boxes'])
def test_training_step_trains_every_parameter(boxes):
    model = _model().train()
    data = _batch(model, boxes)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert all(torch.isfinite(v) for v in losses.values())
    if not any(boxes):
        assert losses['o2m.loss_cls'] > 0 and losses['o2m.loss_bbox'] == 0 and losses['o2m.loss_iou'] == 0
    sum(losses.values()).backward()
    untrained = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not untrained


@pytest.mark.parametrize('kwargs, match', [
    (dict(query_type='embedding', denoising=None), "query_type='encoder'.*not EmbeddingQueries"),
    (dict(query_type='anchor'), "query_type='encoder'.*not AnchorQueries"),
    (dict(one_to_many=dict(num_queries=4, repeat=2)), r"unknown: \['repeat'\], missing: \['repeats'\]"),
    (dict(one_to_many=dict(num_queries=0, repeats=2)), 'num_queries must be an integer >= 1, got 0'),
    (dict(one_to_many=dict(num_queries=4, repeats=2.5)), 'repeats must be an integer >= 1, got 2.5'),
    (dict(one_to_many=dict(num_queries=4, repeats=2, loss_weight=0)), 'loss_weight must be > 0'),
])
def test_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _model(**kwargs)


def test_too_few_tokens_for_the_extra_queries_is_an_error():
    model = _model(one_to_many=dict(num_queries=12, repeats=2)).train()    # 5 + 12 > 16 tokens
    data = _batch(model)
    with pytest.raises(ValueError, match=r'fewer than the 5 \+ 12 one-to-many queries'):
        model.loss(data['inputs'], data['data_samples'])
    with torch.no_grad():
        model.eval()(data['inputs'], data['data_samples'], mode='predict')     # inference needs only Q
