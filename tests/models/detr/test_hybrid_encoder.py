"""HybridEncoder (RT-DETR's AIFI + CCFM neck) against ``transformers``' ``RTDetrModel.encoder_input_proj`` +
``RTDetrHybridEncoder`` with the same weights, its neck contract (channels, strides, gradients) and its
errors."""
import pytest
import torch

import det.models  # noqa: F401  (registers every module)
from det.registry import MODELS

IN_CHANNELS, STRIDES = [12, 16, 20], [8, 16, 32]


def _hf_to_det_key(key: str) -> str:
    """A key of ``RTDetrHybridEncoder``'s state dict -> the same tensor's key in ``HybridEncoder``."""
    replacements = [('aifi.0.layers.', 'aifi.'), ('self_attn.o_proj', 'self_attn.out_proj'),
                    ('self_attn_layer_norm', 'norm1'), ('final_layer_norm', 'norm2'),
                    ('mlp.fc1', 'ffn.0'), ('mlp.fc2', 'ffn.3'), ('.conv.', '.0.'), ('.norm.', '.1.')]
    for old, new in replacements:
        key = key.replace(old, new)
    return key


def _randomise_batchnorm(module, gen):
    """Non-trivial BN statistics and affine parameters, so a mismatched BN would show."""
    for bn in module.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.running_mean.copy_(torch.randn(bn.num_features, generator=gen) * 0.1)
            bn.running_var.copy_(torch.rand(bn.num_features, generator=gen) + 0.5)
            bn.weight.data.copy_(torch.rand(bn.num_features, generator=gen) + 0.5)
            bn.bias.data.copy_(torch.randn(bn.num_features, generator=gen) * 0.1)


@pytest.mark.reference
@pytest.mark.parametrize('expansion,size', [(1.0, (64, 96)), (0.5, (96, 64))])
def test_equals_transformers_hybrid_encoder(expansion, size):
    pytest.importorskip('transformers', reason='the reference needs transformers (pip install -e ".[tests]")')
    from transformers import RTDetrConfig, RTDetrResNetConfig
    from transformers.models.rt_detr.modeling_rt_detr import RTDetrModel

    backbone = RTDetrResNetConfig(embedding_size=8, hidden_sizes=[8, *IN_CHANNELS], depths=[1, 1, 1, 1],
                                  layer_type='basic', out_features=['stage2', 'stage3', 'stage4'])
    config = RTDetrConfig(backbone_config=backbone, encoder_hidden_dim=32, encoder_in_channels=IN_CHANNELS,
                          feat_strides=STRIDES, encoder_ffn_dim=64, num_attention_heads=4,
                          encoder_attention_heads=4, hidden_expansion=expansion, d_model=32,
                          decoder_layers=1, num_queries=10, decoder_ffn_dim=32)
    torch.manual_seed(0)
    hf = RTDetrModel(config).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        _randomise_batchnorm(hf.encoder_input_proj, gen)
        _randomise_batchnorm(hf.encoder, gen)
    ours = MODELS.build(dict(type='HybridEncoder', in_channels=IN_CHANNELS, strides=STRIDES, out_channels=32,
                             num_heads=4, ffn_dims=64, expansion=expansion)).eval()
    state = {f'input_proj.{k}': v for k, v in hf.encoder_input_proj.state_dict().items()}
    state.update({_hf_to_det_key(k): v for k, v in hf.encoder.state_dict().items()})
    ours.load_state_dict(state, strict=True)          # every tensor of both sides has its counterpart

    feats = [torch.randn(2, c, size[0] // s, size[1] // s, generator=gen)
             for c, s in zip(IN_CHANNELS, STRIDES)]
    with torch.no_grad():
        expected = hf.encoder([proj(f) for proj, f in zip(hf.encoder_input_proj, feats)]).last_hidden_state
        outs = ours(feats)
    assert len(outs) == len(expected) == 3
    for out, ref in zip(outs, expected):
        assert out.shape == ref.shape
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_contract_and_gradients():
    """D channels at every input stride, sizes kept (also odd ones), every parameter trained."""
    neck = MODELS.build(dict(type='HybridEncoder', in_channels=[8, 16], strides=[16, 32], out_channels=16,
                             num_heads=2, ffn_dims=32, num_blocks=1))
    assert neck.out_channels == [16, 16] and neck.strides == [16, 32]
    feats = (torch.randn(2, 8, 7, 5, requires_grad=True), torch.randn(2, 16, 4, 3, requires_grad=True))
    outs = neck(feats)
    assert [o.shape for o in outs] == [(2, 16, 7, 5), (2, 16, 4, 3)]
    sum(o.sum() for o in outs).backward()
    for name, param in neck.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert all(f.grad.abs().sum() > 0 for f in feats)


def test_aifi_sees_the_whole_coarsest_map():
    """One pixel of the coarsest map changes every output position of that level (global attention);
    without AIFI layers it changes only its 3x3-conv neighbourhood's."""
    torch.manual_seed(0)
    for layers, everywhere in ((1, True), (0, False)):
        neck = MODELS.build(dict(type='HybridEncoder', in_channels=[4, 4], strides=[8, 16], out_channels=8,
                                 num_heads=2, ffn_dims=16, num_blocks=1, num_encoder_layers=layers)).eval()
        feats = [torch.randn(1, 4, 12, 12), torch.randn(1, 4, 6, 6)]
        base = neck(feats)[1]
        feats[1][0, :, 0, 0] += 5
        changed = (neck(feats)[1] - base).abs().amax(1)[0] > 1e-6
        assert bool(changed.all()) == everywhere


def test_bad_configuration_is_an_error():
    with pytest.raises(ValueError, match='strides must double'):
        MODELS.build(dict(type='HybridEncoder', in_channels=[8, 8], strides=[8, 32]))
    with pytest.raises(ValueError, match='divisible by 4'):
        MODELS.build(dict(type='HybridEncoder', in_channels=[8], strides=[8], out_channels=18, num_heads=2))
    neck = MODELS.build(dict(type='HybridEncoder', in_channels=[8, 8], strides=[8, 16], out_channels=8,
                             num_heads=2))
    with pytest.raises(ValueError, match='expects 2 maps'):
        neck([torch.randn(1, 8, 4, 4)])
