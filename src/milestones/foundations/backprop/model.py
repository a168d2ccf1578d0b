"""Backpropagation (Rumelhart, Hinton & Williams, 1986), two ways.

1. `Value`: a scalar reverse-mode automatic differentiation engine. Every arithmetic operation
   records its inputs and the local derivative of its output with respect to each of them; calling
   `backward()` on the final value walks the recorded graph from the output back to the inputs,
   applying the chain rule once per edge. `ScalarMLP` is a multilayer perceptron built from it.

2. `DeltaRuleMLP`: the same network on tensors, with its backward pass written out by hand as the
   paper's *generalized delta rule*, no autograd involved. For sigmoid units y = 1 / (1 + e^-x) and
   the squared error E = 1/2 sum_c sum_j (y_jc - d_jc)^2 (summed over cases c and output units j):

       delta_j = (y_j - d_j) * y_j * (1 - y_j)                      for an output unit j
       delta_j = y_j * (1 - y_j) * sum_k delta_k * w_kj             for a hidden unit j
       dE/dw_ji = delta_j * y_i            (y_i: the activity feeding the connection)

   The error signal delta flows backwards through the same weights that carried activity
   forwards; that is the whole algorithm. The paper's update adds momentum,
   dw(t) = -eps * dE/dw + alpha * dw(t-1), which is exactly `torch.optim.SGD(lr=eps, momentum=alpha)`.

Both are checked against `torch.autograd` in float64 in tests/equivalence/test_backprop.py.
"""

from __future__ import annotations

import math
import random

import torch
from torch import nn


class Value:
    """A scalar that remembers how it was computed, so that gradients can flow back to its inputs."""

    def __init__(self, data: float, parents: tuple[Value, ...] = (), local_grads: tuple[float, ...] = ()):
        self.data = float(data)
        self.grad = 0.0  # dOutput/dself, filled in by backward()
        self._parents = parents  # the values this one was computed from
        self._local_grads = local_grads  # d self / d parent, one per parent

    # Each operation returns a new Value with its parents and the local derivatives.
    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data + other.data, (self, other), (1.0, 1.0))

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data * other.data, (self, other), (other.data, self.data))

    def __pow__(self, exponent: float):
        return Value(self.data ** exponent, (self,), (exponent * self.data ** (exponent - 1),))

    def exp(self):
        e = math.exp(self.data)
        return Value(e, (self,), (e,))

    def log(self):
        return Value(math.log(self.data), (self,), (1.0 / self.data,))

    def tanh(self):
        t = math.tanh(self.data)
        return Value(t, (self,), (1.0 - t * t,))

    def sigmoid(self):
        s = 1.0 / (1.0 + math.exp(-self.data))
        return Value(s, (self,), (s * (1.0 - s),))

    def relu(self):
        return Value(max(self.data, 0.0), (self,), (float(self.data > 0),))

    def __neg__(self):
        return self * -1.0

    def __sub__(self, other):
        return self + (-other)

    def __truediv__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return self * other ** -1.0

    __radd__ = __add__
    __rmul__ = __mul__

    def __rsub__(self, other):
        return Value(other) - self

    def __rtruediv__(self, other):
        return Value(other) / self

    def backward(self) -> None:
        """Set `.grad` of every value this one depends on to d self / d value (the chain rule)."""
        order, seen = [], set()

        def visit(v):  # topological order: a value comes after everything it was computed from
            if id(v) not in seen:
                seen.add(id(v))
                for p in v._parents:
                    visit(p)
                order.append(v)

        visit(self)
        for v in order:
            v.grad = 0.0
        self.grad = 1.0
        for v in reversed(order):  # from the output back: each value passes its gradient to its parents
            for parent, local in zip(v._parents, v._local_grads):
                parent.grad += local * v.grad

    def __repr__(self) -> str:
        return f"Value({self.data:.6g}, grad={self.grad:.6g})"


class ScalarMLP:
    """Fully connected layers of scalar `Value`s; sigmoid units everywhere, as in the paper."""

    def __init__(self, sizes: list[int], init_range: float = 0.3, seed: int = 0):
        rng = random.Random(seed)
        self.weights = [[[Value(rng.uniform(-init_range, init_range)) for _ in range(n_in)] for _ in range(n_out)]
                        for n_in, n_out in zip(sizes, sizes[1:])]
        self.biases = [[Value(rng.uniform(-init_range, init_range)) for _ in range(n_out)] for n_out in sizes[1:]]

    def parameters(self) -> list[Value]:
        return [w for layer in self.weights for row in layer for w in row] + [b for layer in self.biases for b in layer]

    def __call__(self, x: list) -> list[Value]:
        for w, b in zip(self.weights, self.biases):
            x = [(sum((wi * xi for wi, xi in zip(row, x)), bj)).sigmoid() for row, bj in zip(w, b)]
        return x


class DeltaRuleMLP(nn.Module):
    """A sigmoid MLP whose gradients come from the generalized delta rule, computed by hand.

    Weights are `nn.Parameter`s only so that `torch.optim` can update them and checkpoints can save
    them; `requires_grad` is off, and `backward` writes each parameter's `.grad` itself.
    """

    def __init__(self, sizes: list[int], init_range: float = 0.3):
        super().__init__()
        self.sizes = list(sizes)
        # w[l] has shape (n_out, n_in), as in nn.Linear; uniform init in [-r, r] as in the paper.
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(n_out, n_in).uniform_(-init_range, init_range), requires_grad=False)
            for n_in, n_out in zip(sizes, sizes[1:]))
        self.biases = nn.ParameterList(
            nn.Parameter(torch.empty(n_out).uniform_(-init_range, init_range), requires_grad=False)
            for n_out in sizes[1:])
        self.activities: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (cases, n_in) -> (cases, n_out). Keeps every layer's activity for the backward pass."""
        self.activities = [x]
        for w, b in zip(self.weights, self.biases):
            x = torch.sigmoid(x @ w.T + b)  # y_j = sigma(sum_i y_i w_ji + b_j)
            self.activities.append(x)
        return x

    @staticmethod
    def error(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """E = 1/2 sum over cases and output units of (y - d)^2."""
        return 0.5 * ((output - target) ** 2).sum()

    def backward(self, target: torch.Tensor) -> None:
        """Fill every parameter's .grad with dE/dparameter for the last forward pass."""
        y = self.activities[-1]
        delta = (y - target) * y * (1 - y)  # (cases, n_out): dE/dx at the output units
        for layer in reversed(range(len(self.weights))):
            below = self.activities[layer]  # the activity feeding this layer's connections
            self.weights[layer].grad = delta.T @ below  # dE/dw_ji = sum_c delta_jc y_ic
            self.biases[layer].grad = delta.sum(0)
            if layer:  # pass the error back: delta_i = y_i (1 - y_i) sum_j delta_j w_ji
                delta = (delta @ self.weights[layer]) * below * (1 - below)
