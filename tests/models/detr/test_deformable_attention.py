"""Deformable cross-attention against ``transformers``' ``DeformableDetrMultiscaleDeformableAttention`` (one
feature level, same weights), its initial sampling ring against a hand-computed one, padding that cannot
leak into the output, and the decoder / detector checks around it."""
import pytest
import torch

from det.models.detr import DeformableCrossAttention, DetrTransformerDecoder
from det.registry import MODELS


def _inputs(batch=2, queries=7, dims=32, height=5, width=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    query = torch.randn(batch, queries, dims, generator=gen)
    reference = torch.rand(batch, queries, 4, generator=gen) * torch.tensor([1.0, 1.0, 0.5, 0.5])
    memory = torch.randn(batch, height * width, dims, generator=gen)
    padding = torch.zeros(batch, height, width, dtype=torch.bool)
    padding[1, :, 4:] = True                                   # image 1: two padded columns
    padding[1, 4:, :] = True                                   # and one padded row
    valid = ~padding
    ratios = torch.stack([valid[:, 0, :].sum(1) / width, valid[:, :, 0].sum(1) / height], -1).float()
    return query, reference, memory, (height, width), padding.flatten(1), ratios


def test_equals_transformers_deformable_attention_with_one_level():
    pytest.importorskip('transformers', reason='the reference needs transformers (pip install -e ".[tests]")')
    from transformers import DeformableDetrConfig
    from transformers.models.deformable_detr.modeling_deformable_detr import (
        DeformableDetrMultiscaleDeformableAttention,
    )
    torch.manual_seed(0)
    ours = DeformableCrossAttention(32, num_heads=4, num_points=3)
    config = DeformableDetrConfig(d_model=32, num_feature_levels=1, disable_custom_kernels=True)
    theirs = DeformableDetrMultiscaleDeformableAttention(config, num_heads=4, n_points=3)
    for name in ('sampling_offsets', 'attention_weights', 'value_proj'):
        getattr(ours, name).weight.data.normal_(0, 0.3)
        getattr(ours, name).bias.data.normal_(0, 0.3)
        getattr(theirs, name).load_state_dict(getattr(ours, name).state_dict())
    theirs.output_proj.load_state_dict(ours.out_proj.state_dict())
    query, reference, memory, shape, padding, ratios = _inputs()
    # transformers masks the values with ``attention_mask`` (True = valid), as its decoder layer passes it.
    expected, _ = theirs(hidden_states=query, encoder_hidden_states=memory, attention_mask=~padding,
                         reference_points=(reference * ratios.repeat(1, 2)[:, None])[:, :, None],
                         spatial_shapes=torch.tensor([shape]), spatial_shapes_list=[shape],
                         level_start_index=torch.tensor([0]))
    torch.testing.assert_close(ours(query, reference, memory, shape, padding, ratios), expected,
                               atol=1e-5, rtol=1e-5)


def test_initial_offsets_form_a_ring_one_direction_per_head():
    attn = DeformableCrossAttention(32, num_heads=4, num_points=2)
    # Heads at 0, 90, 180, 270 degrees; point k at k times the unit step.
    expected = torch.tensor([[[1, 0], [2, 0]], [[0, 1], [0, 2]], [[-1, 0], [-2, 0]], [[0, -1], [0, -2]]])
    torch.testing.assert_close(attn.sampling_offsets.bias.view(4, 2, 2), expected.float(), atol=1e-6, rtol=0)
    assert attn.sampling_offsets.weight.abs().sum() == 0 and attn.attention_weights.weight.abs().sum() == 0


def test_padded_memory_cannot_change_the_output_and_gradients_flow():
    attn = DeformableCrossAttention(32, num_heads=4, num_points=4)
    query, reference, memory, shape, padding, ratios = _inputs()
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
    with pytest.raises(ValueError, match="use query_type 'anchor' or 'encoder'"):
        MODELS.build(dict(type='DETR', backbone=dict(type='MobileNetV2', widen_factor=0.35, out_indices=(3,)),
                          embed_dims=32, encoder=dict(num_layers=1, num_heads=4, ffn_dims=64),
                          decoder=dict(num_layers=1, num_heads=4, ffn_dims=64, cross_attention='deformable'),
                          head=dict(type='DETRHead', num_classes=2), query_type='embedding'))
