"""Deformable cross-attention against ``transformers``' ``DeformableDetrMultiscaleDeformableAttention`` (one
and two feature levels, same weights), its initial sampling ring against a hand-computed one, padding that
cannot leak into the output, and the decoder / detector checks around it."""
import pytest
import torch

from det.models.detr import DeformableCrossAttention, DetrTransformerDecoder
from det.registry import MODELS
from tests.conftest import make_sample


def _level_padding(batch, height, width):
    """Image 1 of the batch has its last two columns and its last row padded on a (height, width) map."""
    padding = torch.zeros(batch, height, width, dtype=torch.bool)
    padding[1, :, width - 2:] = True
    padding[1, height - 1:, :] = True
    valid = ~padding
    ratios = torch.stack([valid[:, 0, :].sum(1) / width, valid[:, :, 0].sum(1) / height], -1).float()
    return padding.flatten(1), ratios


def _inputs(batch=2, queries=7, dims=32, shapes=((5, 6),), seed=0):
    """Query, reference boxes, the memory of every map one after the other, shapes, padding and each
    map's valid ratios ``[B, L, 2]``."""
    gen = torch.Generator().manual_seed(seed)
    query = torch.randn(batch, queries, dims, generator=gen)
    reference = torch.rand(batch, queries, 4, generator=gen) * torch.tensor([1.0, 1.0, 0.5, 0.5])
    memory = torch.randn(batch, sum(h * w for h, w in shapes), dims, generator=gen)
    paddings, ratios = zip(*(_level_padding(batch, h, w) for h, w in shapes))
    return query, reference, memory, list(shapes), torch.cat(paddings, 1), torch.stack(ratios, 1)


@pytest.mark.reference
@pytest.mark.parametrize('shapes', [((5, 6),), ((8, 10), (4, 5))])
def test_equals_transformers_deformable_attention(shapes):
    pytest.importorskip('transformers', reason='the reference needs transformers (pip install -e ".[tests]")')
    from transformers import DeformableDetrConfig
    from transformers.models.deformable_detr.modeling_deformable_detr import (
        DeformableDetrMultiscaleDeformableAttention,
    )
    torch.manual_seed(0)
    levels = len(shapes)
    ours = DeformableCrossAttention(32, num_heads=4, num_points=3, num_levels=levels)
    config = DeformableDetrConfig(d_model=32, num_feature_levels=levels, disable_custom_kernels=True)
    theirs = DeformableDetrMultiscaleDeformableAttention(config, num_heads=4, n_points=3)
    for name in ('sampling_offsets', 'attention_weights', 'value_proj'):
        getattr(ours, name).weight.data.normal_(0, 0.3)
        getattr(ours, name).bias.data.normal_(0, 0.3)
        getattr(theirs, name).load_state_dict(getattr(ours, name).state_dict())
    theirs.output_proj.load_state_dict(ours.out_proj.state_dict())
    query, reference, memory, shapes, padding, ratios = _inputs(shapes=shapes)
    starts = torch.tensor([0] + [h * w for h, w in shapes[:-1]]).cumsum(0)
    # transformers masks the values with ``attention_mask`` (True = valid), as its decoder layer passes it,
    # and takes reference boxes already scaled by each level's valid ratios.
    expected, _ = theirs(hidden_states=query, encoder_hidden_states=memory, attention_mask=~padding,
                         reference_points=reference[:, :, None] * ratios.repeat(1, 1, 2)[:, None],
                         spatial_shapes=torch.tensor(shapes), spatial_shapes_list=shapes,
                         level_start_index=starts)
    torch.testing.assert_close(ours(query, reference, memory, shapes, padding, ratios), expected,
                               atol=1e-5, rtol=1e-5)


def test_initial_offsets_form_a_ring_one_direction_per_head():
    attn = DeformableCrossAttention(32, num_heads=4, num_points=2, num_levels=3)
    # Heads at 0, 90, 180, 270 degrees; point k at k times the unit step; the same on every level.
    expected = torch.tensor([[[1, 0], [2, 0]], [[0, 1], [0, 2]], [[-1, 0], [-2, 0]], [[0, -1], [0, -2]]])
    for level in range(3):
        torch.testing.assert_close(attn.sampling_offsets.bias.view(4, 3, 2, 2)[:, level], expected.float(),
                                   atol=1e-6, rtol=0)
    assert attn.sampling_offsets.weight.abs().sum() == 0 and attn.attention_weights.weight.abs().sum() == 0


