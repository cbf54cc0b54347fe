"""tools/analysis/complexity.py: receptive fields against hand-computed values, and the printed report
for an SNet146 config run as a user would."""
import importlib.util
import re

import torch
from torch import nn

from det.registry import MODELS

from .conftest import REPO, run_tool

spec = importlib.util.spec_from_file_location('complexity', REPO / 'tools/analysis/complexity.py')
complexity = importlib.util.module_from_spec(spec)
spec.loader.exec_module(complexity)


def fields(model: nn.Module, x: torch.Tensor) -> list:
    """(receptive field, jump) along H after each child of ``model``."""
    out = []
    with torch.no_grad(), complexity.ReceptiveField() as rf:
        x = rf.track(x)
        for layer in model:
            x = layer(x)
            (r, _), (j, _) = rf.field(x)
            out.append((r, j))
    return out


def test_receptive_field_of_a_plain_stack():
    # r_out = r_in + (k - 1) * d * j_in, j_out = j_in * s: 1 -> 3 (j 1) -> 5 (j 2) -> 9 (j 2) -> 13 (j 4)
    stack = nn.Sequential(nn.Conv2d(3, 4, 3, 1, 1), nn.Conv2d(4, 4, 3, 2, 1), nn.Conv2d(4, 4, 3, 1, 1),
                          nn.MaxPool2d(3, 2, 1), nn.Conv2d(4, 4, 3, 1, 2, dilation=2))
    assert fields(stack, torch.randn(1, 3, 32, 32)) == [(3, 1), (5, 2), (9, 2), (13, 4), (29, 4)]


class TwoBranches(nn.Module):
    """conv3 and conv5 in parallel, summed, then a global SE-style gate; the field is the larger branch."""

    def __init__(self):
        super().__init__()
        self.small, self.large = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 5, padding=2)

    def forward(self, x):
        y = self.small(x) + self.large(x)
        return y * torch.sigmoid(nn.functional.adaptive_avg_pool2d(y, 1))


def test_receptive_field_takes_the_max_over_branches_and_tracks_upsampling():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), TwoBranches(), nn.Upsample(scale_factor=2),
                          nn.ConvTranspose2d(4, 4, 4, 2, 1))
    # conv3 s2: 3 (j 2); branches: max(3 + 2*2, 3 + 4*2) = 11; nearest x2: 11 (j 1);
    # deconv k4 s2: j 1/2, each output sees floor(3 / 2) + 1 = 2 inputs: 11 + 1 * 1 = 12
    assert fields(model, torch.randn(1, 3, 16, 16)) == [(3, 2), (11, 2), (11, 1), (12, 0.5)]


def test_report_for_an_snet146_config(tmp_path):
    config = tmp_path / 'snet146.py'
    config.write_text("default_scope = 'det'\n"
                      "model = dict(type='SNet', arch='snet146', out_indices=(3, 4))\n")
    out = run_tool('analysis/complexity', config, '--shape', 224, 224, '--max-depth', 1).stdout
    params = sum(p.numel() for p in MODELS.build(dict(type='SNet', arch='snet146')).parameters())
    assert f'= {params}' in out
    conv_madds = float(re.search(r'conv ([\d.]+) M', out).group(1))
    assert abs(conv_madds / 146 - 1) < 0.12  # ThunderNet Table 1: SNet146 is 146 M multiply-adds
    assert re.search(r'FLOPs \(multiply-adds\): [\d.]+ G', out)
    # Hand-computed RFs: conv1 3x3 s2 -> 3; maxpool 3x3 s2 -> 7 (j 4); stage2: dw5 s2 -> 23 (j 8) and
    # three dw5 s1 -> 119; stage3: 151 (j 16) + 7 * 64 = 599; stage4: 663 (j 32) + 3 * 128 = 1047.
    assert re.search(r'backbone\s+0\s+16\s+264\s+599\n', out), out
    assert re.search(r'backbone\s+1\s+32\s+528\s+1047\n', out), out


def test_report_for_a_detector_with_neck():
    detector = MODELS.build(dict(type='SingleStageDetector', backbone=dict(type='SNet', arch='snet146'),
                                 neck=dict(type='CEM'), head=dict(type='CenterNetHead', num_classes=3)))
    out = complexity.analyse(detector, shape=(160, 160), max_depth=1)
    assert "FLOPs cover extract_feat + head ('tensor' mode)" in out
    # CEM: 1x1 convs on C4 and C5 (C5 upsampled, nearest), summed: the field is C5's, 1047
    assert re.search(r'neck\s+0\s+16\s+245\s+1047\n', out + '\n'), out
