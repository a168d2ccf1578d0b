"""ResNet: the paper's multiply-adds and torchvision's parameter counts for the ImageNet nets, the
shortcut options, that the plain counterpart is the same network minus its shortcuts, and forward and
backward equal to a functional rewrite."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from milestones.optimization.resnet.model import BasicBlock, Bottleneck, CifarResNet, ImageNetResNet, PadShortcut


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("depth,expected,rounded", [(34, 21_797_672, 21.8e6), (50, 25_557_032, 25.6e6),
                                                    (18, 11_689_512, 11.7e6), (101, 44_549_160, 44.5e6),
                                                    (152, 60_192_808, 60.2e6)])
def test_imagenet_parameter_counts(depth, expected, rounded):
    # The paper gives no parameter counts for its ImageNet nets (Table 1 gives FLOPs, tested below). These
    # are torchvision's published counts, exactly, and the rounded figures usually quoted from them.
    n = count(ImageNetResNet(depth))
    assert n == expected
    assert abs(n - rounded) / rounded < 0.005


def multiply_adds(model: nn.Module, size: int = 224) -> int:
    """Multiply-adds of one forward pass on a size x size image, counted by forward hooks: each Conv2d
    output element costs in_channels/groups * kh * kw, each Linear in * out. Batch norm, ReLU, pooling
    and the shortcut additions are not weight multiply-adds and are not counted. On the meta device, so
    only the shapes are computed."""
    total = 0

    def conv_hook(m: nn.Conv2d, inputs, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = m.kernel_size
        total += out.shape[1] * out.shape[2] * out.shape[3] * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, inputs, out: torch.Tensor) -> None:
        nonlocal total
        total += m.in_features * m.out_features

    handles = [m.register_forward_hook(conv_hook if isinstance(m, nn.Conv2d) else linear_hook)
               for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    model.eval()(torch.zeros(1, 3, size, size, device="meta"))
    for handle in handles:
        handle.remove()
    return total


def stride_in_first_1x1(model: ImageNetResNet) -> ImageNetResNet:
    """Our bottleneck, like torchvision's ("ResNet v1.5"), downsamples in its 3x3 convolution; the paper's
    released models downsample in the first 1x1, which costs fewer multiply-adds. Moves the stride there,
    in place (the parameters are unchanged)."""
    for block in model.blocks:
        if isinstance(block, Bottleneck) and block.residual_branch[3].stride == (2, 2):
            block.residual_branch[0].stride, block.residual_branch[3].stride = (2, 2), (1, 1)
    return model


# depth, the paper's Table 1 FLOPs (multiply-adds), torchvision's published GFLOPS for its (v1.5) models
IMAGENET_MULTIPLY_ADDS = [(34, 3.6e9, 3.66e9), (50, 3.8e9, 4.09e9), (18, 1.8e9, 1.81e9), (101, 7.6e9, 7.80e9),
                          (152, 11.3e9, 11.51e9)]


@pytest.mark.parametrize("depth,paper,torchvision", IMAGENET_MULTIPLY_ADDS)
def test_imagenet_multiply_adds(depth, paper, torchvision):
    # The paper prints two or three significant digits and does not say how it rounded or what it counted.
    # Our counts (FC layer included: 0.5M or 2M multiply-adds, under 0.06% of any total, so including it
    # or not cannot change the comparison) sit within 0.03e9 of the printed value at 18, 101 and 152
    # layers but 0.064e9 and 0.058e9 above it at 34 and 50, more than rounding to the nearest 0.1e9
    # explains. So the tolerance is one unit of the printed last digit, 0.1e9 (2.8% of 3.6e9); it still
    # rejects our ResNet-50 with its stride in the 3x3 (4.09e9, 0.29e9 above the paper).
    with torch.device("meta"):
        model = ImageNetResNet(depth)
    ours = multiply_adds(model)
    assert abs(ours - torchvision) < 0.005e9  # torchvision's figures, to the 2 decimals it publishes
    as_in_paper = multiply_adds(stride_in_first_1x1(model))
    assert abs(as_in_paper - paper) < 0.1e9
    if depth >= 50:  # the bottleneck nets: where the stride sits matters, and the tolerance can tell
        assert abs(ours - paper) > 0.1e9


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


# --- numerically, against a functional rewrite (F.conv2d, F.batch_norm with batch statistics) ---------


def conv(x: torch.Tensor, layer: nn.Conv2d) -> torch.Tensor:
    return torch.nn.functional.conv2d(x, layer.weight, None, layer.stride, layer.padding)


def batch_norm(x: torch.Tensor, layer: nn.BatchNorm2d) -> torch.Tensor:
    return torch.nn.functional.batch_norm(x, None, None, layer.weight, layer.bias, training=True, eps=layer.eps)


def reference_block(x: torch.Tensor, block: BasicBlock) -> torch.Tensor:
    """y = relu(F(x) + shortcut(x)), every operation written out from the block's weights."""
    layers = [m for m in block.residual_branch if not isinstance(m, nn.ReLU)]  # conv, bn, conv, bn[, conv, bn]
    out = x
    for i in range(0, len(layers), 2):
        out = batch_norm(conv(out, layers[i]), layers[i + 1])
        if i + 2 < len(layers):
            out = torch.relu(out)
    if isinstance(block.shortcut, nn.Identity):
        out = out + x
    elif isinstance(block.shortcut, PadShortcut):  # option A: subsample, then zero channels
        kept = x[:, :, ::block.shortcut.stride, ::block.shortcut.stride]
        out = out + torch.cat([kept, torch.zeros(len(x), block.shortcut.extra, *kept.shape[2:], dtype=x.dtype)], 1)
    elif block.shortcut is not None:  # option B: a strided 1x1 convolution and batch norm
        out = out + batch_norm(conv(x, block.shortcut[0]), block.shortcut[1])
    return torch.relu(out)


