"""Rectifier units (Glorot, Bordes & Bengio, 2011).

A rectifier passes its input through when it is positive and outputs an exact zero otherwise:

    rectifier(x) = max(0, x),        d rectifier / dx = 1 if x > 0 else 0.

Two properties made it the default unit of deep networks:

- **No saturation on the active side.** A sigmoid's slope s(1 - s) is at most 1/4 and a tanh's
  1 - t^2 falls to zero for large |x|; backpropagation multiplies one such slope per layer, so the
  error signal shrinks with depth. A rectifier's slope is exactly 1 wherever the unit is active, so
  the gradient reaching a deep layer is only ever switched on or off, never scaled down.
- **True zeros.** Every unit whose input is negative outputs 0, not a small number, so the
  representation of an example is sparse: only some units are on, and which ones depends on the
  example. Each example uses its own linear sub-network.

At x = 0 the function has no derivative; like PyTorch, we take the slope there to be 0.

`Rectifier` is checked against `F.relu` (forward and backward) in tests/equivalence/test_relu.py;
later papers use `nn.ReLU` and point at that proof.
"""

from __future__ import annotations

import torch
from torch import nn


class RectifierFunction(torch.autograd.Function):
    """max(0, x) with its backward pass written out: the gradient flows only where x > 0."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        active = x > 0  # the units that are on; saved so backward can route the gradient
        ctx.save_for_backward(active)
        return torch.where(active, x, torch.zeros_like(x))

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        (active,) = ctx.saved_tensors
        return torch.where(active, grad_output, torch.zeros_like(grad_output))  # slope 1 or 0


class Rectifier(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return RectifierFunction.apply(x)


def sparsity(activity: torch.Tensor) -> float:
    """The fraction of exact zeros: the paper's measure of how sparse a representation is."""
    return (activity == 0).float().mean().item()


ACTIVATIONS = {"rectifier": Rectifier, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


class DeepMLP(nn.Module):
    """input -> [Linear -> activation] x depth -> Linear -> class scores.

    Every layer starts from the same "normalised" initialisation of Glorot & Bengio (2010), the
    authors' own: weights uniform in +-sqrt(6 / (fan_in + fan_out)), biases zero. It is the same for
    every activation, so a comparison between activations changes nothing else.
    """

    def __init__(self, inputs: int, width: int, depth: int, classes: int, activation: str):
        super().__init__()
        sizes = [inputs] + [width] * depth
        self.hidden = nn.ModuleList(nn.Sequential(nn.Linear(n_in, n_out), ACTIVATIONS[activation]())
                                    for n_in, n_out in zip(sizes, sizes[1:]))
        self.readout = nn.Linear(width, classes)
        for layer in self.modules():
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)

    def representations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every hidden layer's activity, (B, width) each, for an input batch (B, ...)."""
        h, layers = x.flatten(1), []
        for layer in self.hidden:
            h = layer(h)
            layers.append(h)
        return layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.representations(x)[-1])  # (B, classes)
