"""The from-scratch decayed SGD equals torch.optim.SGD(weight_decay=...), step by step, and the
penalty, the decoupled rule and the closed-form minimum are what the notes say."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from milestones.optimization.weight_decay.model import DecayedSGD, l2_penalty, optimal_decay, ridge_solution


def small_net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).double()


def train(net: nn.Module, optimizer: torch.optim.Optimizer, steps: int, seed: int = 0) -> None:
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(16, 6, generator=generator, dtype=torch.float64)
        y = torch.randn(16, 3, generator=generator, dtype=torch.float64)
        optimizer.zero_grad()
        ((net(x) - y) ** 2).mean().backward()
        optimizer.step()


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-3, 0.1])
def test_coupled_decay_equals_torch_sgd(momentum, weight_decay):
    ours, theirs = small_net(0), small_net(0)
    train(ours, DecayedSGD(ours.parameters(), lr=0.05, momentum=momentum, weight_decay=weight_decay), 50)
    train(theirs, torch.optim.SGD(theirs.parameters(), lr=0.05, momentum=momentum, weight_decay=weight_decay), 50)
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_per_group_settings_equal_torch_sgd():
    ours, theirs = small_net(1), small_net(1)
    groups = lambda net: [{"params": net[0].parameters(), "weight_decay": 0.2, "lr": 0.03},
                          {"params": net[2].parameters(), "weight_decay": 0.0}]
    train(ours, DecayedSGD(groups(ours), lr=0.1, momentum=0.5), 30)
    train(theirs, torch.optim.SGD(groups(theirs), lr=0.1, momentum=0.5), 30)
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_penalty_gradient_is_decay_times_weight():
    """Adding (lambda/2)|w|^2 to the loss gives the same step as weight_decay=lambda."""
    net = small_net(2)
    x, y = torch.randn(5, 6, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    loss = ((net(x) - y) ** 2).mean()
    plain = torch.autograd.grad(loss, list(net.parameters()), retain_graph=True)
    penalised = torch.autograd.grad(loss + l2_penalty(net.parameters(), 0.3), list(net.parameters()))
    for g, gp, w in zip(plain, penalised, net.parameters()):
        assert_close(gp, g + 0.3 * w, rtol=1e-12, atol=1e-14)


def test_decoupled_equals_coupled_without_momentum_and_differs_with_it():
    coupled, decoupled = small_net(3), small_net(3)
    train(coupled, DecayedSGD(coupled.parameters(), lr=0.05, weight_decay=0.1), 20)
    train(decoupled, DecayedSGD(decoupled.parameters(), lr=0.05, weight_decay=0.1, decoupled=True), 20)
    for a, b in zip(coupled.parameters(), decoupled.parameters()):
        assert_close(a, b, rtol=1e-12, atol=1e-14)

    coupled, decoupled = small_net(3), small_net(3)
    train(coupled, DecayedSGD(coupled.parameters(), lr=0.05, momentum=0.9, weight_decay=0.1), 20)
    train(decoupled, DecayedSGD(decoupled.parameters(), lr=0.05, momentum=0.9, weight_decay=0.1, decoupled=True), 20)
    gap = max((a - b).abs().max().item() for a, b in zip(coupled.parameters(), decoupled.parameters()))
    assert gap > 1e-4  # the decay no longer passes through the velocity, so the paths part


def test_decoupled_step_by_hand():
    """w <- (1 - lr*lambda) w - lr * b, with b <- mu b + g (decay kept out of b)."""
    torch.manual_seed(4)
    w = torch.randn(7, dtype=torch.float64, requires_grad=True)
    optimizer = DecayedSGD([w], lr=0.1, momentum=0.8, weight_decay=0.5, decoupled=True)
    velocity, expected = torch.zeros(7, dtype=torch.float64), w.detach().clone()
    for _ in range(5):
        optimizer.zero_grad()
        (w.sin().sum() + (w ** 3).sum()).backward()
        g = w.grad.detach().clone()
        velocity = 0.8 * velocity + g
        expected = (1 - 0.1 * 0.5) * expected - 0.1 * velocity
        optimizer.step()
        assert_close(w.detach(), expected, rtol=1e-12, atol=1e-14)


def test_ridge_solution_is_the_minimum_of_the_penalised_error():
    torch.manual_seed(5)
    x, y = torch.randn(3, 12, 5, dtype=torch.float64), torch.randn(3, 12, dtype=torch.float64)
    w = ridge_solution(x, y, 0.7).requires_grad_()
    error = 0.5 * ((x @ w.unsqueeze(-1)).squeeze(-1) - y).pow(2).sum() + l2_penalty([w], 0.7)
    (gradient,) = torch.autograd.grad(error, w)
    assert_close(gradient, torch.zeros_like(gradient), rtol=0, atol=1e-10)
    assert optimal_decay(4.0, 2.0) == 2.0


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError):
        DecayedSGD([torch.zeros(1, requires_grad=True)], lr=0.1, weight_decay=-1.0)
