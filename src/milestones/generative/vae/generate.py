"""Digits from a trained run: what `milestones generate RUN_DIR` does for vae.

The run folder's `model.json` names the two-dimensional VAE of Figure 4 and its checkpoint (written by
the experiment); `sample_images` decodes codes drawn from the prior into 8 x 8 mean images.
"""

from __future__ import annotations

from pathlib import Path

import torch

from milestones.core.run import load_trained
from milestones.generative.vae.model import VAE, VAEConfig


def sample_images(run_dir: Path, count: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """`count` samples (count, 1, 8, 8) in [0, 1]: E[x | z] for z ~ N(0, I) drawn with `generator`."""
    model, _ = load_trained(run_dir, lambda config: VAE(VAEConfig(**config)), device, "vae")
    with torch.no_grad():
        return model.sample(count, generator).view(count, 1, 8, 8)
