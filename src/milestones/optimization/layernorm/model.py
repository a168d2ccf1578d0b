"""Layer Normalization (Ba, Kiros & Hinton, 2016), written from scratch.

Batch normalization standardizes each hidden unit over the examples of a minibatch. Layer
normalization turns the axis around: it standardizes each example over the H hidden units of a
layer, so its statistics come from one example alone:

    mu     = 1/H sum_i a_i
    sigma  = sqrt(1/H sum_i (a_i - mu)^2 + eps)
    h_i    = g_i * (a_i - mu) / sigma + b_i             (learned gain g and bias b, per unit)

Nothing depends on the batch, so training and inference compute the same function, a batch of
one is fine, and a recurrent net can normalize every time step with the same parameters. The
paper's recurrent form normalizes the summed inputs of each step before the nonlinearity:

    a_t = W_hh h_{t-1} + W_xh x_t
    h_t = tanh(LN(a_t))

`LayerNorm` is proven equal to `nn.LayerNorm` (forward and backward, with and without the affine
part) in tests/equivalence/test_layernorm.py; later papers use `nn.LayerNorm` / `F.layer_norm`.
"""

from __future__ import annotations

import torch
from torch import nn


class LayerNorm(nn.Module):
    """Normalize over the last len(normalized_shape) dimensions of each example."""

    def __init__(self, normalized_shape: int | tuple[int, ...], eps: float = 1e-5, elementwise_affine: bool = True):
        super().__init__()
        self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        if elementwise_affine:  # g = 1, b = 0: starts as pure normalization
            self.weight = nn.Parameter(torch.ones(self.normalized_shape))
            self.bias = nn.Parameter(torch.zeros(self.normalized_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-len(self.normalized_shape):] != self.normalized_shape:
            expected = ", ".join(map(str, self.normalized_shape))
            raise ValueError(f"expected (..., {expected}) input, got {tuple(x.shape)}")
        dims = tuple(range(-len(self.normalized_shape), 0))  # the features of one example
        mean = x.mean(dims, keepdim=True)  # (..., 1, ...)
        var = x.var(dims, unbiased=False, keepdim=True)
        x_hat = (x - mean) * torch.rsqrt(var + self.eps)
        if not self.elementwise_affine:
            return x_hat
        return x_hat * self.weight + self.bias

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class RecurrentClassifier(nn.Module):
    """A tanh RNN read over a sequence, classified from its last hidden state.

    With `layer_norm` the summed inputs of every step are layer-normalized (the paper's Section
    3.1); the gain and bias of LN then stand in for the recurrent bias, which it would cancel.
    """

    def __init__(self, n_in: int, n_hidden: int, n_classes: int, layer_norm: bool):
        super().__init__()
        self.n_hidden = n_hidden
        self.input_to_hidden = nn.Linear(n_in, n_hidden, bias=not layer_norm)
        self.hidden_to_hidden = nn.Linear(n_hidden, n_hidden, bias=False)
        nn.init.orthogonal_(self.hidden_to_hidden.weight)  # the same start for both variants
        self.norm = LayerNorm(n_hidden) if layer_norm else nn.Identity()
        self.readout = nn.Linear(n_hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, n_in) -> logits (B, n_classes)."""
        h = x.new_zeros(x.shape[0], self.n_hidden)  # (B, H)
        inputs = self.input_to_hidden(x)  # (B, T, H): W_xh x_t for every t at once
        for t in range(x.shape[1]):
            h = torch.tanh(self.norm(inputs[:, t] + self.hidden_to_hidden(h)))  # h_t = tanh(LN(a_t))
        return self.readout(h)
