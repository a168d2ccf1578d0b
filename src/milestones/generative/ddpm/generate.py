"""Digits from a trained run: what `milestones generate RUN_DIR` does for ddpm.

The run folder's `model.json` names the epsilon-predicting model (the paper's choice) and its
checkpoint, and whether the run clipped the implied x_0 while sampling; `sample_images` runs the
ancestral sampler (Algorithm 2) from fresh noise and maps [-1, 1] back to pixel intensities.
"""

from __future__ import annotations

from pathlib import Path

import torch

from milestones.core.run import load_trained
from milestones.generative.ddpm.experiment import to_pixels
from milestones.generative.ddpm.model import DDPM, DDPMConfig


def sample_images(run_dir: Path, count: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """`count` samples (count, 1, 8, 8) in [0, 1], the chain's noise drawn with `generator`."""
    model, spec = load_trained(run_dir, lambda config: DDPM(DDPMConfig(**config | {"widths": tuple(config["widths"])})),
                               device, "ddpm")
    return to_pixels(model.sample(count, generator, clip=spec["clip"])).cpu()
