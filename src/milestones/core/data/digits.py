"""sklearn's 1,797 handwritten digits (8x8, from UCI), optionally resized: 16x16 is the 1989 zip-code
net's input size, 32x32 LeNet-5's."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Split:
    x_train: torch.Tensor  # (N, 1, size, size), values in [0, 1]
    y_train: torch.Tensor  # (N,) int64 class labels
    x_test: torch.Tensor
    y_test: torch.Tensor


@functools.lru_cache(maxsize=8)
def load_digits(size: int = 8, test_fraction: float = 0.25, seed: int = 0) -> Split:
    """A fixed, shuffled train/test split (the same for every caller with the same seed)."""
    from sklearn.datasets import load_digits as sklearn_digits

    data = sklearn_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0  # pixel values are 0..16
    y = torch.tensor(data.target, dtype=torch.int64)
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_test = int(len(x) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return Split(x[train], y[train], x[test], y[test])


def shift(images: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """Translate (N, C, H, W) images by dx pixels right and dy pixels down, filling with zeros."""
    out = torch.zeros_like(images)
    h, w = images.shape[-2:]
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        images[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def random_shifts(images: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Each image translated by its own random (dx, dy) in [-max_shift, max_shift] (data augmentation).
    Draws from the global RNG, so a checkpointed run resumes with the same shifts."""
    padded = F.pad(images, (max_shift,) * 4)
    (b, c, h, w), device = images.shape, images.device
    offsets = torch.randint(0, 2 * max_shift + 1, (b, 2))
    rows = (offsets[:, :1] + torch.arange(h)).to(device)  # (B, h): image k's window starts at row offsets[k, 0]
    cols = (offsets[:, 1:] + torch.arange(w)).to(device)  # (B, w)
    # out[k, ch, i, j] = padded[k, ch, rows[k, i], cols[k, j]], every image's window cut in one gather
    return padded[torch.arange(b, device=device)[:, None, None, None], torch.arange(c, device=device)[:, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]
