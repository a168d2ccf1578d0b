"""Our BatchNorm equals nn.BatchNorm1d / nn.BatchNorm2d: outputs, gradients and running statistics,
in training and in eval mode; and the paper's closed-form backward equals autograd."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from milestones.optimization.batchnorm.model import MLP, BatchNorm, batch_norm_backward

SHAPES = [((16, 6), nn.BatchNorm1d), ((8, 6, 5), nn.BatchNorm1d), ((4, 6, 5, 7), nn.BatchNorm2d)]


def twins(reference_type, affine=True, momentum=0.1):
    ours = BatchNorm(6, eps=1e-5, momentum=momentum, affine=affine).double()
    reference = reference_type(6, eps=1e-5, momentum=momentum, affine=affine).double()
    if affine:  # non-trivial gamma and beta, so that a mix-up between them would show
        with torch.no_grad():
            ours.weight.uniform_(0.5, 1.5)
            ours.bias.normal_()
            reference.weight.copy_(ours.weight)
            reference.bias.copy_(ours.bias)
    return ours, reference


@pytest.mark.parametrize("shape,reference_type", SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_training_and_eval_match_pytorch(shape, reference_type, affine):
    torch.manual_seed(0)
    ours, reference = twins(reference_type, affine)
    for step in range(3):  # several steps, so the running averages are compared after updates
        x = (torch.randn(shape, dtype=torch.float64) * 3 + 2).requires_grad_()
        x_ref = x.detach().clone().requires_grad_()
        upstream = torch.randn(shape, dtype=torch.float64)
        y, y_ref = ours(x), reference(x_ref)
        assert_close(y, y_ref, rtol=1e-10, atol=1e-10)
        (y * upstream).sum().backward()
        (y_ref * upstream).sum().backward()
        assert_close(x.grad, x_ref.grad, rtol=1e-9, atol=1e-10)
        if affine:
            assert_close(ours.weight.grad, reference.weight.grad, rtol=1e-9, atol=1e-10)
            assert_close(ours.bias.grad, reference.bias.grad, rtol=1e-9, atol=1e-10)
        assert_close(ours.running_mean, reference.running_mean, rtol=1e-12, atol=1e-12)
        assert_close(ours.running_var, reference.running_var, rtol=1e-12, atol=1e-12)
    assert ours.num_batches_tracked.item() == reference.num_batches_tracked.item() == 3

    ours.eval(), reference.eval()
    x = torch.randn(shape, dtype=torch.float64).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    y, y_ref = ours(x), reference(x_ref)
    assert_close(y, y_ref, rtol=1e-10, atol=1e-10)
    y.sum().backward()
    y_ref.sum().backward()
    assert_close(x.grad, x_ref.grad, rtol=1e-10, atol=1e-10)


def test_state_dicts_are_interchangeable():
    torch.manual_seed(1)
    reference = nn.BatchNorm2d(6)
    reference(torch.randn(4, 6, 3, 3) * 2 + 1)  # move the running statistics off their defaults
    ours = BatchNorm(6)
    ours.load_state_dict(reference.state_dict())
    ours.eval(), reference.eval()
    x = torch.randn(2, 6, 3, 3)
    assert_close(ours(x), reference(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("m", [2, 5, 64])
def test_papers_backward_equations_equal_autograd(m):
    torch.manual_seed(m)
    x = torch.randn(m, 7, dtype=torch.float64).requires_grad_()
    layer = BatchNorm(7).double()
    with torch.no_grad():
        layer.weight.uniform_(0.5, 2.0)
    upstream = torch.randn(m, 7, dtype=torch.float64)
    (layer(x) * upstream).sum().backward()
    with torch.no_grad():
        inv_std = torch.rsqrt(x.var(0, unbiased=False) + layer.eps)
        x_hat = (x - x.mean(0)) * inv_std
        grad_x, grad_gamma, grad_beta = batch_norm_backward(upstream, x_hat, inv_std, layer.weight)
    assert_close(grad_x, x.grad, rtol=1e-9, atol=1e-10)
    assert_close(grad_gamma, layer.weight.grad, rtol=1e-10, atol=1e-10)
    assert_close(grad_beta, layer.bias.grad, rtol=1e-10, atol=1e-10)


def test_training_output_has_zero_mean_unit_variance_per_channel():
    torch.manual_seed(2)
    y = BatchNorm(3, affine=False)(torch.randn(8, 3, 4, 4) * 5 - 3)
    assert_close(y.mean((0, 2, 3)), torch.zeros(3), rtol=0, atol=1e-5)
    assert_close(y.var((0, 2, 3), unbiased=False), torch.ones(3), rtol=0, atol=1e-3)


def test_a_single_value_per_channel_is_refused_in_training():
    with pytest.raises(ValueError):
        BatchNorm(3)(torch.randn(1, 3))
    with pytest.raises(ValueError):
        BatchNorm(3)(torch.randn(4, 5))  # wrong number of channels


def test_mlp_puts_batch_norm_before_each_hidden_nonlinearity():
    net = MLP([64, 10, 10, 10], batch_norm=True)
    kinds = [type(layer).__name__ for layer in net.layers]
    assert kinds == ["Linear", "BatchNorm", "Sigmoid", "Linear", "BatchNorm", "Sigmoid", "Linear"]
    assert net.layers[0].bias is None and net.layers[-1].bias is not None
    assert net(torch.rand(5, 1, 8, 8)).shape == (5, 10)
