"""Building blocks the MobileNets and EfficientNet share, on torchvision's ``Conv2dNormActivation``,
``SqueezeExcitation`` and ``StochasticDepth`` so that every block registers its tensors in
torchvision's order (what ``BaseBackbone.convert_torchvision`` relies on)."""
from functools import partial

import torch
from torch import nn
from torchvision.ops import Conv2dNormActivation, StochasticDepth


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a (width-multiplied) channel count to the nearest multiple of ``divisor``, never below
    ``divisor`` and never more than 10% below ``value`` (the TF-slim rule torchvision also uses)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class InvertedResidual(nn.Module):
    """MobileNetV2/V3 block and EfficientNet's MBConv: 1x1 expand (left out when ``hidden ==
    in_channels``) -> kxk depthwise (carries the stride) -> optional squeeze-excite -> linear 1x1
    projection, plus the input when the shape is kept (stride 1 and ``in == out``).
    [B, in, H, W] -> [B, out, H / stride, W / stride].

    Args:
        act: activation class after expand and depthwise (ReLU6, ReLU / Hardswish, SiLU).
        norm_layer: BatchNorm constructor, e.g. ``partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01)``.
        se_layer: ``se_layer(hidden)`` builds the squeeze-excite module; None: no squeeze-excite.
        drop_prob: stochastic depth: in training, the residual branch of each sample is dropped with
            this probability (EfficientNet; 0 for the MobileNets).
    """

    def __init__(self, in_channels, hidden, out_channels, kernel_size=3, stride=1, act=nn.ReLU6,
                 norm_layer=nn.BatchNorm2d, se_layer=None, drop_prob=0.0):
        super().__init__()
        conv = partial(Conv2dNormActivation, norm_layer=norm_layer, activation_layer=act)
        layers = [conv(in_channels, hidden, 1)] if hidden != in_channels else []
        layers.append(conv(hidden, hidden, kernel_size, stride, groups=hidden))
        if se_layer is not None:
            layers.append(se_layer(hidden))
        layers.append(conv(hidden, out_channels, 1, activation_layer=None))
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels
        self.drop_path = StochasticDepth(drop_prob, 'row') if drop_prob else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return self.drop_path(out) + x if self.use_residual else out
