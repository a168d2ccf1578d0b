"""AlexNet's local response normalization equals nn.LocalResponseNorm, forward and backward, the
full network has the paper's shape: 224 x 224 x 3 in, 1000 out, about 60 million parameters, and
Figure 1's four-layer net starts from the same weights whichever nonlinearity it has."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from milestones.foundations.alexnet.model import AlexNet, AlexNetConfig, LocalResponseNorm


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7])
@pytest.mark.parametrize("shape", [(2, 9, 5, 6), (3, 6, 11), (1, 12, 3, 4, 2)])
def test_local_response_norm_matches_pytorch(size, shape):
    torch.manual_seed(size)
    alpha, beta, k = 3e-2, 0.75, 2.0  # a large alpha, so the normalization visibly changes the values
    x = (3 * torch.randn(*shape, dtype=torch.float64)).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    ours = LocalResponseNorm(size, alpha, beta, k)(x)
    # PyTorch scales the *mean* of the squares by alpha, the paper the sum: alpha_torch = alpha * size.
    theirs = nn.LocalResponseNorm(size, alpha=alpha * size, beta=beta, k=k)(x_ref)
    assert (ours - x).abs().max() > 0.1  # the test would notice an identity
    assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    upstream = torch.randn_like(ours)
    ours.backward(upstream)
    theirs.backward(upstream)
    assert_close(x.grad, x_ref.grad, rtol=1e-10, atol=1e-12)


def test_local_response_norm_with_the_papers_constants_in_float32():
    torch.manual_seed(0)
    x = 20 * torch.randn(4, 96, 7, 7)
    ours = LocalResponseNorm()(x)  # k = 2, n = 5, alpha = 1e-4, beta = 0.75
    assert_close(ours, nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)(x), rtol=1e-5, atol=1e-5)


def test_local_response_norm_uses_a_window_across_channels_only():
    x = torch.zeros(1, 7, 2, 2)
    x[0, 3, 0, 0] = 10.0  # one strong activity
    y = LocalResponseNorm(size=3, alpha=1.0, beta=1.0, k=1.0)(torch.ones(1, 7, 2, 2) + x)
    # channels 2, 3, 4 at pixel (0, 0) see the strong neighbour; channel 1 and the other pixels do not
    assert y[0, 1, 0, 0] == pytest.approx(1 / (1 + 3))
    assert y[0, 2, 0, 0] == pytest.approx(1 / (1 + 1 + 121 + 1))
    assert y[0, 3, 1, 1] == pytest.approx(1 / (1 + 3))


def test_full_alexnet_has_the_papers_shape_and_sixty_million_parameters():
    model = AlexNet(AlexNetConfig.paper())
    count = sum(p.numel() for p in model.parameters())
    assert count == 60_965_224  # with the paper's two-GPU grouping of conv2, conv4 and conv5
    assert 58e6 < count < 62e6  # "60 million parameters"
    ungrouped = sum(p.numel() for p in AlexNet(AlexNetConfig(groups=1)).parameters())
    assert ungrouped == 62_378_344  # every kernel seeing every channel: the two-GPU split saves 1.4M
    feature_shapes = []
    hooks = [m.register_forward_hook(lambda m, i, o: feature_shapes.append(tuple(o.shape[1:])))
             for m in model.features if isinstance(m, nn.MaxPool2d)]
    with torch.no_grad():
        logits = model.eval()(torch.randn(2, 3, 224, 224))
    for h in hooks:
        h.remove()
    assert logits.shape == (2, 1000)
    assert feature_shapes == [(96, 27, 27), (256, 13, 13), (256, 6, 6)]  # 256 * 6 * 6 = 9216 into fc6


def test_small_alexnet_is_the_same_code_and_trains_end_to_end():
    torch.manual_seed(0)
    model = AlexNet(AlexNetConfig.small(image_size=16))
    assert [type(m) for m in model.features] == [type(m) for m in AlexNet(AlexNetConfig.paper()).features]
    x, y = torch.rand(8, 1, 16, 16), torch.arange(8)
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_largest_shape_task_is_deterministic_and_labels_the_biggest_shape():
    from milestones.core.data import make_largest_shape
    from milestones.core.data.shapes import COLORS

    x, y = make_largest_shape(64, size=16, shapes=3, noise=0.0, seed=3)
    x2, y2 = make_largest_shape(64, size=16, shapes=3, noise=0.0, seed=3)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert x.shape == (64, 3, 16, 16) and 0 <= y.min() and y.max() < 18 and len(y.unique()) > 9
    palette = torch.tensor(list(COLORS.values()))
    for image, label in zip(x, y):  # the labelled colour covers the target: >= 15 px (a triangle of radius 3.2 px)
        colour = palette[label % len(COLORS)].view(3, 1, 1)
        assert ((image - colour).abs().amax(0) < 1e-6).sum() >= 15


def test_four_layer_net_starts_from_the_same_weights_with_either_nonlinearity():
    from milestones.foundations.alexnet.model import FourLayerNet

    nets = {}
    for activation in ("relu", "tanh"):
        torch.manual_seed(7)
        nets[activation] = FourLayerNet(activation, in_channels=3, image_size=16, num_classes=18)
    relu, tanh = nets["relu"].state_dict(), nets["tanh"].state_dict()
    assert relu.keys() == tanh.keys() and len(relu) == 8  # 3 convolutions + 1 linear, weights and biases
    for key in relu:
        assert torch.equal(relu[key], tanh[key])
    # Nothing but the nonlinearity differs: no normalization, no dropout.
    kinds = {type(m) for m in nets["relu"].modules()} - {FourLayerNet, nn.Sequential}
    assert kinds == {nn.Conv2d, nn.ReLU, nn.MaxPool2d, nn.Flatten, nn.Linear}
    x = torch.randn(4, 3, 16, 16)
    assert nets["relu"](x).shape == (4, 18)
    assert not torch.allclose(nets["relu"](x), nets["tanh"](x))
