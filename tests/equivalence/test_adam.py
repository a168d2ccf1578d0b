"""The from-scratch Adam (Algorithm 1) gives the same parameters as torch.optim.Adam / AdamW, with
and without amsgrad, after 100 steps on a real model: a small convolutional net on the digits."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from milestones.core.data import load_digits
from milestones.optimization.adam.model import Adam


def digit_net(dtype: torch.dtype) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(8 * 4 * 4, 32), nn.Tanh(), nn.Linear(32, 10)).to(dtype)


def train(net: nn.Module, optimizer: torch.optim.Optimizer, steps: int = 100) -> list[float]:
    data = load_digits(8)
    dtype = next(net.parameters()).dtype
    generator = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(steps):
        index = torch.randint(len(data.x_train), (32,), generator=generator)
        loss = F.cross_entropy(net(data.x_train[index].to(dtype)), data.y_train[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


CASES = [  # (our options, the torch optimizer, its options)
    (dict(lr=1e-3), torch.optim.Adam, dict(lr=1e-3)),
    (dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6), torch.optim.Adam, dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6)),
    (dict(lr=1e-3, weight_decay=0.05), torch.optim.Adam, dict(lr=1e-3, weight_decay=0.05)),
    (dict(lr=1e-3, amsgrad=True), torch.optim.Adam, dict(lr=1e-3, amsgrad=True)),
    (dict(lr=1e-3, weight_decay=0.1, decoupled=True), torch.optim.AdamW, dict(lr=1e-3, weight_decay=0.1)),
    (dict(lr=1e-3, weight_decay=0.1, decoupled=True, amsgrad=True), torch.optim.AdamW,
     dict(lr=1e-3, weight_decay=0.1, amsgrad=True)),
]


@pytest.mark.parametrize("ours_options,reference,reference_options", CASES,
                         ids=["adam", "adam-betas-eps", "adam-l2", "amsgrad", "adamw", "adamw-amsgrad"])
def test_same_parameters_as_torch_after_100_steps(ours_options, reference, reference_options):
    ours, theirs = digit_net(torch.float64), digit_net(torch.float64)
    ours_losses = train(ours, Adam(ours.parameters(), **ours_options))
    theirs_losses = train(theirs, reference(theirs.parameters(), **reference_options))
    assert ours_losses[-1] < ours_losses[0]  # it really trained
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert_close(torch.tensor(ours_losses), torch.tensor(theirs_losses), rtol=1e-10, atol=1e-12)


def test_same_parameters_in_float32():
    ours, theirs = digit_net(torch.float32), digit_net(torch.float32)
    train(ours, Adam(ours.parameters(), lr=1e-3, weight_decay=0.01, decoupled=True))
    train(theirs, torch.optim.AdamW(theirs.parameters(), lr=1e-3, weight_decay=0.01))
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_variants_really_differ():
    """AdamW is not Adam with an L2 penalty, and AMSGrad is not Adam: the options change the path."""
    paths = {}
    for name, options in {"l2": dict(weight_decay=0.1), "decoupled": dict(weight_decay=0.1, decoupled=True),
                          "plain": {}, "amsgrad": dict(amsgrad=True)}.items():
        net = digit_net(torch.float64)
        train(net, Adam(net.parameters(), lr=3e-3, **options), steps=30)
        paths[name] = torch.cat([p.detach().flatten() for p in net.parameters()])
    assert (paths["l2"] - paths["decoupled"]).abs().max() > 1e-4
    assert (paths["plain"] - paths["amsgrad"]).abs().max() > 1e-6


def test_first_step_sizes_with_and_without_bias_correction():
    """Step 1 moves every weight by lr * sign(g) with correction, and by lr (1 - b1) / sqrt(1 - b2)
    times sign(g) without it (eps aside)."""
    g = torch.tensor([0.3, -2.0, 1e-3], dtype=torch.float64)
    for correct, expected in [(True, 1e-2), (False, 1e-2 * 0.1 / 0.01)]:
        w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
        optimizer = Adam([w], lr=1e-2, betas=(0.9, 0.9999), eps=0.0, bias_correction=correct)
        w.grad = g.clone()
        optimizer.step()
        assert_close(w.detach(), -expected * g.sign(), rtol=1e-12, atol=0)


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError):
        Adam([torch.zeros(1, requires_grad=True)], betas=(0.9, 1.0))
