"""Generative adversarial nets (Goodfellow et al., 2014): a generator trained against a discriminator.

The generator G maps noise z ~ p(z) to a sample G(z); nothing about it is a density, so nothing can be
evaluated as a likelihood. Instead a second network, the discriminator D, outputs the probability that
its input came from the data rather than from G, and the two play the game (the paper's Eq. 1)

    min_G max_D  V(D, G) = E_x[ log D(x) ] + E_z[ log(1 - D(G(z))) ].

For a fixed G the best discriminator is D*(x) = p_data(x) / (p_data(x) + p_g(x)), and then
V = 2 JS(p_data || p_g) - log 4: the generator's best reply minimises the Jensen-Shannon divergence
to the data, reached when p_g = p_data and D = 1/2 everywhere (Theorem 1).

Training alternates gradient steps: D ascends V (`discriminator_loss` is -V, a binary cross-entropy
with real labelled 1 and generated 0), and G descends it. Section 3 points out that G's half of V,
log(1 - D(G(z))), *saturates*: early on, when the samples are poor, D rejects them with confidence,
D(G(z)) -> 0, and the gradient of log(1 - D) with respect to D's logit, -D(G(z)), vanishes with it.
The paper's remedy is to let G maximise log D(G(z)) instead (`generator_loss_non_saturating`): the
same fixed point, but a gradient of -(1 - D(G(z))) -> -1, strongest exactly where G is worst.

D works with logits l (D = sigmoid(l)), so every log is a softplus and never overflows:
log D = -softplus(-l), log(1 - D) = -softplus(l).

Both networks are small MLPs of rectified units (the paper's generator used rectifiers and sigmoids,
its discriminator maxout units; for 2-D points we keep rectifiers in both and a linear output).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class GANConfig:
    data_dim: int = 2
    noise_dim: int = 2
    hidden: int = 64  # units per hidden layer, both networks
    layers: int = 2  # hidden layers, both networks
    sigmoid_output: bool = False  # squash G's output into (0, 1), as the paper's generator did for pixel images


def mlp(inputs: int, hidden: int, layers: int, outputs: int) -> nn.ModuleList:
    sizes = [inputs] + [hidden] * layers + [outputs]
    return nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))


def forward_mlp(linears: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    *hidden, out = linears  # unpacked, not sliced: slicing a ModuleList builds a new one on every call
    for linear in hidden:
        x = F.relu(linear(x))
    return out(x)


class Generator(nn.Module):
    def __init__(self, cfg: GANConfig):
        super().__init__()
        self.cfg = cfg
        self.net = mlp(cfg.noise_dim, cfg.hidden, cfg.layers, cfg.data_dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, noise_dim) noise -> (N, data_dim) samples."""
        out = forward_mlp(self.net, z)
        return torch.sigmoid(out) if self.cfg.sigmoid_output else out

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.cfg.noise_dim, generator=generator).to(self.net[0].weight.device)
        return self(z)


class Discriminator(nn.Module):
    def __init__(self, cfg: GANConfig):
        super().__init__()
        self.net = mlp(cfg.data_dim, cfg.hidden, cfg.layers, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, data_dim) points -> (N,) logits l; D(x) = sigmoid(l) is the probability that x is real."""
        return forward_mlp(self.net, x).squeeze(-1)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-V(D, G) = -E[log D(x)] - E[log(1 - D(G(z)))]: D's loss, minimised by the best discriminator."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss_minimax(fake_logits: torch.Tensor) -> torch.Tensor:
    """E[log(1 - D(G(z)))]: G's half of V in Eq. 1, which G minimises. Saturates as D(G(z)) -> 0."""
    return -F.softplus(fake_logits).mean()


def generator_loss_non_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """-E[log D(G(z))]: Section 3's replacement, the same fixed point with strong gradients early on."""
    return F.softplus(-fake_logits).mean()


GENERATOR_LOSSES = {"minimax": generator_loss_minimax, "non_saturating": generator_loss_non_saturating}
