"""Receptive fields: the theoretical field of conv stacks by hand, the effective field against the
composed kernels (scipy), the mass radius on a hand-made map, and tools/analysis/receptive_field.py
run on the tiny experiment."""
import json

import cv2
import numpy as np
import pytest
import torch
from scipy.signal import convolve2d
from torch import nn

from det.analysis.receptive_field import effective_receptive_field, level_fields, mass_radius

from .tool_loader import load_tool


class ThreeConvs(nn.Module):
    """Three 3x3 convs, stride 1, one channel, no activation: a backbone with one output level."""
    strides = (1,)

    def __init__(self):
        super().__init__()
        self.convs = nn.Sequential(*(nn.Conv2d(1, 1, 3, padding=1) for _ in range(3)))

    def forward(self, x):
        return (self.convs(x),)


def test_three_3x3_convs_have_rf_7_and_the_erf_is_the_composed_kernel():
    torch.manual_seed(0)
    model = ThreeConvs().eval()
    images = torch.randn(3, 1, 21, 21)
    (level,) = level_fields(model, images[:1])
    assert level['field'] == (7, 7) and level['jump'] == (1, 1)  # 1 + 3 * (3 - 1)

    (erf,) = effective_receptive_field(model, images)
    # out = x (*) k1 (*) k2 (*) k3 (cross-correlations) = x (*) (k1 * k2 * k3): the gradient of the centre
    # unit (10, 10) w.r.t. x[10 + u, 10 + v] is the 7x7 full convolution of the kernels at (u + 3, v + 3).
    k1, k2, k3 = (conv.weight[0, 0].detach().double().numpy() for conv in model.convs)
    expected = np.zeros((21, 21))
    expected[7:14, 7:14] = np.abs(convolve2d(convolve2d(k1, k2), k3))
    np.testing.assert_allclose(erf, expected, rtol=1e-5, atol=1e-7)
    assert (erf[expected == 0] == 0).all()  # exactly zero outside the theoretical field
    assert mass_radius(erf, 1.0) == ((10.0, 10.0), 3.0)  # the whole field: side 2 * 3 + 1 = 7


class Strided(nn.Module):
    """Two levels: conv3 s2 + ReLU + conv3 (RF 3 -> 7, j 2), then maxpool3 s2 (11, j 4) + conv3 (19)."""
    strides = (2, 4)

    def __init__(self):
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.ReLU(), nn.Conv2d(4, 4, 3, 1, 1))
        self.b = nn.Sequential(nn.MaxPool2d(3, 2, 1), nn.Conv2d(4, 4, 3, 1, 1))

    def forward(self, x):
        a = self.a(x)
        return a, self.b(a)


def test_erf_of_a_strided_stack_stays_inside_its_theoretical_field():
    torch.manual_seed(1)
    model = Strided().eval()
    images = torch.randn(4, 3, 64, 64)
    rows = level_fields(model, images[:1])
    assert [(r['field'][0], r['jump'][0]) for r in rows] == [(7, 2), (19, 4)]
    for row, erf in zip(rows, effective_receptive_field(model, images)):
        ys, xs = np.nonzero(erf)
        assert ys.size and ys.max() - ys.min() + 1 <= row['field'][0]
        assert xs.max() - xs.min() + 1 <= row['field'][1]


def test_mass_radius_on_a_hand_made_map():
    erf = np.zeros((11, 11))
    erf[5, 5] = 6.0
    erf[5, 3] = erf[5, 7] = erf[3, 5] = erf[7, 5] = 1.0  # Chebyshev distance 2 from the centre
    assert mass_radius(erf, 0.6) == ((5.0, 5.0), 0.0)  # the centre alone holds 6 / 10
    assert mass_radius(erf, 0.95) == ((5.0, 5.0), 2.0)
    with pytest.raises(ValueError, match='positive mass'):
        mass_radius(np.zeros((4, 4)))


def test_tool_on_the_tiny_experiment(tiny_config, tmp_path):
    tool = load_tool('receptive_field')
    out = tmp_path / 'rf.png'
    result = tool.main([str(tiny_config), '--images', '2', '--out', str(out)])
    img = cv2.imread(str(out))
    assert img is not None and img.shape[0] > 200 and img.shape[1] > 200
    # Histogram: every train box of the json, sqrt(w * h) (the pipeline resizes 96 -> 96 and flips,
    # which keeps sizes).
    with open(tiny_config.parent / 'shapes/annotations/train.json') as f:
        anns = json.load(f)['annotations']
    expected = np.sort([np.sqrt(a['bbox'][2] * a['bbox'][3]) for a in anns])
    np.testing.assert_allclose(np.sort(result['sizes']), expected, rtol=1e-4)
    for level in result['levels']:
        assert 1 <= level['erf_side'] <= max(level['field'])
        assert level['support'][0] <= level['field'][0] and level['support'][1] <= level['field'][1]


def test_tool_errors_name_the_problem(tiny_config, tmp_path):
    tool = load_tool('receptive_field')
    with pytest.raises(SystemExit, match='config not found'):
        tool.main([str(tmp_path / 'missing.py')])
    with pytest.raises(SystemExit, match=r"splits it has: \['test', 'train', 'val'\]"):
        tool.main([str(tiny_config), '--split', 'holdout'])
