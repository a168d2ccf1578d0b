"""Gaussian Error Linear Units (Hendrycks & Gimpel, 2016), written from scratch.

ReLU gates its input by its sign, x * 1[x > 0]; dropout multiplies by a random 0/1 mask. GELU
merges the two ideas into one deterministic nonlinearity: multiply x by a Bernoulli mask that
keeps it with probability Phi(x), the standard normal CDF at x (inputs that are large compared to
typical inputs, which batch or layer normalization makes roughly N(0, 1), are likely kept), and
take the expected value:

    GELU(x) = E[x * m],  m ~ Bernoulli(Phi(x))
            = x * Phi(x)
            = x/2 * (1 + erf(x / sqrt(2)))

The paper also gives a cheaper approximation through tanh (used by BERT and GPT-2):

    GELU(x) ~ x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))

Both are proven equal to `F.gelu(approximate='none' | 'tanh')` in tests/equivalence/test_gelu.py;
later papers use `nn.GELU` / `F.gelu`.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def standard_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    """Phi(x) = P(Z <= x) for Z ~ N(0, 1)."""
    return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


def gelu(x: torch.Tensor) -> torch.Tensor:
    """The exact GELU, x * Phi(x)."""
    return x * standard_normal_cdf(x)


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """The paper's tanh approximation of x * Phi(x)."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def stochastic_gate(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """x * m with m ~ Bernoulli(Phi(x)) drawn independently per element: the random regularizer
    whose expectation GELU is (the paper's motivation)."""
    keep = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device) < standard_normal_cdf(x)
    return x * keep


class GELU(nn.Module):
    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gelu_tanh(x) if self.approximate == "tanh" else gelu(x)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class DeepMLP(nn.Module):
    """The paper's MNIST classifier (Section 3.1): `depth` fully connected layers of `width` units,
    each followed by the nonlinearity under test, then a linear readout."""

    def __init__(self, n_in: int, width: int, depth: int, n_classes: int, activation: type[nn.Module] | nn.Module,
                 dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        for i in range(depth):
            layers += [nn.Linear(n_in if i == 0 else width, width),
                       activation() if isinstance(activation, type) else activation]
            if dropout:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(width, n_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)  # (B, ...) -> (B, n_classes)


@torch.no_grad()
def unit_norm_rows_(model: nn.Module) -> nn.Module:
    """The initialization of the authors' MNIST code (hendrycks/GELUs, mnist_fcn.py): each unit's
    incoming weights are a Gaussian draw scaled to unit length, biases zero. A unit then sees
    w . x ~ N(0, |x|^2 / n_in): the mean square of its inputs, neither grown nor shrunk, where
    PyTorch's default (uniform, variance 1 / (3 n_in)) shrinks it threefold at every layer."""
    for layer in model.modules():
        if isinstance(layer, nn.Linear):
            weight = torch.randn_like(layer.weight)
            layer.weight.copy_(weight / weight.norm(dim=1, keepdim=True))
            nn.init.zeros_(layer.bias)
    return model
