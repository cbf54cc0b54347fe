"""The backbones' CPU speed fixes (``det/models/backbones/layers.py``): strided depthwise convolutions
run in fp32 under bf16 autocast, and narrow BatchNorms normalise channels-last input in NCHW. Only
those layers change, their numbers are those of the plain layers, and the state dict is untouched."""
import pytest
import torch
import torch.nn.functional as F
import torchvision

from det.models.backbones import MobileNetV1, MobileNetV2
from det.models.backbones.layers import Fp32StridedDepthwiseConv2d, NarrowBatchNorm2d


def strided_depthwise(module):
    return [m for m in module.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1
            and m.groups == m.in_channels == m.out_channels and max(m.stride) > 1]


@pytest.mark.parametrize('backbone, reference', [
    (lambda: MobileNetV2(out_indices=(4,)), lambda: torchvision.models.mobilenet_v2().features),
    (lambda: MobileNetV1(out_indices=(4,)), None),
])
def test_only_strided_depthwise_convs_switch(backbone, reference):
    model = backbone()
    switched = [m for m in model.modules() if isinstance(m, Fp32StridedDepthwiseConv2d)]
    assert switched and switched == strided_depthwise(model)
    if reference is not None:  # torchvision's MobileNetV2 has one strided depthwise conv per s=2 row
        assert len(switched) == len(strided_depthwise(reference()))
    plain = [m for m in model.modules() if type(m) is torch.nn.Conv2d]
    assert all(max(m.stride) == 1 or m.groups == 1 or m.groups != m.in_channels for m in plain)


def test_fp32_under_autocast_and_plain_outside():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(32, 32, 3, 2, 1, groups=32, bias=False)
    fast = Fp32StridedDepthwiseConv2d(32, 32, 3, 2, 1, groups=32, bias=False)
    fast.load_state_dict(conv.state_dict())
    assert list(fast.state_dict()) == ['weight']
    x = torch.randn(2, 32, 40, 40).to(torch.bfloat16).float()  # exactly representable in bf16
    reference = F.conv2d(x, conv.weight, stride=2, padding=1, groups=32)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = fast(x.to(torch.bfloat16))
        bf16 = conv(x)
    assert out.dtype == torch.float32 and bf16.dtype == torch.bfloat16
    torch.testing.assert_close(out, reference, rtol=1e-5, atol=1e-5)
    # the plain conv's bf16 result is much further from fp32: the switch is what keeps the precision
    assert (bf16.float() - reference).abs().max() > 10 * (out - reference).abs().max()
    torch.testing.assert_close(fast(x), reference, rtol=1e-5, atol=1e-5)


def test_gradients_reach_the_weights_under_autocast():
    torch.manual_seed(0)
    model = MobileNetV2(widen_factor=0.5, out_indices=(2,)).train()
    x = torch.randn(2, 3, 64, 64)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = model(x)[0]
    out.float().square().mean().backward()
    grads = [m.weight.grad for m in model.modules() if isinstance(m, Fp32StridedDepthwiseConv2d)]
    assert grads and all(g is not None and g.dtype == torch.float32 and g.abs().sum() > 0 for g in grads)


def test_narrow_batchnorms_switch_and_match_the_plain_layer():
    narrow = [m for m in MobileNetV2(widen_factor=0.5, out_indices=(4,)).modules()
              if isinstance(m, NarrowBatchNorm2d)]
    assert [m.num_features for m in narrow] == [8]  # the first block's projection at width 0.5
    torch.manual_seed(0)
    plain, fast = torch.nn.BatchNorm2d(8), NarrowBatchNorm2d(8)
    for bn in (plain, fast):
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-1, 1)
    fast.load_state_dict(plain.state_dict())
    x = torch.randn(4, 8, 16, 16) * 3 + 1
    x_cl = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    x = x.requires_grad_()
    grad = torch.randn(4, 8, 16, 16)
    out, out_cl = plain(x), fast(x_cl)
    assert out_cl.is_contiguous(memory_format=torch.channels_last)
    out.backward(grad)
    out_cl.backward(grad)
    torch.testing.assert_close(out_cl, out)
    torch.testing.assert_close(x_cl.grad, x.grad)
    torch.testing.assert_close(fast.weight.grad, plain.weight.grad)
    torch.testing.assert_close(fast.running_var, plain.running_var)


def test_the_workarounds_apply_to_cpu_tensors_only(monkeypatch):
    """What each layer chooses per device: the fp32 convolution and the NCHW copy for CPU tensors only;
    a GPU tensor (here a 'meta' one, which no CPU kernel sees either) goes through the plain layer with
    its dtype and layout (cuDNN has no bf16 depthwise cliff and normalises channels-last directly)."""
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert Fp32StridedDepthwiseConv2d.runs_in_fp32(torch.device('cpu'))
        assert not Fp32StridedDepthwiseConv2d.runs_in_fp32(torch.device('cuda'))
    assert not Fp32StridedDepthwiseConv2d.runs_in_fp32(torch.device('cpu'))  # outside autocast
    channels_last = dict(memory_format=torch.channels_last)
    assert NarrowBatchNorm2d.normalises_in_nchw(torch.empty(2, 8, 4, 4).contiguous(**channels_last))

    seen = []  # the input each plain layer receives
    monkeypatch.setattr(torch.nn.BatchNorm2d, 'forward', lambda self, x: seen.append(x) or x)
    monkeypatch.setattr(torch.nn.Conv2d, 'forward', lambda self, x: seen.append(x) or x)
    x = torch.empty(2, 8, 4, 4, device='meta', dtype=torch.bfloat16).contiguous(**channels_last)
    NarrowBatchNorm2d(8, device='meta')(x)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        Fp32StridedDepthwiseConv2d(8, 8, 3, 2, 1, groups=8, device='meta')(x)
    assert [(t.dtype, t.is_contiguous(**channels_last), t.is_contiguous()) for t in seen] == [
        (torch.bfloat16, True, False)] * 2
