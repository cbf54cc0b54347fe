"""Denoising queries: the attention mask keeps groups apart and away from the matching queries, checked on
the mask and through the decoder (perturbing one group changes nothing else); noise stays in its bounds;
the matching queries' losses do not depend on whether denoising queries are present; a batch without
boxes still reaches every parameter; ``--cfg-options`` switches denoising on."""
import importlib.util
from pathlib import Path

import pytest
import torch

from det.engine.config import load_config
from det.models.detr import DenoisingQueries, DetrTransformerDecoder
from det.registry import MODELS
from tests.conftest import make_sample

NUM_MATCHING = 4
REPO = Path(__file__).resolve().parents[3]


def _queries(num_groups=3, gts=(3, 1), **kwargs):
    torch.manual_seed(0)
    dn = DenoisingQueries(num_classes=5, embed_dims=16, num_groups=num_groups, **kwargs)
    labels = [torch.randint(0, 5, (n,)) for n in gts]
    boxes = [torch.cat([0.3 + 0.4 * torch.rand(n, 2), 0.1 + 0.2 * torch.rand(n, 2)], 1) for n in gts]
    return dn, labels, boxes, dn(labels, boxes, NUM_MATCHING)


def test_mask_blocks_groups_and_matching_queries():
    _, _, _, out = _queries()
    size, groups = out.group_size, out.num_groups
    assert size == 3 and out.content.shape == (2, groups * size, 16)
    num_dn = groups * size
    mask = out.attn_mask
    assert mask.shape == (2, num_dn + NUM_MATCHING, num_dn + NUM_MATCHING)
    # Matching queries never see a denoising query, and see each other.
    assert not mask[:, num_dn:, :num_dn].any()
    assert mask[:, num_dn:, num_dn:].all()
    for g in range(groups):
        rows = slice(g * size, (g + 1) * size)
        for other in range(groups):
            if other != g:
                assert not mask[:, rows, other * size:(other + 1) * size].any()
        assert mask[:, rows, num_dn:].all()
    # Image 1 has one box: its padded copies are not attended to by any other query.
    padded = [g * size + j for g in range(groups) for j in (1, 2)]
    for p in padded:
        others = [i for i in range(num_dn + NUM_MATCHING) if i != p]
        assert not mask[1, others, p].any()
        assert mask[1, p, p]
    assert out.valid[0].all() and out.valid[1].tolist() == [True, False, False] * groups


def test_decoder_outputs_do_not_leak_across_groups():
    """Changing group 1's queries changes group 1's outputs only: not group 0's, 2's, nor the matching
    queries' (in every decoder layer)."""
    _, _, _, out = _queries()
    torch.manual_seed(1)
    decoder = DetrTransformerDecoder(embed_dims=16, num_layers=2, num_heads=2, ffn_dims=32, dropout=0.0)
    decoder.eval()
    num_dn = out.num_groups * out.group_size
    content = torch.randn(2, num_dn + NUM_MATCHING, 16)
    query_pos = torch.randn(2, num_dn + NUM_MATCHING, 16)
    memory, memory_pos = torch.randn(2, 6, 16), torch.randn(2, 6, 16)
    padding = torch.zeros(2, 6, dtype=torch.bool)
    hidden, _ = decoder(content, memory, memory_pos, padding, query_pos=query_pos,
                        self_attn_mask=out.attn_mask)
    group1 = slice(out.group_size, 2 * out.group_size)
    changed = content.clone()
    changed[:, group1] += torch.randn_like(changed[:, group1])
    hidden2, _ = decoder(changed, memory, memory_pos, padding, query_pos=query_pos,
                         self_attn_mask=out.attn_mask)
    untouched = torch.ones(num_dn + NUM_MATCHING, dtype=torch.bool)
    untouched[group1] = False
    torch.testing.assert_close(hidden2[:, :, untouched], hidden[:, :, untouched], atol=1e-6, rtol=0)
    assert (hidden2[:, 0, group1] - hidden[:, 0, group1]).abs().max() > 1e-2
    # Without the mask the same change reaches the matching queries.
    free, _ = decoder(content, memory, memory_pos, padding, query_pos=query_pos)
    free2, _ = decoder(changed, memory, memory_pos, padding, query_pos=query_pos)
    assert (free2[:, :, num_dn:] - free[:, :, num_dn:]).abs().max() > 1e-3


