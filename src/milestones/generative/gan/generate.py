"""Digits from a trained run: what `milestones generate RUN_DIR` does for gan.

The run folder's `model.json` names the digits GAN's generator and its checkpoint (written by the
experiment); `sample_images` maps noise through it to 8 x 8 images.
"""

from __future__ import annotations

from pathlib import Path

import torch

from milestones.core.run import load_trained
from milestones.generative.gan.model import GANConfig, Generator


def sample_images(run_dir: Path, count: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """`count` samples (count, 1, 8, 8) in [0, 1]: G(z) for z ~ N(0, I) drawn with `generator`."""
    model, _ = load_trained(run_dir, lambda config: Generator(GANConfig(**config)), device, "gan")
    with torch.no_grad():
        return model.sample(count, generator).view(count, 1, 8, 8).clamp(0, 1)
