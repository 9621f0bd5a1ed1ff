"""The model registry's architectures (Appendix A): ResNet-32's shape, shortcut and init."""

import pytest
import torch
from torch import nn

from m2m_pipeline.models import create_model, list_models
from m2m_pipeline.models.nets import ResNetCifar
from m2m_pipeline.utils import M2mError


def cifar_model(name: str, k: int = 10) -> nn.Module:
    return create_model(name, input_shape=(3, 32, 32), num_classes=k, mean=[0.5] * 3, std=[0.25] * 3)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_resnet32_has_he_et_al_parameter_count():
    # Hand count (He et al. 2016, Table 6: 0.46M), option A has no shortcut parameters:
    #   stem conv 3*16*9 = 432, BN 32
    #   stage 16: 5 blocks * (2 * 16*16*9 + 2 * 32)                      =  23,360
    #   stage 32: (16*32*9 + 32*32*9 + 128) + 4 * (2 * 32*32*9 + 128)     =  88,192
    #   stage 64: (32*64*9 + 64*64*9 + 256) + 4 * (2 * 64*64*9 + 256)     = 351,488
    #   head 64*10 + 10 = 650                                      total  = 464,154
    assert n_params(cifar_model("resnet32")) == 464_154
    # 100 classes only widen the head: 64*100 + 100 instead of 650
    assert n_params(cifar_model("resnet32", 100)) == 464_154 - 650 + 6_500


def test_projection_variant_is_registered_and_adds_two_1x1_convs():
    assert {"resnet32", "resnet32_proj"} <= set(list_models())
    # two downsampling blocks, each 1x1 conv (cin*cout) + BN (2*cout): 16*32 + 64 + 32*64 + 128
    assert n_params(cifar_model("resnet32_proj")) == 464_154 + 16 * 32 + 64 + 32 * 64 + 128
    with pytest.raises(M2mError, match="bad model_args"):
        create_model("resnet32", input_shape=(3, 32, 32), num_classes=10, mean=[0.0] * 3, std=[1.0] * 3,
                     shortcut="C")


def test_option_a_shortcut_subsamples_and_zero_pads_channels():
    net = ResNetCifar(3, 10)
    block = net.layers[5]               # first block of the 32-channel stage: stride 2, 16 -> 32
    assert block.stride == 2 and block.shortcut is None
    x = torch.randn(2, 16, 8, 8)
    skip = block.skip(x)
    assert skip.shape == (2, 32, 4, 4)
    torch.testing.assert_close(skip[:, 8:24], x[:, :, ::2, ::2], rtol=0, atol=0)
    assert skip[:, :8].abs().sum() == 0 and skip[:, 24:].abs().sum() == 0
    # an identity block's skip is the input itself
    assert net.layers[6].skip(skip) is skip


def test_resnet32_uses_kaiming_normal_init_and_runs():
    torch.manual_seed(0)
    net = ResNetCifar(3, 10)
    conv = net.layers[14].conv2           # 64 -> 64, fan_in 64*9: He std sqrt(2/576)
    std = conv.weight.std().item()
    assert abs(std - (2 / 576) ** 0.5) < 0.003
    head_std = net.head.weight.std().item()   # fan_in 64: sqrt(2/64)
    assert abs(head_std - (2 / 64) ** 0.5) < 0.02
    out = cifar_model("resnet32").eval()(torch.rand(3, 3, 32, 32))
    assert out.shape == (3, 10) and torch.isfinite(out).all()


def test_inference_copy_folds_batchnorm_exactly_and_tracks_weight_updates():
    from m2m_pipeline.models.folding import frozen, inference_copy

    torch.manual_seed(1)
    net = cifar_model("resnet32")
    for m in net.modules():                    # BN statistics far from the identity map
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.3, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    net.eval()
    fast = inference_copy(net)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())   # all 31 BNs folded
    assert not any(p.requires_grad for p in fast.parameters())
    assert all(p.requires_grad for p in net.parameters())                   # the original is untouched
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        want, got = net(x), fast(x)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * want.abs().max().item())
    assert inference_copy(net) is fast                                       # cached
    with torch.no_grad():
        net.net.head.bias.add_(1.0)                                          # an in-place weight update
    refreshed = inference_copy(net)
    assert refreshed is not fast
    with torch.no_grad():
        torch.testing.assert_close(refreshed(x), net(x), rtol=1e-4, atol=1e-4 * want.abs().max().item())
    mlp = create_model("mlp", input_shape=(5,), num_classes=3, mean=[0.3], std=[0.2])
    assert inference_copy(mlp) is mlp                                        # no BN: nothing to fold
    small = create_model("small_cnn", input_shape=(1, 8, 8), num_classes=3, mean=[0.0], std=[1.0])
    assert inference_copy(small) is not small
    with frozen(mlp):
        assert not any(p.requires_grad for p in mlp.parameters())
    assert all(p.requires_grad for p in mlp.parameters())
