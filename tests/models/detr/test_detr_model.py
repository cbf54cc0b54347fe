"""The DETR detector's build-time checks, its query sources and the frozen-BatchNorm ResNet it uses (by
name in a config)."""
import pytest
import torch
from torchvision.ops import FrozenBatchNorm2d

from det.models.detr import SinePositionalEncoding
from det.registry import MODELS


def test_torchvision_backbone_frozen_batchnorm_by_name():
    backbone = MODELS.build(dict(type='TorchvisionBackbone', name='resnet18', out_indices=(3,),
                                 norm_layer='FrozenBatchNorm2d'))
    norms = [m for m in backbone.modules() if isinstance(m, (FrozenBatchNorm2d, torch.nn.BatchNorm2d))]
    assert norms and all(isinstance(m, FrozenBatchNorm2d) for m in norms)
    plain = MODELS.build(dict(type='TorchvisionBackbone', name='resnet18', out_indices=(3,)))
    bn_params = sum(2 * m.num_features for m in plain.modules() if isinstance(m, torch.nn.BatchNorm2d))
    removed = sum(p.numel() for p in plain.parameters()) - sum(p.numel() for p in backbone.parameters())
    assert removed == bn_params
    with pytest.raises(ValueError, match='not a class of torchvision.ops or torch.nn'):
        MODELS.build(dict(type='TorchvisionBackbone', name='resnet18', norm_layer='NoSuchNorm'))


def test_bad_query_type_is_an_error():
    with pytest.raises(ValueError, match="query_type must be one of"):
        MODELS.build(dict(type='DETR', backbone=dict(type='MobileNetV2', widen_factor=0.35, out_indices=(4,)),
                          head=dict(type='DETRHead', num_classes=2), query_type='boxes'))


def test_query_source_by_short_name_or_config():
    """``query_type`` names a registered query source, which keeps its checkpoint name in the state dict."""
    def build(query_type, **kwargs):
        torch.manual_seed(0)
        return MODELS.build(dict(type='DETR', backbone=dict(type='MobileNetV2', widen_factor=0.35,
                                                            out_indices=(4,)),
                                 num_queries=4, embed_dims=32, query_type=query_type, **kwargs,
                                 encoder=dict(num_layers=1, num_heads=4, ffn_dims=64),
                                 decoder=dict(num_layers=1, num_heads=4, ffn_dims=64),
                                 head=dict(type='DETRHead', num_classes=2)))
    for name, key in (('embedding', 'query_embedding.weight'), ('anchor', 'anchor_embedding.weight'),
                      ('encoder', 'enc_output.0.weight')):
        model = build(name)
        assert key in model.state_dict() and model.queries is getattr(model, key.split('.')[0])
    short, full = build('encoder', proposal_size=0.2), build(dict(type='EncoderQueries', proposal_size=0.2))
    assert list(short.state_dict()) == list(full.state_dict()) and full.queries.proposal_size == 0.2


def test_positional_encoding_counts_valid_pixels_only():
    """A padded map encodes its valid region as the unpadded map does (normalised positions)."""
    encoding = SinePositionalEncoding(num_feats=8)
    full = encoding(torch.zeros(1, 3, 4, dtype=torch.bool))
    padded_mask = torch.ones(1, 5, 7, dtype=torch.bool)
    padded_mask[:, :3, :4] = False
    padded = encoding(padded_mask)
    torch.testing.assert_close(padded[..., :3, :4], full)
    assert full.shape == (1, 16, 3, 4)


def test_attention_runs_in_fp32_under_cpu_autocast():
    """Under CPU bf16 autocast the attention equals fp32 SDPA of the same (bf16) inputs, returns bf16,
    and passes gradients to q, k and v."""
    import torch.nn.functional as F

    from det.models.detr.transformer import attention
    torch.manual_seed(0)
    low = [torch.randn(2, 4, 30, 16).bfloat16().requires_grad_() for _ in range(3)]
    mask = torch.rand(2, 1, 30, 30) > 0.2
    mask |= torch.eye(30, dtype=torch.bool)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = attention(*low, attn_mask=mask)
    reference = F.scaled_dot_product_attention(*(t.detach().float() for t in low), attn_mask=mask)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), reference.bfloat16().float(), rtol=0, atol=0)
    out.float().sum().backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in low)
