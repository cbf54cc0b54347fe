"""Building blocks the MobileNets and EfficientNet share, on torchvision's ``Conv2dNormActivation``,
``SqueezeExcitation`` and ``StochasticDepth`` so that every block registers its tensors in
torchvision's order (what ``BaseBackbone.convert_torchvision`` relies on)."""
import math
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import Conv2dNormActivation, StochasticDepth


class Fp32StridedDepthwiseConv2d(nn.Conv2d):
    """A stride-2 depthwise convolution that runs in fp32 under CPU autocast: on AVX-512 / AMX CPUs
    oneDNN's bf16 backward for it is 2-4x slower than fp32's (torch 2.14, 8 x 32-64 channels x 160^2),
    and these layers hold a fraction of a percent of a MobileNet's multiply-adds, so fp32 costs no
    speed elsewhere and saves 9-14% of a MobileNet detector's bf16 training step. The output is fp32;
    the next autocast op casts it back to bf16. On another device (a GPU's bf16 kernels have no such
    cliff), or outside CPU autocast, it is a plain ``nn.Conv2d``."""

    @staticmethod
    def runs_in_fp32(device: torch.device) -> bool:
        """Whether an input on ``device`` is convolved in fp32 here: on the CPU under CPU autocast."""
        return torch.device(device).type == 'cpu' and torch.is_autocast_enabled('cpu')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.runs_in_fp32(x.device):
            with torch.autocast('cpu', enabled=False):
                return super().forward(x.float())
        return super().forward(x)


class NarrowBatchNorm2d(nn.BatchNorm2d):
    """A BatchNorm over fewer than 16 channels that normalises a channels-last CPU input in NCHW layout:
    torch's channels-last CPU BatchNorm vectorises over channels, and its backward at 8 channels runs
    ~10x slower than NCHW's (8 x 8 x 160^2: 15 vs 1.4 ms, torch 2.14). Same result, same state dict. On
    another device the input keeps its layout (cuDNN normalises channels-last directly; two layout
    copies would only cost memory traffic)."""

    @staticmethod
    def normalises_in_nchw(x: torch.Tensor) -> bool:
        """Whether ``x`` is copied to NCHW for the normalisation: a channels-last 4-d CPU tensor."""
        return (x.device.type == 'cpu' and x.dim() == 4 and not x.is_contiguous()
                and x.is_contiguous(memory_format=torch.channels_last))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalises_in_nchw(x):
            return super().forward(x.contiguous()).contiguous(memory_format=torch.channels_last)
        return super().forward(x)


def use_fast_cpu_layers(module: nn.Module):
    """In place, with the same parameters and state dict keys: every strided depthwise ``nn.Conv2d``
    in ``module`` becomes a :class:`Fp32StridedDepthwiseConv2d` and every ``nn.BatchNorm2d`` over
    fewer than 16 channels a :class:`NarrowBatchNorm2d`."""
    for layer in module.modules():
        if (type(layer) is nn.Conv2d and layer.groups > 1 and layer.groups == layer.in_channels
                == layer.out_channels and max(layer.stride) > 1):
            layer.__class__ = Fp32StridedDepthwiseConv2d
        elif type(layer) is nn.BatchNorm2d and layer.num_features < 16:
            layer.__class__ = NarrowBatchNorm2d


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a (width-multiplied) channel count to the nearest multiple of ``divisor``, never below
    ``divisor`` and never more than 10% below ``value`` (the TF-slim rule torchvision also uses)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class SamePad2d(nn.Module):
    """TensorFlow's 'SAME' padding for a ``kernel_size`` x ``kernel_size`` conv of stride ``stride``
    (built with ``padding=0`` after this): the output has ``ceil(H / stride)`` rows, and an odd total
    padding puts the extra row / column at the bottom / right. Weights trained in TensorFlow (the
    EfficientNet-Lite release) need it at stride 2, where torch's symmetric padding would shift every
    map by a pixel. ``[B, C, H, W] -> [B, C, H + pad_h, W + pad_w]``."""

    def __init__(self, kernel_size: int, stride: int):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride

    def _pad(self, size: int) -> tuple:
        total = max((math.ceil(size / self.stride) - 1) * self.stride + self.kernel_size - size, 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self._pad(x.shape[-1]) + self._pad(x.shape[-2]))


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
        same_pad: a strided depthwise conv pads as TensorFlow's 'SAME' (:class:`SamePad2d` before it,
            EfficientNet-Lite); stride-1 convs pad ``kernel_size // 2`` either way, which is the same.
    """

    def __init__(self, in_channels, hidden, out_channels, kernel_size=3, stride=1, act=nn.ReLU6,
                 norm_layer=nn.BatchNorm2d, se_layer=None, drop_prob=0.0, same_pad=False):
        super().__init__()
        conv = partial(Conv2dNormActivation, norm_layer=norm_layer, activation_layer=act)
        layers = [conv(in_channels, hidden, 1)] if hidden != in_channels else []
        if same_pad and stride > 1:
            layers.append(nn.Sequential(SamePad2d(kernel_size, stride),
                                        conv(hidden, hidden, kernel_size, stride, padding=0, groups=hidden)))
        else:
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
