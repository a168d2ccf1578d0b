"""How every generative paper scores its samples, written once (guide section 12).

A sample's quality is measured, never eyeballed, and every measure comes with its floor and its ceiling
from the same call: the score of real data against real data (two halves of the held-out set) and of
noise against real data. A model's number means something only between those two.

Digits (sklearn's 8 x 8, `milestones.core.data.load_digits`):

- the *judge*: a small convolutional classifier trained once on the training split and kept in the
  cache (`milestones.core.cache`); the generative papers train on the same split, and the held-out
  digits, which neither the judge nor any generator has seen, are the reference;
- *FD-digits* (`fd_digits`): the Frechet distance between Gaussians fitted to the judge's
  penultimate-layer features of the samples and of held-out digits (FID's formula with a judge that
  knows digits in place of Inception);
- the judge's accuracy on class-conditional samples (`judge_accuracy`) and its class coverage
  (`class_coverage`: how many of the ten classes the judge finds among the samples).

2-D toy data (`milestones.core.data.toy2d`): the energy distance to held-out points (`energy_scores`)
and the modes covered (`modes_covered`). Every run saves its samples: `sample_grid` (images, a caption
under each) and `scatter` (points) write the PNGs the book shows.
"""

from __future__ import annotations

import functools
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from milestones.core import cache, plots
from milestones.core.data import digits as digits_data

JUDGE_CONFIG = {"features": 32, "steps": 600, "batch_size": 64, "lr": 3e-3, "max_shift": 1}
JUDGE_WEIGHTS = "judge.safetensors"