def test_noise_bounds():
    _, labels, boxes, out = _queries(num_groups=50, gts=(3, 3), label_noise_ratio=0.0, box_noise_scale=0.4)
    targets = torch.stack(boxes).repeat(1, 50, 1)
    torch.testing.assert_close(out.targets, targets)
    centre_shift = (out.boxes[..., :2] - targets[..., :2]).abs()
    assert (centre_shift <= 0.4 * targets[..., 2:] / 2 + 1e-6).all()
    scale = out.boxes[..., 2:] / targets[..., 2:]
    assert (scale >= 0.6 - 1e-5).all() and (scale <= 1.4 + 1e-5).all()
    assert centre_shift.max() > 0.1 * 0.4 * targets[..., 2:].min() / 2
    dn = DenoisingQueries(num_classes=5, embed_dims=16, num_groups=200, label_noise_ratio=0.5)
    noised = dn([torch.zeros(10, dtype=torch.long)], [torch.full((10, 4), 0.5)], NUM_MATCHING)
    # Flipped with probability 0.5 to a uniform class, so the label changes with probability 0.4.
    changed = (noised.content != dn.label_embedding.weight[0]).any(-1).float().mean()
    assert 0.33 < changed < 0.47


def test_no_boxes_no_denoising_queries():
    dn = DenoisingQueries(num_classes=5, embed_dims=16)
    assert dn([torch.zeros(0, dtype=torch.long)], [torch.zeros(0, 4)], NUM_MATCHING) is None


def _tiny_detr(query_type, denoising):
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='DETR', backbone=dict(type='MobileNetV2', widen_factor=0.35, out_indices=(3,)), num_queries=8,
        embed_dims=32, query_type=query_type, denoising=denoising,
        encoder=dict(num_layers=1, num_heads=4, ffn_dims=64, dropout=0.0),
        decoder=dict(num_layers=2, num_heads=4, ffn_dims=64, dropout=0.0),
        head=dict(type='DETRHead', num_classes=5)))
    model.init_weights()
    return model


def test_matching_losses_unchanged_by_denoising_queries():
    """End to end: the same weights give the same matching-query losses with and without denoising."""
    for query_type in ('embedding', 'anchor'):
        model = _tiny_detr(query_type, dict(num_groups=2))
        sample = make_sample([[4.0, 6.0, 30.0, 40.0], [20.0, 10.0, 44.0, 30.0]], [1, 3], (64, 48))
        inputs = torch.randn(1, 3, 64, 64)
        model.train()
        with_dn = model(inputs, [sample], mode='loss')
        model.denoising, denoising = None, model.denoising
        without = model(inputs, [sample], mode='loss')
        model.denoising = denoising
        assert 'loss_dn_cls' in with_dn and 'loss_dn_cls' not in without
        for key, value in without.items():
            torch.testing.assert_close(with_dn[key], value, atol=1e-5, rtol=1e-5, msg=f'{query_type} {key}')


@pytest.mark.parametrize('query_type', ['embedding', 'anchor', 'encoder'])
def test_every_parameter_gets_a_gradient_on_a_batch_without_boxes(query_type):
    """A batch without boxes has no denoising queries; the denoising parameters still take part (a zero
    gradient, not None), as DDP without find_unused_parameters requires."""
    model = _tiny_detr(query_type, dict(num_groups=2)).train()
    losses = model(torch.randn(1, 3, 64, 64), [make_sample([], [])], mode='loss')
    sum(losses.values()).backward()
    missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing
    assert model.denoising.label_embedding.weight.grad.abs().sum() == 0


def _train_args(config, *options):
    """``tools/train.py CONFIG --cfg-options OPTIONS`` parsed and loaded as the script does."""
    spec = importlib.util.spec_from_file_location('det_tools_train', REPO / 'tools' / 'train.py')
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    args = train.parse_args([str(REPO / config), '--cfg-options', *options])
    return load_config(args.config, args.cfg_options)


@pytest.mark.parametrize('config', ['configs/detr_mobilenetv2_320_shapes.py',
                                    'configs/detr_r50_320_shapes.py'])
def test_denoising_is_switched_on_from_cfg_options(config):
    """``--cfg-options model.denoising.num_groups=3`` turns denoising on in a config that has it off (a
    config that wrote ``denoising=None`` made mmengine refuse to merge a dict into None)."""
    assert _train_args(config, 'model.query_type=anchor').model.get('denoising') is None
    cfg = _train_args(config, 'model.denoising.num_groups=3')
    tiny = dict(backbone=dict(type='MobileNetV2', widen_factor=0.35, out_indices=(3,)), embed_dims=32,
                encoder=dict(num_layers=1, num_heads=4, ffn_dims=64),
                decoder=dict(num_layers=1, num_heads=4, ffn_dims=64))
    model = MODELS.build(dict(cfg.model, **tiny))
    assert model.denoising is not None and model.denoising.num_groups == 3
