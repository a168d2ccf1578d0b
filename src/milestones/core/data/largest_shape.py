"""A harder image-classification task from the procedural shapes: name the largest shape.

Each colour image (32 x 32 by default) holds `shapes` shapes on a cluttered background (coloured low-frequency
texture in each channel plus pixel noise). One of them, the target, is clearly the largest and is
drawn last, so it is never hidden; the others are smaller distractors of random kinds and colours
that may repeat the target's. The label is the target's kind and colour, 3 x 6 = 18 classes
(`label = kind * len(COLORS) + colour`, with `KINDS` and `COLORS` from `shapes`), so chance is
1 / 18. To get it right a network has to find every shape, compare their sizes and read the
biggest one's outline and colour: more than a glance at the image, which is what makes it slower
to learn than the sklearn digits (the point of AlexNet's Figure 1 miniature).

With `shapes=1` the task is one shape's kind and colour on the clutter (AlexNet's experiment uses
that). `make_shapes` is left as it is; this module only reuses its palette and shape outlines.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from milestones.core.data.shapes import COLORS, KINDS, _shape_mask

NUM_CLASSES = len(KINDS) * len(COLORS)


def make_largest_shape(n: int, size: int = 32, shapes: int = 3, texture: float = 0.3, noise: float = 0.05,
                       seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` images (N, 3, size, size) in [0, 1] and labels (N,) int64 in [0, 18); the same `seed`
    always gives the same data."""
    g = torch.Generator().manual_seed(seed)
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    palette = torch.tensor(list(COLORS.values()))
    # Background: grey plus an independent coarse texture in each channel (coloured clutter); pixel noise
    # is added over everything at the end.
    coarse = torch.rand(n, 3, max(size // 6, 1), max(size // 6, 1), generator=g)
    smooth = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    images = 0.35 + texture * (smooth - 0.5)
    labels = torch.empty(n, dtype=torch.int64)
    for i in range(n):
        # Distractors first (radius 8-13% of the side), then the target (radius 20-27%) on top.
        radii = [size * (0.08 + 0.05 * float(torch.rand(1, generator=g))) for _ in range(shapes - 1)]
        radii.append(size * (0.20 + 0.07 * float(torch.rand(1, generator=g))))
        for r in radii:
            kind = int(torch.randint(len(KINDS), (1,), generator=g))
            color = int(torch.randint(len(COLORS), (1,), generator=g))
            cx, cy = (r + (size - 2 * r) * torch.rand(2, generator=g)).tolist()
            inside = _shape_mask(KINDS[kind], cx, cy, r, xx, yy)
            images[i, :, inside] = palette[color].unsqueeze(1)
        labels[i] = kind * len(COLORS) + color  # the last drawn, the largest
    images = images + noise * torch.randn(n, 3, size, size, generator=g)  # on the shapes too
    return images.clamp(0, 1), labels