# ------------------------------------------------------------------------------------------- the judge
class DigitsJudge(nn.Module):
    """Two 3 x 3 convolutions (16 and 32 channels), a 2 x 2 max-pool, a feature layer, ten logits."""

    def __init__(self, features: int = 32):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.hidden = nn.Linear(32 * 4 * 4, features)
        self.out = nn.Linear(features, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer, (N, features), of images (N, 1, 8, 8) in [0, 1]."""
        h = F.relu(self.conv1(x))
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)  # (N, 32, 4, 4)
        return F.relu(self.hidden(h.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x))


def _build_judge(folder: Path, config: dict) -> None:
    split = digits_data.load_digits()
    model = DigitsJudge(config["features"])
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config["steps"])
    for _ in range(config["steps"]):
        index = torch.randint(len(split.x_train), (config["batch_size"],))
        dx, dy = torch.randint(-config["max_shift"], config["max_shift"] + 1, (2,)).tolist()
        x = digits_data.shift(split.x_train[index], dx, dy)  # one random shift per batch: cheap augmentation
        loss = F.cross_entropy(model(x), split.y_train[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(split.x_test).argmax(1) == split.y_test).float().mean().item()
    save_file(model.state_dict(), str(folder / JUDGE_WEIGHTS))
    (folder / "judge.json").write_text(json.dumps({"held_out_accuracy": accuracy}) + "\n")


@functools.lru_cache(maxsize=1)
def _judge_at(folder: str) -> DigitsJudge:
    model = DigitsJudge(JUDGE_CONFIG["features"])
    model.load_state_dict(load_file(str(Path(folder) / JUDGE_WEIGHTS)))
    return model.eval().requires_grad_(False)


def judge() -> DigitsJudge:
    """The digits judge, in eval mode and frozen; trained on first use and then read from the cache."""
    folder = cache.cached("digits-judge", JUDGE_CONFIG, [sys.modules[__name__], digits_data], _build_judge)
    return _judge_at(str(folder))


def judge_held_out_accuracy() -> float:
    """The judge's accuracy on the held-out digits, measured when it was trained."""
    folder = cache.cached("digits-judge", JUDGE_CONFIG, [sys.modules[__name__], digits_data], _build_judge)
    return json.loads((folder / "judge.json").read_text())["held_out_accuracy"]


def _prepare(images: torch.Tensor) -> torch.Tensor:
    images = images.detach().float().cpu()
    if images.dim() == 2:  # flat (N, 64) pixels
        images = images.view(-1, 1, 8, 8)
    if images.shape[1:] != (1, 8, 8):
        raise ValueError(f"the judge reads (N, 1, 8, 8) or (N, 64) images, got {tuple(images.shape)}")
    return images.clamp(0, 1)


def judge_predictions(images: torch.Tensor) -> torch.Tensor:
    """The judge's class for each image, (N,)."""
    with torch.no_grad():
        return judge()(_prepare(images)).argmax(1)


def judge_accuracy(images: torch.Tensor, labels: torch.Tensor) -> float:
    """The fraction of class-conditional samples that the judge reads as the class they were asked for."""
    return (judge_predictions(images) == labels.cpu()).float().mean().item()


def class_coverage(images: torch.Tensor, min_share: float = 0.025) -> int:
    """How many of the ten classes the judge finds in at least `min_share` of the samples (a quarter of
    their share in balanced data, by default): 10 for a generator that makes every digit, 1 for one
    that has collapsed onto one."""
    counts = torch.bincount(judge_predictions(images), minlength=10)
    return int((counts >= min_share * len(images)).sum())


# ------------------------------------------------------------------------------------ Frechet distance
def frechet_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """The Frechet (2-Wasserstein) distance between Gaussians fitted to the rows of x and y (N, D):

        |mu_x - mu_y|^2 + Tr(S_x + S_y - 2 (S_x S_y)^(1/2)),

    in float64. Tr((S_x S_y)^(1/2)) is the sum of the square roots of the eigenvalues of the symmetric
    matrix S_x^(1/2) S_y S_x^(1/2), which has the same eigenvalues as S_x S_y."""
    x, y = x.double(), y.double()
    mu_x, mu_y = x.mean(0), y.mean(0)
    s_x, s_y = torch.cov(x.T).reshape(x.shape[1], -1), torch.cov(y.T).reshape(y.shape[1], -1)
    w, v = torch.linalg.eigh(s_x)
    root_x = v @ torch.diag(w.clamp(min=0).sqrt()) @ v.T
    cross = torch.linalg.eigvalsh(root_x @ s_y @ root_x).clamp(min=0).sqrt().sum()
    return ((mu_x - mu_y).square().sum() + s_x.trace() + s_y.trace() - 2 * cross).clamp(min=0).item()


@dataclass(frozen=True)
class Bounded:
    """A score with its floor (real against real) and its ceiling (noise against real), lower is better."""

    value: float
    floor: float
    ceiling: float

    @property
    def position(self) -> float:
        """Where the value sits between floor (0) and ceiling (1)."""
        return (self.value - self.floor) / (self.ceiling - self.floor)

    def as_dict(self) -> dict:
        return {"value": self.value, "floor": self.floor, "ceiling": self.ceiling, "position": self.position}


def held_out_halves() -> tuple[torch.Tensor, torch.Tensor]:
    """The held-out digits in two halves of equal size: the reference, and the real data scored against it."""
    x = digits_data.load_digits().x_test
    half = len(x) // 2
    return x[:half], x[half:2 * half]


def fd_digits(samples: torch.Tensor, seed: int = 0) -> Bounded:
    """FD-digits of the samples against the first half of the held-out digits, with the floor (the
    second half against the first) and the ceiling (uniform pixel noise against the first). All three
    score the same number of images, the size of a half (224): the first 224 samples are used, so
    the finite-sample bias of the estimate is the same in all three."""
    reference, real = held_out_halves()
    if len(samples) < len(real):
        raise ValueError(f"fd_digits needs at least {len(real)} samples, got {len(samples)}")
    noise = torch.rand(real.shape, generator=torch.Generator().manual_seed(seed))
    model = judge()
    with torch.no_grad():
        ref = model.features(reference)
        score = lambda images: frechet_distance(model.features(_prepare(images)), ref)  # noqa: E731
        return Bounded(score(samples[:len(real)]), score(real), score(noise))


# ----------------------------------------------------------------------------------------- 2-D toy data
def energy_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """The (squared) energy distance 2 E|X - Y| - E|X - X'| - E|Y - Y'| between the point sets x and y,
    the expectations over all pairs (a V-statistic, so a set against itself gives exactly 0). It is
    zero only when the two distributions are equal (Szekely and Rizzo)."""
    x, y = x.double(), y.double()
    return (2 * torch.cdist(x, y).mean() - torch.cdist(x, x).mean() - torch.cdist(y, y).mean()).item()


def energy_scores(samples: torch.Tensor, held_out: torch.Tensor, seed: int = 0) -> Bounded:
    """The energy distance of the samples to the first half of `held_out`, with the floor (the second
    half against the first) and the ceiling (a Gaussian with the held-out points' mean and covariance:
    noise that knows where the data is, but not its shape). Each uses as many points as a half."""
    half = len(held_out) // 2
    reference, real = held_out[:half], held_out[half:2 * half]
    if len(samples) < half:
        raise ValueError(f"energy_scores needs at least {half} samples, got {len(samples)}")
    g = torch.Generator().manual_seed(seed)
    mean, cov = held_out.mean(0), torch.cov(held_out.T)
    noise = mean + torch.randn(half, held_out.shape[1], generator=g) @ torch.linalg.cholesky(cov).T
    return Bounded(energy_distance(samples[:half].detach().cpu(), reference), energy_distance(real, reference),
                   energy_distance(noise, reference))


def modes_covered(samples: torch.Tensor, centers: torch.Tensor, radius: float, min_count: int = 1) -> int:
    """How many modes (centers, (K, 2)) have at least `min_count` samples within `radius` of them (each
    sample counted for its nearest center only)."""
    distance = torch.cdist(samples.detach().double().cpu(), centers.double())
    nearest, which = distance.min(1)
    counts = torch.bincount(which[nearest <= radius], minlength=len(centers))
    return int((counts >= min_count).sum())


def near_mode_fraction(samples: torch.Tensor, centers: torch.Tensor, radius: float) -> float:
    """The fraction of samples within `radius` of some mode (the "high-quality samples" of mode counts)."""
    nearest = torch.cdist(samples.detach().double().cpu(), centers.double()).min(1).values
    return (nearest <= radius).double().mean().item()


# ------------------------------------------------------------------------------------------- pictures
def sample_grid(path: Path, images: torch.Tensor, captions: list[str], title: str = "", ncols: int = 10) -> Path:
    """A PNG of image samples (N, 1, H, W) or (N, H, W) in [0, 1], each with its caption (the class it
    was asked for, or the judge's reading) under it. The samples are tiled into one picture (one
    matplotlib image, not one axis per sample: hundreds of samples take a fraction of a second)."""
    if len(captions) != len(images):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    images = images.detach().float().cpu().clamp(0, 1)
    images = images.reshape(len(images), *images.shape[-2:]).numpy()
    n, (h, w) = len(images), images.shape[1:]
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    gap, caption = max(1, h // 8), max(3, h // 2)  # pixels between tiles, and below each for its caption
    cell_h, cell_w = h + caption + gap, w + gap
    mosaic = np.ones((nrows * cell_h + gap, ncols * cell_w + gap), dtype=np.float32)
    for i, image in enumerate(images):
        top, left = gap + (i // ncols) * cell_h, gap + (i % ncols) * cell_w
        mosaic[top:top + h, left:left + w] = 1 - image  # dark ink on white paper
    inches = 0.75 * w / 8
    fig, ax = plots.plt.subplots(figsize=(max(3.0, inches * ncols * cell_w / w), inches * nrows * cell_h / w + 0.4))
    ax.imshow(mosaic, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    for i, text in enumerate(captions):
        ax.text(gap + (i % ncols) * cell_w + w / 2 - 0.5, gap + (i // ncols) * cell_h + h + caption / 2 - 0.5, text,
                ha="center", va="center", fontsize=7)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plots.plt.close(fig)
    return Path(path)


def scatter(path: Path, series: dict[str, torch.Tensor], title: str, centers: torch.Tensor | None = None) -> Path:
    """2-D point sets (name -> (N, 2)) on one square plot, the modes' centers marked with crosses."""
    fig, ax = plots.plt.subplots(figsize=(4.5, 4.5))
    for name, points in series.items():
        points = np.asarray(points.detach().cpu(), dtype=np.float64)
        ax.scatter(points[:, 0], points[:, 1], s=4, alpha=0.5, label=name)
    if centers is not None:
        ax.scatter(centers[:, 0], centers[:, 1], marker="x", color="black", s=30, label="modes")
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, markerscale=1.5)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plots.plt.close(fig)
    return path
