"""ResNet: the paper's parameter counts, the shortcut options, and that the plain counterpart is the
same network minus its shortcuts."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from milestones.optimization.resnet.model import BasicBlock, CifarResNet, ImageNetResNet, PadShortcut


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("depth,expected,paper", [(34, 21_797_672, 21.8e6), (50, 25_557_032, 25.6e6),
                                                  (18, 11_689_512, 11.7e6), (101, 44_549_160, 44.5e6),
                                                  (152, 60_192_808, 60.2e6)])
def test_imagenet_parameter_counts(depth, expected, paper):
    n = count(ImageNetResNet(depth))
    assert n == expected  # the exact counts of the reference (torchvision) implementation
    assert abs(n - paper) / paper < 0.005  # and the paper's rounded figures


def test_imagenet_resnet_34_output_and_downsampling():
    model = ImageNetResNet(34).eval()
    with torch.no_grad():
        features = model.blocks(model.stem(torch.randn(1, 3, 224, 224)))
    assert features.shape == (1, 512, 7, 7)  # 224 / 32


@pytest.mark.parametrize("n,params", [(3, 0.27e6), (5, 0.46e6), (9, 0.85e6), (18, 1.7e6)])
def test_cifar_family_depth_and_parameters(n, params):
    model = CifarResNet(n)
    convs_and_linear = sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules())
    assert model.depth == 6 * n + 2 == convs_and_linear  # option A adds no weighted layers
    assert abs(count(model) - params) / params < 0.03  # the paper's Table 6 column "# params"
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_plain_net_is_the_residual_net_without_shortcuts():
    torch.manual_seed(0)
    residual, plain = CifarResNet(2, residual=True).eval(), CifarResNet(2, residual=False).eval()
    plain.load_state_dict(residual.state_dict())  # option A: the same parameters
    x = torch.randn(3, 3, 16, 16)
    assert not torch.allclose(residual(x), plain(x))
    # With every residual branch's last BN scale at zero, F(x) = 0 and each block passes its input on:
    with torch.no_grad():
        for block in residual.blocks:
            block.residual_branch[-1].weight.zero_()
            block.residual_branch[-1].bias.zero_()
        stem = residual.stem(x)
        expected = stem
        for block in residual.blocks:
            expected = torch.relu(block.shortcut(expected))
        assert_close(residual.blocks(stem), expected, rtol=0, atol=0)


def test_option_a_shortcut_subsamples_and_pads_with_zeros():
    x = torch.randn(2, 4, 6, 6)
    y = PadShortcut(4, 8, 2)(x)
    assert y.shape == (2, 8, 3, 3)
    assert_close(y[:, :4], x[:, :, ::2, ::2], rtol=0, atol=0)
    assert (y[:, 4:] == 0).all()


def test_option_b_is_a_projection_and_identity_needs_no_parameters():
    same = BasicBlock(16, 16, 1, shortcut="B")
    down = BasicBlock(16, 32, 2, shortcut="B")
    assert isinstance(same.shortcut, nn.Identity)
    assert isinstance(down.shortcut[0], nn.Conv2d) and down.shortcut[0].kernel_size == (1, 1)
    assert down(torch.randn(2, 16, 8, 8)).shape == (2, 32, 4, 4)
    with pytest.raises(ValueError):
        BasicBlock(16, 32, 2, shortcut="C")