def reference_cifar(x: torch.Tensor, model: CifarResNet) -> torch.Tensor:
    x = torch.relu(batch_norm(conv(x, model.stem[0]), model.stem[1]))
    for block in model.blocks:
        x = reference_block(x, block)
    return x.mean((2, 3)) @ model.classifier.weight.T + model.classifier.bias


def assert_same_forward_and_gradients(model: nn.Module, reference, x: torch.Tensor) -> None:
    params = list(model.parameters())
    out, expected = model(x), reference(x, model)
    assert_close(out, expected, rtol=1e-10, atol=1e-10)
    weights = torch.randn_like(out)  # a random linear loss, so every output's gradient counts
    grads = torch.autograd.grad((out * weights).sum(), params)
    expected_grads = torch.autograd.grad((expected * weights).sum(), params)
    for (name, _), g, e in zip(model.named_parameters(), grads, expected_grads):
        assert_close(g, e, rtol=1e-9, atol=1e-10, msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("residual", [True, False])
def test_cifar_resnet_equals_a_functional_rewrite_forward_and_backward(residual):
    torch.manual_seed(0)
    model = CifarResNet(2, residual=residual, widths=(4, 8, 16)).double().train()
    assert_same_forward_and_gradients(model, reference_cifar, torch.randn(4, 3, 12, 12, dtype=torch.float64))


@pytest.mark.parametrize("block", [BasicBlock(8, 16, 2, shortcut="B"), BasicBlock(8, 8, 1, shortcut="B"),
                                   Bottleneck(8, 4, 2, shortcut="B"), Bottleneck(16, 4, 1, shortcut="B")])
def test_blocks_with_projection_shortcuts_equal_a_functional_rewrite(block):
    torch.manual_seed(1)
    for layer in block.modules():  # non-trivial batch-norm affine parameters
        if isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, 0.3)
            nn.init.normal_(layer.bias, 0.0, 0.3)
    block = block.double().train()
    c_in = block.residual_branch[0].in_channels
    assert_same_forward_and_gradients(block, reference_block, torch.randn(3, c_in, 8, 8, dtype=torch.float64))
