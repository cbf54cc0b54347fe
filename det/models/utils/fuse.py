"""Conv-BN fusion for inference: a BatchNorm that follows a convolution is an affine map per output
channel, so in eval mode it folds into the convolution's weight and bias, and the network runs one op
where it ran two (no BN pass over the feature map, no intermediate tensor).

The walk is module-based (no torch.fx trace): every ``nn.Sequential`` in the model is scanned for a
``Conv2d`` / ``ConvTranspose2d`` directly followed by a ``BatchNorm2d`` of matching channels, which is
how every Conv-BN pair in det is built (torchvision's ``Conv2dNormActivation`` in the backbones, the
YOLO v1 head's convs, CenterNet's deconv blocks). The folding itself is
``torch.nn.utils.fusion.fuse_conv_bn_eval``.
"""
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

_CONVS = (nn.Conv2d, nn.ConvTranspose2d)


def fuse_conv_bn(model: nn.Module) -> nn.Module:
    """Fold every ``BatchNorm2d`` that directly follows a convolution inside an ``nn.Sequential`` into
    that convolution, in place; the BatchNorm becomes ``nn.Identity`` (kept in the Sequential so that
    indices, and with them the names of the other layers, do not move).

    The model must be in eval mode (``model.eval()``): fusion uses the running statistics, which is what
    eval-mode BatchNorm computes with, and a fused model can no longer train its BN parameters.
    Outputs equal the unfused model's within float rounding (1e-4 on det's detectors).

    Fuse before converting the model to channels-last: the fused weights are new (contiguous) tensors.
    Returns ``model``, for chaining.
    """
    if model.training:
        raise RuntimeError('fuse_conv_bn needs an eval-mode model (call model.eval() first): fusion folds '
                           "BatchNorm's running statistics, which only eval mode uses")
    for seq in model.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        children = list(seq.named_children())
        for (conv_name, conv), (bn_name, bn) in zip(children, children[1:]):
            if _fusable(conv, bn):
                fused = fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose2d))
                setattr(seq, conv_name, fused)
                setattr(seq, bn_name, nn.Identity())
    return model


def _fusable(conv: nn.Module, bn: nn.Module) -> bool:
    """A conv (or a subclass, such as the backbones' fp32 strided depthwise conv) followed by a
    BatchNorm2d (or a subclass) over its output channels that has running statistics."""
    return (isinstance(conv, _CONVS) and isinstance(bn, nn.BatchNorm2d)
            and bn.num_features == conv.out_channels and bn.track_running_stats
            and bn.running_mean is not None)

