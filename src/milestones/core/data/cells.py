"""A procedural stand-in for microscopy: cell-like blobs on a noisy, textured background, with masks.

Each grey image holds a few cells: blobs whose radius wobbles with the angle (a few random low
harmonics, so no two outlines are alike), a soft bright rim, a darker textured interior and a faint
nucleus; they sit on an uneven, blotchy background with pixel noise, so that neither a brightness
threshold nor an edge detector alone separates cell from background. The mask marks every pixel
inside a cell (1) or not (0). Cells may touch or overlap, as they do under the microscope.
Segmentation papers (U-Net) train on it with exactly known ground truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Cells:
    images: torch.Tensor  # (N, 1, size, size) in [0, 1]
    masks: torch.Tensor  # (N, size, size) int64: 1 inside a cell, 0 outside


def _smooth_noise(n: int, size: int, cells: int, g: torch.Generator) -> torch.Tensor:
    """(n, 1, size, size) noise in [0, 1] varying over about size / cells pixels."""
    coarse = torch.rand(n, 1, cells, cells, generator=g)
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def make_cells(n: int, size: int = 64, min_cells: int = 3, max_cells: int = 7, noise: float = 0.08,
               seed: int = 0) -> Cells:
    """`n` images; the same `seed` always gives the same data."""
    g = torch.Generator().manual_seed(seed)
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    # Background: an uneven illumination plus blotches at two scales, both as bright as cell bodies.
    images = 0.25 + 0.25 * _smooth_noise(n, size, 3, g) + 0.2 * (_smooth_noise(n, size, size // 6, g) - 0.5)
    texture = _smooth_noise(n, size, size // 4, g)  # the cells' granular interior
    masks = torch.zeros(n, size, size, dtype=torch.int64)
    for i in range(n):
        for _ in range(int(torch.randint(min_cells, max_cells + 1, (1,), generator=g))):
            radius = size * (0.08 + 0.07 * float(torch.rand(1, generator=g)))
            cx, cy = (radius + (size - 2 * radius) * torch.rand(2, generator=g)).tolist()
            # r(theta) = radius * (1 + sum_k a_k cos(k theta + phi_k)) for k = 2, 3, 4: a wobbly outline
            amplitude = 0.12 * torch.rand(3, generator=g)
            phase = 2 * math.pi * torch.rand(3, generator=g)
            theta = torch.atan2(yy - cy, xx - cx)
            wobble = sum(amplitude[k] * torch.cos((k + 2) * theta + phase[k]) for k in range(3))
            distance = torch.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / (radius * (1 + wobble))  # < 1 inside
            inside = distance < 1
            rim = torch.exp(-((distance - 0.9) / 0.08) ** 2)  # a bright membrane just inside the edge
            nucleus = torch.exp(-(distance / 0.35) ** 2)
            body = 0.35 + 0.25 * texture[i, 0] + 0.35 * rim - 0.15 * nucleus
            images[i, 0] = torch.where(inside, body, images[i, 0])
            masks[i, inside] = 1
    images = images + noise * torch.randn(images.shape, generator=g)
    return Cells(images.clamp(0, 1), masks)
