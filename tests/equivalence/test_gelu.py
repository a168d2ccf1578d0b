"""Our exact and tanh-approximate GELU equal F.gelu(approximate='none' | 'tanh'), forward and backward,
and the stochastic gate has GELU as its mean; the paper's MLP places its dropout as the experiment
needs and draws the same random numbers whatever its nonlinearity; the experiment's curve statistics."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from milestones.optimization.gelu.experiment import area, median_curve
from milestones.optimization.gelu.model import (
    GELU,
    DeepMLP,
    gelu,
    gelu_tanh,
    standard_normal_cdf,
    stochastic_gate,
    unit_norm_rows_,
)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_matches_pytorch_forward_and_backward(approximate, dtype, tol):
    torch.manual_seed(0)
    x = torch.cat([torch.linspace(-8, 8, 401, dtype=dtype), torch.randn(1000, dtype=dtype) * 3]).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    ours = GELU(approximate)(x)
    reference = F.gelu(x_ref, approximate=approximate)
    assert_close(ours, reference, rtol=tol, atol=tol)
    upstream = torch.randn_like(x)
    (ours * upstream).sum().backward()
    (reference * upstream).sum().backward()
    assert_close(x.grad, x_ref.grad, rtol=tol, atol=tol)


def test_module_agrees_with_nn_gelu():
    x = torch.randn(4, 7, dtype=torch.float64)
    for approximate in ("none", "tanh"):
        assert_close(GELU(approximate)(x), nn.GELU(approximate)(x), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError):
        GELU("sigmoid")


def test_exact_and_tanh_forms_differ_only_slightly():
    x = torch.linspace(-6, 6, 2001, dtype=torch.float64)
    difference = (gelu(x) - gelu_tanh(x)).abs().max().item()
    assert 1e-5 < difference < 1e-3  # close, but genuinely two different functions


def test_known_values():
    x = torch.tensor([0.0, 1.0, -1.0], dtype=torch.float64)
    assert_close(standard_normal_cdf(x), torch.tensor([0.5, 0.8413447460685429, 0.15865525393145707],
                                                      dtype=torch.float64), rtol=0, atol=1e-15)
    assert_close(gelu(x), x * standard_normal_cdf(x), rtol=0, atol=0)
    minimum = gelu(torch.tensor(-0.7517915, dtype=torch.float64)).item()
    assert minimum == pytest.approx(-0.16997, abs=1e-5)


def test_stochastic_gate_keeps_or_zeroes_and_averages_to_gelu():
    generator = torch.Generator().manual_seed(0)
    x = torch.tensor([-2.0, -0.5, 0.5, 2.0], dtype=torch.float64)
    draws = stochastic_gate(x.expand(400_000, -1), generator)
    assert ((draws == 0) | (draws == x)).all()
    keep = standard_normal_cdf(x)
    standard_error = x.abs() * (keep * (1 - keep) / 400_000).sqrt()
    assert ((draws.mean(0) - gelu(x)).abs() <= 5 * standard_error).all()
    assert ((draws.mean(0) - x.clamp_min(0)).abs() > 50 * standard_error).any()  # not ReLU's mean


def test_deep_mlp_shape_and_depth():
    model = DeepMLP(64, 16, 8, 10, GELU)
    assert sum(isinstance(m, nn.Linear) for m in model.modules()) == 9
    assert sum(isinstance(m, GELU) for m in model.modules()) == 8
    assert model(torch.rand(3, 1, 8, 8)).shape == (3, 10)
    assert math.isfinite(model(torch.rand(3, 1, 8, 8)).sum().item())


def test_deep_mlp_dropout_after_every_hidden_layer_and_off_in_eval():
    model = DeepMLP(64, 16, 8, 10, GELU, dropout=0.5)
    assert sum(isinstance(m, nn.Dropout) and m.p == 0.5 for m in model.modules()) == 8
    x = torch.rand(5, 1, 8, 8)
    assert not torch.equal(model(x), model(x))  # training mode: fresh masks each pass
    model.eval()
    assert_close(model(x), model(x), rtol=0, atol=0)


def test_unit_norm_rows_keeps_the_mean_square_of_a_linear_layers_input():
    torch.manual_seed(0)
    model = unit_norm_rows_(DeepMLP(64, 512, 2, 10, nn.Identity))
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    for layer in linears:
        assert_close(layer.weight.norm(dim=1), torch.ones(layer.out_features))
        assert not layer.bias.any()
    x = torch.randn(4096, 64)
    hidden = linears[0](x)  # each unit: w . x with |w| = 1, so E[(w . x)^2] = E|x|^2 / 64 = E[x_i^2]
    assert hidden.square().mean().item() == pytest.approx(x.square().mean().item(), rel=0.1)


def test_curve_area_is_the_geometric_mean_and_the_median_is_pointwise():
    assert area([0.5, 0.5, 0.5]) == pytest.approx(0.5)
    assert area([1.0, 0.01]) == pytest.approx(0.1)  # each factor of ten weighs alike
    assert median_curve([[3.0, 1.0], [1.0, 5.0], [2.0, 2.0]]) == [2.0, 2.0]


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_every_nonlinearity_draws_the_same_random_numbers(dropout):
    """The experiment gives initialization k the same weights and minibatches for GELU, ReLU and ELU:
    building and training the nets must consume the global RNG identically, dropout masks included."""
    initial_weights, next_draws = [], []
    for activation in (GELU, nn.ReLU, nn.ELU):
        torch.manual_seed(0)
        model = DeepMLP(64, 16, 8, 10, activation, dropout=dropout)
        initial_weights.append([p.detach().clone() for p in model.parameters()])
        for _ in range(3):  # a minibatch, then a forward and backward pass in training mode
            x = torch.rand(4, 64)
            model(x).sum().backward()
        next_draws.append(torch.rand(3))  # the next minibatch would be drawn from here
    for weights, draw in zip(initial_weights[1:], next_draws[1:]):
        assert_close(weights, initial_weights[0], rtol=0, atol=0)
        assert_close(draw, next_draws[0], rtol=0, atol=0)
