"""Two-dimensional toy distributions: each returns points (n, 2) and integer labels (n,)."""

from __future__ import annotations

import math

import torch


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def two_moons(n: int = 512, noise: float = 0.1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = _gen(seed)
    y = torch.arange(n) % 2
    t = torch.rand(n, generator=g) * math.pi
    x = torch.stack([torch.cos(t), torch.sin(t)], 1)
    x[y == 1] = torch.stack([1 - torch.cos(t[y == 1]), 0.5 - torch.sin(t[y == 1])], 1)
    return x + noise * torch.randn(n, 2, generator=g), y


def spirals(n: int = 512, arms: int = 2, turns: float = 1.5, noise: float = 0.05, seed: int = 0):
    g = _gen(seed)
    y = torch.arange(n) % arms
    r = torch.rand(n, generator=g)
    angle = 2 * math.pi * (turns * r + y / arms)
    x = torch.stack([r * torch.cos(angle), r * torch.sin(angle)], 1)
    return x + noise * torch.randn(n, 2, generator=g), y


def gaussian_grid(n: int = 512, side: int = 3, std: float = 0.05, seed: int = 0):
    """A side x side grid of small Gaussians in [-1, 1]^2 (a classic test of GAN mode coverage)."""
    g = _gen(seed)
    y = torch.randint(side * side, (n,), generator=g)
    centers = torch.linspace(-1, 1, side)
    mean = torch.stack([centers[y % side], centers[y // side]], 1)
    return mean + std * torch.randn(n, 2, generator=g), y


def rings(n: int = 512, radii: tuple[float, ...] = (0.3, 0.7, 1.0), noise: float = 0.03, seed: int = 0):
    g = _gen(seed)
    y = torch.arange(n) % len(radii)
    angle = 2 * math.pi * torch.rand(n, generator=g)
    r = torch.tensor(radii)[y] + noise * torch.randn(n, generator=g)
    return torch.stack([r * torch.cos(angle), r * torch.sin(angle)], 1), y


def ring_centers(modes: int = 8, radius: float = 1.0) -> torch.Tensor:
    """The (modes, 2) centers of `gaussian_ring`, evenly spaced on a circle."""
    angle = 2 * math.pi * torch.arange(modes) / modes
    return radius * torch.stack([torch.cos(angle), torch.sin(angle)], 1)


def gaussian_ring(n: int = 512, modes: int = 8, radius: float = 1.0, std: float = 0.05, seed: int = 0):
    """A mixture of `modes` small Gaussians on a circle (the GAN literature's "8 Gaussians" test of mode coverage)."""
    g = _gen(seed)
    y = torch.randint(modes, (n,), generator=g)
    return ring_centers(modes, radius)[y] + std * torch.randn(n, 2, generator=g), y


def swiss_roll(n: int = 512, noise: float = 0.05, segments: int = 4, seed: int = 0):
    """The 2-D swiss roll (a spiral of 1.5 turns, the toy of Sohl-Dickstein et al. 2015, Figure 1): points
    u (cos u, sin u) / 10 for u uniform in [1.5 pi, 4.5 pi], plus Gaussian noise of std `noise`. Before the
    noise they span about [-0.94, 1.26] x [-1.10, 1.41]; the label is the segment of the roll (0 .. segments - 1,
    from the inside out) a point was drawn from."""
    g = _gen(seed)
    r = torch.rand(n, generator=g)
    u = 1.5 * math.pi * (1 + 2 * r)
    x = torch.stack([u * torch.cos(u), u * torch.sin(u)], 1) / 10
    return x + noise * torch.randn(n, 2, generator=g), (r * segments).long().clamp(max=segments - 1)
