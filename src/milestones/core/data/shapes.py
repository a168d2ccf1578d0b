"""A procedural dataset of coloured shapes on a textured background, with masks and captions.

Every image holds one to `max_shapes` shapes (circle, square, triangle), each with a colour, a size
and a position. Alongside the image come a per-pixel class mask (0 is background, 1 + the shape's
index in `KINDS` otherwise) and a caption such as "a red circle at the top left and a blue square at
the bottom right". Segmentation (U-Net), generation (VAE, GAN, diffusion) and text-image models
(CLIP, DALL-E) all draw on it, so each can be checked against exactly known ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

KINDS = ("circle", "square", "triangle")
COLORS = {
    "red": (0.90, 0.15, 0.15), "green": (0.15, 0.75, 0.25), "blue": (0.20, 0.35, 0.95),
    "yellow": (0.95, 0.85, 0.15), "magenta": (0.85, 0.25, 0.85), "cyan": (0.15, 0.85, 0.85),
}


@dataclass(frozen=True)
class Shapes:
    images: torch.Tensor  # (N, 3, size, size) in [0, 1]
    masks: torch.Tensor  # (N, size, size) int64: 0 background, 1 + KINDS index
    captions: list[str]
    kinds: torch.Tensor  # (N, max_shapes) int64 KINDS index of each shape, -1 where absent
    colors: torch.Tensor  # (N, max_shapes) int64 index into COLORS, -1 where absent


def _where(value: float, size: int) -> str:
    third = value / size * 3
    return ("top", "middle", "bottom")[min(int(third), 2)], ("left", "center", "right")[min(int(third), 2)]


def _shape_mask(kind: str, cx: float, cy: float, r: float, xx: torch.Tensor, yy: torch.Tensor) -> torch.Tensor:
    if kind == "circle":
        return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    if kind == "square":
        half = 0.85 * r  # about the circle's area
        return ((xx - cx).abs() <= half) & ((yy - cy).abs() <= half)
    # an upward triangle: below both slanted edges and above the base
    base = cy + 0.8 * r
    return (yy <= base) & (yy - (cy - r) >= 1.8 * (xx - cx).abs())


def make_shapes(n: int, size: int = 32, max_shapes: int = 2, texture: float = 0.15, seed: int = 0) -> Shapes:
    """`n` images; the same `seed` always gives the same data."""
    g = torch.Generator().manual_seed(seed)
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    palette = torch.tensor(list(COLORS.values()))
    names = list(COLORS)
    # Background: a dim grey plus low-frequency texture (coarse noise upsampled) and pixel noise.
    coarse = torch.rand(n, 1, max(size // 8, 1), max(size // 8, 1), generator=g)
    smooth = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    images = (0.2 + texture * (smooth - 0.5)).repeat(1, 3, 1, 1)
    images = images + 0.03 * torch.randn(n, 3, size, size, generator=g)
    masks = torch.zeros(n, size, size, dtype=torch.int64)
    kinds = torch.full((n, max_shapes), -1, dtype=torch.int64)
    colors = torch.full((n, max_shapes), -1, dtype=torch.int64)
    captions = []
    for i in range(n):
        count = int(torch.randint(1, max_shapes + 1, (1,), generator=g))
        parts = []
        for j in range(count):
            kind = int(torch.randint(len(KINDS), (1,), generator=g))
            color = int(torch.randint(len(names), (1,), generator=g))
            r = size * (0.12 + 0.1 * float(torch.rand(1, generator=g)))
            cx, cy = (r + (size - 2 * r) * torch.rand(2, generator=g)).tolist()
            inside = _shape_mask(KINDS[kind], cx, cy, r, xx, yy)
            images[i, :, inside] = palette[color].unsqueeze(1)
            masks[i, inside] = kind + 1
            kinds[i, j], colors[i, j] = kind, color
            vertical, _ = _where(cy, size)
            _, horizontal = _where(cx, size)
            place = "the center" if (vertical, horizontal) == ("middle", "center") else f"the {vertical} {horizontal}"
            parts.append(f"a {names[color]} {KINDS[kind]} at {place}")
        captions.append(" and ".join(parts))
    return Shapes(images.clamp(0, 1), masks, captions, kinds, colors)
