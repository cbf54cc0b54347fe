"""MobileNetV3 (Howard et al., 2019) 'large' and 'small', layer-for-layer the architectures of
torchvision's ``mobilenet_v3_large`` / ``mobilenet_v3_small``."""
from collections import OrderedDict

import torch
from torch import nn

from det.registry import MODELS

from .base import BaseBackbone
from .mobilenet_v2 import (
    KAIMING_INIT,
    ConvNormAct,
    InvertedResidual,
    convert_by_block_order,
    make_divisible,
    split_stages,
)

# BatchNorm settings of the TF reference implementation, which torchvision keeps for V3.
V3_NORM = dict(eps=0.001, momentum=0.01)


@MODELS.register_module()
class MobileNetV3(BaseBackbone):
    """MobileNetV3 with torchvision's layer layout, split into stride stages:

    ======  =====================================  ==========================  ========
    stage   torchvision ``features`` large/small   channels large/small (w=1)  stride
    ======  =====================================  ==========================  ========
    0       0-1 / 0     (stem conv [+ block])      16 / 16                     2
    1       2-3 / 1                                24 / 16                     4
    2       4-6 / 2-3                              40 / 24                     8
    3       7-12 / 4-8                             112 / 48                    16
    4       13-16 / 9-12 (incl. final 1x1 conv)    960 / 576                   32
    ======  =====================================  ==========================  ========

    ``out_indices=(2, 3, 4)`` gives strides 8/16/32. Block channels scale with ``widen_factor``
    (rounded to multiples of 8). Pretrained weights: :meth:`convert_torchvision` a torchvision
    ``state_dict``, save it and load with ``init_cfg=dict(type='Pretrained', checkpoint=path)``.
    """

    # (kernel, expanded channels, output channels, squeeze-excite, activation, stride): paper Tables 1-2.
    arch_settings = {
        'large': [(3, 16, 16, False, 'RE', 1), (3, 64, 24, False, 'RE', 2), (3, 72, 24, False, 'RE', 1),
                  (5, 72, 40, True, 'RE', 2), (5, 120, 40, True, 'RE', 1), (5, 120, 40, True, 'RE', 1),
                  (3, 240, 80, False, 'HS', 2), (3, 200, 80, False, 'HS', 1), (3, 184, 80, False, 'HS', 1),
                  (3, 184, 80, False, 'HS', 1), (3, 480, 112, True, 'HS', 1), (3, 672, 112, True, 'HS', 1),
                  (5, 672, 160, True, 'HS', 2), (5, 960, 160, True, 'HS', 1), (5, 960, 160, True, 'HS', 1)],
        'small': [(3, 16, 16, True, 'RE', 2), (3, 72, 24, False, 'RE', 2), (3, 88, 24, False, 'RE', 1),
                  (5, 96, 40, True, 'HS', 2), (5, 240, 40, True, 'HS', 1), (5, 240, 40, True, 'HS', 1),
                  (5, 120, 48, True, 'HS', 1), (5, 144, 48, True, 'HS', 1), (5, 288, 96, True, 'HS', 2),
                  (5, 576, 96, True, 'HS', 1), (5, 576, 96, True, 'HS', 1)],
    }
    acts = {'RE': nn.ReLU, 'HS': nn.Hardswish}

    def __init__(self, arch='large', widen_factor=1.0, out_indices=(2, 3, 4), frozen_stages=-1,
                 norm_eval=False, with_cp=False, init_cfg=KAIMING_INIT):
        super().__init__(out_indices, frozen_stages, norm_eval, with_cp, init_cfg)
        if arch not in self.arch_settings:
            raise KeyError(f'arch={arch!r}; choose from {sorted(self.arch_settings)}')
        in_channels = make_divisible(16 * widen_factor)
        blocks = [(ConvNormAct(3, in_channels, 3, 2, act=nn.Hardswish, norm_kwargs=V3_NORM), in_channels, 2)]
        for kernel, expanded, out_channels, se, act, stride in self.arch_settings[arch]:
            hidden = make_divisible(expanded * widen_factor)
            out_channels = make_divisible(out_channels * widen_factor)
            se_channels = make_divisible(hidden // 4) if se else None
            block = InvertedResidual(in_channels, hidden, out_channels, kernel, stride, self.acts[act],
                                     se_channels=se_channels, norm_kwargs=V3_NORM)
            blocks.append((block, out_channels, stride))
            in_channels = out_channels
        last_channels = 6 * in_channels
        blocks.append((ConvNormAct(in_channels, last_channels, 1, act=nn.Hardswish, norm_kwargs=V3_NORM),
                       last_channels, 1))
        self.layers, self.layer_channels, self.layer_strides = split_stages(blocks)
        self._setup_outputs()

    @classmethod
    def convert_torchvision(cls, tv_state: dict, **kwargs) -> OrderedDict:
        """torchvision ``mobilenet_v3_{arch}(width_mult=w).state_dict()`` -> this class's keys (pass
        ``arch`` and ``widen_factor=w`` in ``kwargs``); the classifier is dropped."""
        with torch.device('meta'):
            template = cls(**kwargs)
        return convert_by_block_order(tv_state, template)
