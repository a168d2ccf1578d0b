"""The from-scratch rectifier equals F.relu, forward and backward, and the sparsity measure counts
exact zeros."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from milestones.optimization.relu.model import DeepMLP, Rectifier, sparsity


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rectifier_forward_and_backward_equal_relu(dtype):
    torch.manual_seed(0)
    x = torch.randn(64, 33, dtype=dtype)
    x[0, :5] = 0.0  # the kink: both must output 0 and pass no gradient there
    ours_in, theirs_in = x.clone().requires_grad_(), x.clone().requires_grad_()
    upstream = torch.randn_like(x)
    ours, theirs = Rectifier()(ours_in), F.relu(theirs_in)
    (ours * upstream).sum().backward()
    (theirs * upstream).sum().backward()
    assert_close(ours, theirs, rtol=0, atol=0)
    assert_close(ours_in.grad, theirs_in.grad, rtol=0, atol=0)
    assert (ours_in.grad[0, :5] == 0).all()


def test_rectifier_passes_gradcheck():
    torch.manual_seed(1)
    x = torch.randn(20, dtype=torch.float64)
    x = torch.where(x.abs() < 1e-3, torch.full_like(x, 0.5), x).requires_grad_()  # away from the kink
    assert torch.autograd.gradcheck(Rectifier(), (x,))


def test_deep_mlp_with_rectifier_equals_the_same_net_with_nn_relu():
    torch.manual_seed(2)
    ours = DeepMLP(64, 32, 6, 10, "rectifier").double()
    reference = nn.Sequential(*[nn.Sequential(block[0], nn.ReLU()) for block in ours.hidden], ours.readout)
    x = torch.rand(16, 1, 8, 8, dtype=torch.float64)
    y = torch.randint(10, (16,))
    F.cross_entropy(ours(x), y).backward()
    ours_grads = [p.grad.clone() for p in ours.parameters()]
    ours.zero_grad()
    F.cross_entropy(reference(x.flatten(1)), y).backward()
    assert_close(ours(x), reference(x.flatten(1)), rtol=1e-12, atol=1e-12)
    for g, p in zip(ours_grads, ours.parameters()):
        assert_close(g, p.grad, rtol=1e-12, atol=1e-14)


def test_sparsity_counts_exact_zeros():
    h = torch.tensor([[0.0, 1e-30, 2.0, 0.0], [0.0, 0.0, -0.0, 3.0]])
    assert sparsity(h) == pytest.approx(5 / 8)  # 1e-30 is small but not zero; -0.0 is zero
    torch.manual_seed(3)
    x = torch.randn(1000, 50)
    assert sparsity(Rectifier()(x)) == pytest.approx((F.relu(x) == 0).float().mean().item())
    assert sparsity(torch.tanh(x)) == 0.0  # tanh never outputs an exact zero for nonzero input


def test_representations_are_the_hidden_layers():
    torch.manual_seed(4)
    net = DeepMLP(64, 16, 3, 10, "tanh")
    x = torch.rand(5, 1, 8, 8)
    layers = net.representations(x)
    assert [h.shape for h in layers] == [(5, 16)] * 3
    assert_close(net(x), net.readout(layers[-1]))
