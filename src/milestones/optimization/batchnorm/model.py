"""Batch Normalization (Ioffe & Szegedy, 2015), written from scratch.

A layer's input distribution keeps moving while the layers below it learn ("internal covariate
shift"). Batch normalization fixes the first two moments of every feature, per minibatch:

    mu_B      = 1/m sum_i x_i                                   (per feature, over the batch)
    sigma2_B  = 1/m sum_i (x_i - mu_B)^2                        (biased: divides by m)
    x_hat_i   = (x_i - mu_B) / sqrt(sigma2_B + eps)
    y_i       = gamma * x_hat_i + beta                          (learned scale and shift)

For a convolutional feature map (B, C, H, W) a "feature" is a channel and the batch is every
position of every example, m = B * H * W, so that normalization respects the convolution's
weight sharing. At inference the batch statistics are replaced by running averages collected in
training, and the layer becomes a fixed affine map:

    running_mean <- (1 - momentum) * running_mean + momentum * mu_B
    running_var  <- (1 - momentum) * running_var  + momentum * sigma2_B * m / (m - 1)   (unbiased)

`batch_norm_backward` writes out the paper's gradient equations (its Section 3) in closed form;
autograd computes the same thing from `BatchNorm.forward`, and tests/equivalence/test_batchnorm.py
checks both against `nn.BatchNorm1d` / `nn.BatchNorm2d`.
"""

from __future__ import annotations

import torch
from torch import nn


def batch_norm_backward(grad_y: torch.Tensor, x_hat: torch.Tensor, inv_std: torch.Tensor,
                        gamma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """dL/dx, dL/dgamma, dL/dbeta for a training-mode batch norm over (m, C) inputs.

    From the paper's chain rule, with all sums over the m examples of the batch:
        dL/dbeta  = sum_i dL/dy_i
        dL/dgamma = sum_i dL/dy_i * x_hat_i
        dL/dx_i   = gamma / sqrt(sigma2 + eps) * (dL/dy_i - mean(dL/dy) - x_hat_i * mean(dL/dy * x_hat))
    The last line folds the paper's three terms (through x_hat, sigma2 and mu) into one: the
    gradient is projected away from the two directions (a constant shift and a rescaling of the
    batch) that normalization makes the output blind to.
    """
    grad_beta = grad_y.sum(0)  # (C,)
    grad_gamma = (grad_y * x_hat).sum(0)  # (C,)
    grad_x_hat = grad_y * gamma  # (m, C)
    grad_x = inv_std * (grad_x_hat - grad_x_hat.mean(0) - x_hat * (grad_x_hat * x_hat).mean(0))
    return grad_x, grad_gamma, grad_beta


class BatchNorm(nn.Module):
    """Batch normalization over dimension 1 of (B, C), (B, C, L) or (B, C, H, W) inputs.

    The same class serves as BatchNorm1d and BatchNorm2d: the statistics are taken over every
    dimension except the channel dimension. Its parameters and buffers carry the same names as
    PyTorch's, so state dicts move between the two.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True):
        super().__init__()
        self.num_features, self.eps, self.momentum, self.affine = num_features, eps, momentum, affine
        if affine:  # gamma = 1, beta = 0: the layer starts as pure normalization
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2 or x.shape[1] != self.num_features:
            raise ValueError(f"expected (B, {self.num_features}, ...) input, got {tuple(x.shape)}")
        # Reshape the per-channel statistics so they broadcast: (C,) -> (1, C, 1, ..., 1).
        shape = (1, -1) + (1,) * (x.dim() - 2)
        reduce = [0] + list(range(2, x.dim()))  # every dimension but the channels
        if self.training:
            m = x.numel() // x.shape[1]  # values per channel in this batch
            if m < 2:
                raise ValueError("batch norm needs more than one value per channel in training mode")
            mean = x.mean(reduce)  # (C,)
            var = x.var(reduce, unbiased=False)  # (C,) the batch's own (biased) variance normalizes
            with torch.no_grad():  # running averages are statistics, not part of the graph
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var * m / (m - 1), self.momentum)  # the unbiased estimate
                self.num_batches_tracked += 1
        else:
            mean, var = self.running_mean, self.running_var
        x_hat = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if not self.affine:
            return x_hat
        return x_hat * self.weight.view(shape) + self.bias.view(shape)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class MLP(nn.Module):
    """The paper's MNIST network (Section 4.1): fully connected hidden layers, each optionally
    followed by batch normalization before its nonlinearity (BN goes on Wu, replacing the bias,
    which the shift beta makes redundant)."""

    def __init__(self, sizes: list[int], batch_norm: bool, activation: type[nn.Module] = nn.Sigmoid):
        super().__init__()
        layers: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-2], sizes[1:-1]):
            layers.append(nn.Linear(n_in, n_out, bias=not batch_norm))
            if batch_norm:
                layers.append(BatchNorm(n_out))
            layers.append(activation())
        layers.append(nn.Linear(sizes[-2], sizes[-1]))  # the output layer: logits, never normalized
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.flatten(1))  # (B, ...) -> (B, n_classes)
