"""Convolutional networks (LeCun et al., 1989): local receptive fields with shared weights.

A fully connected layer gives every hidden unit its own weight to every pixel. A convolutional
layer gives each unit a small window (its *local receptive field*) and makes all the units of one
*feature map* use the same weights at every position (*weight sharing*). For an input x with C
channels, a kernel w of shape (O, C, k_h, k_w), stride s and zero padding p,

    y[b, o, i, j] = bias[o] + sum_c sum_u sum_v  w[o, c, u, v] * x_pad[b, c, s*i + u, s*j + v]

    H_out = floor((H + 2p - k_h) / s) + 1        (and the same for the width)

so one feature detector is applied everywhere, and a feature that moves in the input moves in the
map. We compute it the way fast libraries do, by *im2col*: cut every window out of the input as a
column (`patches`), then one matrix product with the flattened kernel does all the dot products.

Pooling (`max_pool2d`, `avg_pool2d`) reuses the same windows and keeps, per channel, their maximum
or their mean. The 1989 zip-code net subsampled with strided convolutions instead; pooling is the
form its successor LeNet-5 (1998) made standard, and it is built here because it is the same window
machinery.

Everything below is checked against F.conv2d, F.max_pool2d and F.avg_pool2d, forward and backward,
in tests/equivalence/test_cnn.py. Because `conv2d` equals F.conv2d, the `Conv2d` layer runs the
built-in one, which is faster on these small maps (see its `forward`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def patches(x: torch.Tensor, kernel_size, stride=1, padding=0, pad_value: float = 0.0) -> torch.Tensor:
    """Every (k_h, k_w) window of x: (B, C, H, W) -> (B, C, k_h, k_w, H_out, W_out).

    Entry [b, c, u, v, i, j] is x_pad[b, c, s_h*i + u, s_w*j + v]: for each offset (u, v) inside the
    kernel we take one strided slice of the padded input, which holds that offset of every window.
    """
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel_size), _pair(stride), _pair(padding)
    x = F.pad(x, (pw, pw, ph, ph), value=pad_value)  # (B, C, H + 2p_h, W + 2p_w)
    h_out = (x.shape[2] - kh) // sh + 1
    w_out = (x.shape[3] - kw) // sw + 1
    offsets = [x[:, :, u:u + sh * (h_out - 1) + 1:sh, v:v + sw * (w_out - 1) + 1:sw]  # (B, C, H_out, W_out)
               for u in range(kh) for v in range(kw)]
    return torch.stack(offsets, dim=2).unflatten(2, (kh, kw))  # (B, C, k_h, k_w, H_out, W_out)


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride=1,
           padding=0) -> torch.Tensor:
    """2-D convolution (cross-correlation, as in every framework) by im2col and one matmul.

    x: (B, C, H, W); weight: (O, C, k_h, k_w); bias: (O,) or None -> (B, O, H_out, W_out).
    """
    out_channels, _, kh, kw = weight.shape
    windows = patches(x, (kh, kw), stride, padding)  # (B, C, k_h, k_w, H_out, W_out)
    batch, _, _, _, h_out, w_out = windows.shape
    columns = windows.flatten(1, 3).flatten(2)  # (B, C*k_h*k_w, H_out*W_out): one column per window
    y = weight.reshape(out_channels, -1) @ columns  # (O, C*k_h*k_w) @ (B, C*k_h*k_w, L) -> (B, O, L)
    y = y.unflatten(2, (h_out, w_out))  # (B, O, H_out, W_out)
    return y if bias is None else y + bias.reshape(1, out_channels, 1, 1)


def max_pool2d(x: torch.Tensor, kernel_size, stride=None, padding=0) -> torch.Tensor:
    """The largest value in each window, per channel; padding never wins (it is -inf).
    The gradient flows only to each window's maximum. (B, C, H, W) -> (B, C, H_out, W_out)."""
    windows = patches(x, kernel_size, stride or kernel_size, padding, pad_value=float("-inf"))
    return windows.flatten(2, 3).max(dim=2).values


def avg_pool2d(x: torch.Tensor, kernel_size, stride=None, padding=0) -> torch.Tensor:
    """The mean of each window, per channel; padded zeros count in the mean (PyTorch's default,
    count_include_pad=True). (B, C, H, W) -> (B, C, H_out, W_out)."""
    windows = patches(x, kernel_size, stride or kernel_size, padding)
    return windows.mean(dim=(2, 3))


def scaled_tanh(x: torch.Tensor) -> torch.Tensor:
    """LeCun's squashing function f(a) = 1.7159 tanh(2a/3): f(+-1) = +-1 and the gain is largest
    there, so targets of +-1 sit in the steep part of the curve rather than at its asymptotes."""
    return 1.7159 * torch.tanh(2.0 / 3.0 * x)


def lecun_uniform_(weight: torch.Tensor, fan_in: int) -> torch.Tensor:
    """Both papers' initialisation: uniform in [-2.4 / F, 2.4 / F], F the unit's number of inputs,
    so that every unit starts with a total input of order 1, in the squashing function's linear range."""
    with torch.no_grad():
        return weight.uniform_(-2.4 / fan_in, 2.4 / fan_in)


