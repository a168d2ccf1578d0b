"""Digits from a trained run: what `milestones generate RUN_DIR` does for improved_ddpm.

The run folder's `model.json` names the paper's model, the cosine schedule with learned variances,
and its checkpoint; `sample_images` runs its full ancestral chain from fresh noise (clipping the
implied x_0, as the experiment does) and maps [-1, 1] back to pixel intensities.
"""

from __future__ import annotations

from pathlib import Path

import torch

from milestones.core.run import load_trained
from milestones.generative.ddpm.experiment import to_pixels
from milestones.generative.improved_ddpm.model import ImprovedDDPM, ImprovedDDPMConfig


def sample_images(run_dir: Path, count: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """`count` samples (count, 1, 8, 8) in [0, 1], the chain's noise drawn with `generator`."""
    model, _ = load_trained(run_dir, lambda config: ImprovedDDPM(ImprovedDDPMConfig(
        **config | {"widths": tuple(config["widths"])})), device, "improved_ddpm")
    return to_pixels(model.sample(count, generator, clip=True)).cpu()
