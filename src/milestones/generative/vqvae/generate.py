"""Digits from a trained run: what `milestones generate RUN_DIR` does for vqvae.

The run folder holds two specs written by the experiment: `model.json` (the VQ-VAE) and `prior.json`
(the class-conditional PixelCNN over its code grid). `sample_images` asks the prior for the digits
0, 1, .., 9, 0, 1, .. in turn, draws each code grid symbol by symbol, and decodes it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from milestones.core.run import load_trained
from milestones.generative.vqvae.model import VQVAE, PixelCNN, VQVAEConfig


def sample_images(run_dir: Path, count: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """`count` samples (count, 1, 8, 8) in [0, 1], of the classes 0 .. 9 in turn, drawn with `generator`."""
    vqvae, _ = load_trained(run_dir, lambda config: VQVAE(VQVAEConfig(**config)), device, "vqvae")
    prior, _ = load_trained(run_dir, lambda arguments: PixelCNN(**arguments), device, "vqvae", spec="prior")
    with torch.no_grad():
        codes = prior.sample(torch.arange(count, device=device) % 10, generator)
        return vqvae.decode(codes)
