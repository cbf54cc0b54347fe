"""Turns a collated batch into a normalised, padded float tensor on the model's device.

Normalisation and padding live here, not in the model, so export and pyramid inference see plain tensors.
"""
import torch
from mmengine.model import ImgDataPreprocessor

from det.registry import MODELS


@MODELS.register_module()
class DetDataPreprocessor(ImgDataPreprocessor):
    """mmengine's image preprocessor (BGR→RGB, mean/std, bottom-right padding to a multiple of
    ``pad_size_divisor``) that also records ``batch_input_shape`` and ``pad_shape`` in each sample's
    metainfo, which heads need to size their grids.

    Input: ``{'inputs': list of uint8 [3, H_i, W_i], 'data_samples': list[DetDataSample]}``.
    Output: ``{'inputs': float [B, 3, H, W], 'data_samples': ...}`` with H, W multiples of the divisor.

    ``channels_last=True`` returns the batch in channels-last (NHWC) memory format; shape and values are
    unchanged. CPU convolutions (oneDNN) then run in NHWC and hand NHWC to the next layer, so the whole
    network follows without converting the model (``tests/models/test_channels_last.py`` checks the
    backbone's output is NHWC). On AVX-512 / AMX CPUs that is faster, most of all under bf16 autocast
    (it saves the layout reorders around each oneDNN convolution). Losses, gradients and outputs equal
    the NCHW ones within float rounding.
    """

    def __init__(self, mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375),
                 bgr_to_rgb=True, pad_size_divisor=32, pad_value=0, channels_last: bool = False):
        super().__init__(mean=mean, std=std, pad_size_divisor=pad_size_divisor,
                         pad_value=pad_value, bgr_to_rgb=bgr_to_rgb)
        self.channels_last = channels_last

    def forward(self, data: dict, training: bool = False) -> dict:
        data = super().forward(data, training)
        if self.channels_last:
            data['inputs'] = data['inputs'].contiguous(memory_format=torch.channels_last)
        samples = data.get('data_samples')
        if samples is not None:
            batch_shape = tuple(data['inputs'].shape[-2:])
            for sample in samples:
                sample.set_metainfo(dict(batch_input_shape=batch_shape, pad_shape=batch_shape))
        return data