class Conv2d(nn.Module):
    """A layer of feature maps: shared weights over local receptive fields.

    connections: an optional (out_channels, in_channels) table of booleans; map o sees input map c
        only where it is True. Both papers leave some connections out, to break the symmetry
        between maps and to save parameters.
    unit_bias: an optional (H_out, W_out); if given, every unit gets its own bias, as in the 1989
        net, instead of one bias per map.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 connections: torch.Tensor | None = None, unit_bias: tuple[int, int] | None = None):
        super().__init__()
        self.stride, self.padding = stride, padding
        if connections is None:
            connections = torch.ones(out_channels, in_channels, dtype=torch.bool)
        self.register_buffer("connections", connections.bool().reshape(out_channels, in_channels, 1, 1))
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels, *(unit_bias or ())))
        fan_in = self.connections.sum(dim=1, keepdim=True).clamp(min=1) * kernel_size ** 2  # (O, 1, 1, 1): per map
        with torch.no_grad():  # uniform in [-2.4 / F, 2.4 / F], as lecun_uniform_ below, per map
            self.weight.uniform_(-1, 1).mul_(2.4 / fan_in).mul_(self.connections)
            self.bias.uniform_(-1, 1).mul_((2.4 / fan_in).reshape(-1, *[1] * (self.bias.dim() - 1)))

    def free_parameters(self) -> int:
        """Weights that exist in the connection table, plus the biases."""
        return int(self.connections.sum()) * self.weight[0, 0].numel() + self.bias.numel()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The built-in F.conv2d computes our `conv2d` above (equal forward and backward,
        # tests/equivalence/test_cnn.py) about three times as fast here: the 25 strided slices that
        # im2col stacks cost more than the arithmetic on maps this small. Training runs it; `conv2d`
        # stays the readable math.
        weight = self.weight * self.connections  # a missing connection is a weight fixed at 0
        if self.bias.dim() == 1:  # one bias per map
            return F.conv2d(x, weight, self.bias, self.stride, self.padding)
        return F.conv2d(x, weight, None, self.stride, self.padding) + self.bias  # one bias per unit


def free_parameters(model: nn.Module) -> int:
    """Trainable numbers in a model, not counting weights that a connection table leaves out."""
    convs = [m for m in model.modules() if isinstance(m, Conv2d)]
    in_convs = {id(p) for m in convs for p in m.parameters()}
    others = sum(p.numel() for p in model.parameters() if p.requires_grad and id(p) not in in_convs)
    return others + sum(m.free_parameters() for m in convs)


def lecun_linear(n_in: int, n_out: int) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    lecun_uniform_(layer.weight, n_in)
    lecun_uniform_(layer.bias, n_in)
    return layer


# H2's 12 maps each see 8 of H1's 12 maps. The paper does not print which; we use blocks of 4:
# maps 0-3 see H1 maps 0-7, maps 4-7 see 4-11, maps 8-11 see 0-3 and 8-11 (each H1 map feeds 8).
ZIP_H2_CONNECTIONS = torch.zeros(12, 12, dtype=torch.bool)
ZIP_H2_CONNECTIONS[0:4, 0:8] = True
ZIP_H2_CONNECTIONS[4:8, 4:12] = True
ZIP_H2_CONNECTIONS[8:12, 0:4] = ZIP_H2_CONNECTIONS[8:12, 8:12] = True


class ZipCodeNet(nn.Module):
    """The 1989 network (the paper's Figure 3) for 16x16 digits, 9,760 free parameters:

        input 1@16x16
        H1: 12@8x8, 5x5 kernels, stride 2, one bias per unit     12*25 + 12*64        = 1,068
        H2: 12@4x4, 5x5 kernels on 8 of the 12 H1 maps, stride 2, one bias per unit
                                                                  12*8*25 + 12*16      = 2,592
        H3: 30 units, fully connected to H2                       192*30 + 30          = 5,790
        output: 10 units, fully connected to H3                   30*10 + 10           =   310

    Strided convolution both detects features and halves the resolution; the windows overlap
    (5 wide, stride 2), with zero padding of 2 at the borders. The output returns the 10 scores
    before any squashing; see notes.md for why we train them with cross-entropy.
    """

    def __init__(self):
        super().__init__()
        self.h1 = Conv2d(1, 12, 5, stride=2, padding=2, unit_bias=(8, 8))
        self.h2 = Conv2d(12, 12, 5, stride=2, padding=2, connections=ZIP_H2_CONNECTIONS, unit_bias=(4, 4))
        self.h3 = lecun_linear(12 * 4 * 4, 30)
        self.output = lecun_linear(30, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = scaled_tanh(self.h1(x))  # (B, 1, 16, 16) -> (B, 12, 8, 8)
        x = scaled_tanh(self.h2(x))  # (B, 12, 4, 4)
        x = scaled_tanh(self.h3(x.flatten(1)))  # (B, 30)
        return self.output(x)  # (B, 10)


class FullyConnectedNet(nn.Module):
    """The unconstrained alternative: every hidden unit sees every pixel, with its own weights."""

    def __init__(self, sizes: list[int]):
        super().__init__()
        self.layers = nn.ModuleList(lecun_linear(n_in, n_out) for n_in, n_out in zip(sizes, sizes[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)  # (B, H*W)
        for layer in self.layers[:-1]:
            x = scaled_tanh(layer(x))
        return self.layers[-1](x)  # (B, classes)