@pytest.mark.parametrize('shapes', [((5, 6),), ((10, 12), (5, 6))])
def test_padded_memory_cannot_change_the_output_and_gradients_flow(shapes):
    attn = DeformableCrossAttention(32, num_heads=4, num_points=4, num_levels=len(shapes))
    query, reference, memory, shape, padding, ratios = _inputs(shapes=shapes)
    memory.requires_grad_(True)
    out = attn(query, reference, memory, shape, padding, ratios)
    changed = memory.detach().clone()
    changed[padding] = 1e3
    torch.testing.assert_close(attn(query, reference, changed, shape, padding, ratios), out.detach())
    out.sum().backward()
    assert memory.grad[~padding].abs().sum() > 0 and memory.grad[padding].abs().sum() == 0


def test_runs_in_fp32_under_bf16_autocast(monkeypatch):
    """The sampling itself gets fp32 values and locations under bf16 autocast (bf16 would round the
    locations by up to 1/256 of the map); the output stays close to the fp32 module's."""
    seen = []
    grid_sample = torch.nn.functional.grid_sample

    def recording_grid_sample(values, grid, **kwargs):
        seen.append((values.dtype, grid.dtype))
        return grid_sample(values, grid, **kwargs)

    monkeypatch.setattr(torch.nn.functional, 'grid_sample', recording_grid_sample)
    attn = DeformableCrossAttention(32, num_heads=4, num_points=4)
    query, reference, memory, shape, padding, ratios = _inputs()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        low = attn(query, reference, memory, shape, padding, ratios)
    assert seen == [(torch.float32, torch.float32)]
    full = attn(query, reference, memory, shape, padding, ratios)
    assert (low.float() - full).abs().max() < 0.05


def test_deformable_needs_reference_boxes():
    with pytest.raises(ValueError, match='cross_attention must be one of'):
        DetrTransformerDecoder(32, num_layers=1, num_heads=4, cross_attention='sparse')
    with pytest.raises(ValueError, match='global cross-attention reads one memory map'):
        DetrTransformerDecoder(32, num_layers=1, num_heads=4, num_levels=2)
    with pytest.raises(ValueError, match='2 memory maps for an attention built with num_levels=1'):
        query, reference, memory, shapes, padding, ratios = _inputs(shapes=((4, 4), (2, 2)))
        DeformableCrossAttention(32, num_heads=4)(query, reference, memory, shapes, padding, ratios)
    with pytest.raises(ValueError, match="query_type 'anchor' or 'encoder'"):
        MODELS.build(dict(type='DETR', backbone=dict(type='MobileNetV2', widen_factor=0.35, out_indices=(3,)),
                          embed_dims=32, encoder=dict(num_layers=1, num_heads=4, ffn_dims=64),
                          decoder=dict(num_layers=1, num_heads=4, ffn_dims=64, cross_attention='deformable'),
                          head=dict(type='DETRHead', num_classes=2), query_type='embedding'))


def _multiscale_detr(out_indices=(2, 3), cross_attention='deformable'):
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='DETR', backbone=dict(type='MobileNetV2', widen_factor=0.35, out_indices=out_indices),
        num_queries=6, embed_dims=32, query_type='encoder',
        encoder=dict(num_layers=1, num_heads=4, ffn_dims=64, dropout=0.0),
        decoder=dict(num_layers=2, num_heads=4, ffn_dims=64, dropout=0.0, cross_attention=cross_attention),
        head=dict(type='DETRHead', num_classes=3)))
    model.init_weights()
    return model


def test_multiscale_decoder_reads_the_finer_map():
    """Backbone maps at strides 8 and 16: the encoder reads the stride-16 map, the decoder samples both, so
    the loss reaches the stride-8 map's projection and a change of that map alone changes predictions."""
    model = _multiscale_detr()
    assert len(model.level_proj) == 1 and model.decoder.layers[0].cross_attn.num_levels == 2
    sample = make_sample([[4.0, 8.0, 30.0, 40.0]], [1])
    data = model.data_preprocessor(dict(inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)],
                                        data_samples=[sample]), training=True)
    sum(model(**data, mode='loss').values()).backward()
    assert model.level_proj[0][0].weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        before = model(data['inputs'], mode='tensor')[1]
        model.level_proj[0][1].bias.add_(1.0)               # shifts only the stride-8 memory
        after = model(data['inputs'], mode='tensor')[1]
    assert (before - after).abs().max() > 1e-4


def test_global_cross_attention_with_several_maps_is_an_error():
    with pytest.raises(ValueError, match='global cross-attention reads one'):
        MODELS.build(dict(
            type='DETR', backbone=dict(type='MobileNetV2', widen_factor=0.35, out_indices=(2, 3)),
            embed_dims=32, encoder=dict(num_layers=1, num_heads=4, ffn_dims=64),
            decoder=dict(num_layers=1, num_heads=4, ffn_dims=64), head=dict(type='DETRHead', num_classes=2)))
