"""Figure 1 in miniature: a diffusion model learns the 2-D swiss roll, and its reverse chain turns
Gaussian noise into the roll.

Data: `milestones.core.data.swiss_roll` (a spiral of 1.5 turns, noise std 0.05), a fixed training sample
and a separate held-out sample, both drawn from the run's seed. Model: model.py's `Diffusion`, T = 40
steps, a fixed geometric schedule of beta from 1e-3 to 0.5, the reverse
kernel's mean and variance read from an MLP of (x_t, t). Training: the paper's objective, the negative
bound -K, estimated on each minibatch with one step t drawn per point (`Diffusion.loss`), minimised with
Adam (published three months before the paper; it stands in for the paper's own optimizer, as in the
other toy experiments of this book) under a cosine learning-rate decay.

Scores (milestones.core.generative): the energy distance of `eval_samples` points from the reverse chain
to the first half of the held-out points, with its floor (the second half against the first) and its
ceiling (a Gaussian with the data's mean and covariance). Checks:

1. `energy`: the samples' energy distance sits within MAX_ENERGY_POSITION of the floor, in units of the
   floor-to-ceiling span: close to real data, far below noise that knows the data's first two moments.
   One set of samples scores with a spread of about +-0.06 in these units (notes.md), so the distance is
   averaged over `sample_sets` independent sets. The untrained model's samples (the reverse chain that
   only adds noise) are reported beside it.
2. `bound`: the bound K on the held-out log likelihood (summed over every t, nats turned into bits per
   dimension) beats the exact log likelihood of the best Gaussian (fitted to the training points) by at
   least MIN_BOUND_GAIN bits per dimension: the model's likelihood, not only its samples, has learned the
   roll (the paper's Table 1 reports K against the same kind of Gaussian baseline).

Figure: the forward chain carrying the held-out points into noise, and the reverse chain carrying noise
into the roll, at t = 0, T/4, T/2, T (figure1.png).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from milestones.core import Result, Run, UserError, check, experiment, generative, plots
from milestones.core.data import swiss_roll
from milestones.core.training import evaluating, train
from milestones.generative.diffusion.model import Diffusion, DiffusionConfig

MAX_ENERGY_POSITION = 0.1  # (samples - floor) / (ceiling - floor) of the energy distance to held-out points
MIN_BOUND_GAIN = 0.0  # bits per dimension: held-out K minus the Gaussian fit's exact log likelihood

CLAIM = (f"Figure 1: on the 2-D swiss roll, the learned reverse diffusion turns Gaussian noise into samples whose "
         f"energy distance to held-out data lies within MAX_ENERGY_POSITION = {MAX_ENERGY_POSITION} of the "
         f"data-to-data floor (in units of the floor-to-noise span), and the bound K on the held-out log "
         f"likelihood beats a Gaussian fit by more than MIN_BOUND_GAIN = {MIN_BOUND_GAIN} bits per dimension.")


@dataclass
class Config:
    train_points: int = 8192
    held_out_points: int = 8192  # two halves of 4096: the reference and the floor
    noise: float = 0.05  # the swiss roll's own noise
    steps: int = 40  # T, diffusion steps
    beta_first: float = 1e-3
    beta_last: float = 0.5
    hidden: int = 128
    layers: int = 3
    batch_size: int = 512
    lr: float = 3e-3  # Adam, cosine-decayed to zero over the training steps
    train_steps: int = 2000
    eval_samples: int = 4096  # points per sample set (the size of a held-out half)
    sample_sets: int = 4  # independent sample sets whose energy distances are averaged


SCALES = {
    "smoke": Config(train_points=1024, held_out_points=512, steps=10, hidden=16, layers=2, batch_size=64,
                    train_steps=20, eval_samples=256, sample_sets=2),
    "quick": Config(),
    "full": Config(train_points=65536, held_out_points=8192, hidden=256, layers=4, train_steps=30000,
                   eval_samples=8192),
}


def gaussian_fit_log_likelihood(x_train: torch.Tensor, x: torch.Tensor) -> float:
    """The mean log density (nats per point) of x under the Gaussian fitted to x_train (its mean and covariance)."""
    fit = torch.distributions.MultivariateNormal(x_train.double().mean(0), torch.cov(x_train.double().T))
    return fit.log_prob(x.double()).mean().item()


def held_out_bound(model: Diffusion, x: torch.Tensor) -> float:
    """The mean bound K over the held-out points (nats per point), every t summed, from a fixed generator."""
    with evaluating(model), torch.no_grad():
        return model.bound(x.to(model.beta.device), torch.Generator().manual_seed(1234)).mean().item()


def bits_per_dim(nats: float, dim: int) -> float:
    return nats / (dim * math.log(2))


def figure1(path, forward: torch.Tensor, reverse: torch.Tensor, steps: int):
    """Two rows of scatter panels: the forward chain (T + 1, n, 2) at t = 0, T/4, T/2, T, and the reverse
    chain (T + 1, n, 2) at t = T, T/2, T/4, 0 (the order it runs in)."""
    times = sorted({0, steps // 4, steps // 2, steps})
    fig, axes = plots.plt.subplots(2, len(times), figsize=(2.6 * len(times), 5.4), squeeze=False)
    rows = (("forward q", forward, times), ("reverse p", reverse, times[::-1]))
    for row, (name, chain, order) in enumerate(rows):
        for col, t in enumerate(order):
            ax = axes[row][col]
            points = chain[t].detach().cpu().numpy()
            ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.4, color="C0" if row == 0 else "C1")
            ax.set_xlim(-2.5, 2.5)
            ax.set_ylim(-2.5, 2.5)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{name}: t = {t}", fontsize=8)
    fig.suptitle("Figure 1 in miniature: data to noise (top), noise to data (bottom)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plots.plt.close(fig)
    return path


@experiment(CLAIM, Config, SCALES)
def run(cfg: Config, ctx: Run) -> Result:
    if min(cfg.train_points, cfg.steps, cfg.hidden, cfg.layers, cfg.batch_size, cfg.train_steps) < 1:
        raise UserError("train_points, steps, hidden, layers, batch_size and train_steps must be positive")
    if cfg.held_out_points < 4 or cfg.eval_samples < cfg.held_out_points // 2:
        raise UserError("held_out_points must be at least 4 and eval_samples at least half of it")
    if not 0 < cfg.beta_first <= cfg.beta_last < 1:
        raise UserError("the schedule needs 0 < beta_first <= beta_last < 1")
    x, _ = swiss_roll(cfg.train_points, cfg.noise, seed=2 * ctx.seed + 100)
    held_out, _ = swiss_roll(cfg.held_out_points, cfg.noise, seed=2 * ctx.seed + 101)
    net = DiffusionConfig(dim=2, steps=cfg.steps, beta_first=cfg.beta_first, beta_last=cfg.beta_last,
                          hidden=cfg.hidden, layers=cfg.layers)

    reference = held_out[:cfg.held_out_points // 2]  # the first half, which energy_scores compares against

    def energy_position(model: Diffusion, scores: generative.Bounded) -> tuple[float, list[float]]:
        """The mean over `sample_sets` independent sets of samples of their energy distance to the reference,
        as a position between the floor and the ceiling; and each set's position."""
        values = []
        for k in range(cfg.sample_sets):
            with evaluating(model):
                samples = model.sample(cfg.eval_samples, torch.Generator().manual_seed(7 + k)).cpu()
            values.append(generative.energy_distance(samples[:len(reference)], reference))
        span = scores.ceiling - scores.floor
        return (sum(values) / len(values) - scores.floor) / span, [(v - scores.floor) / span for v in values]

    # the floor (the second held-out half against the first) and the ceiling, computed once
    bounds = generative.energy_scores(held_out[len(reference):], held_out)
    ctx.reseed(1)
    model = Diffusion(net)
    untrained_position, _ = energy_position(model, bounds)
    untrained_bound = held_out_bound(model, held_out)

    ctx.reseed(2)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cfg.train_steps)
    log = train(ctx, "diffusion", model, optimizer, cfg.train_steps,
                lambda i: (x[torch.randint(len(x), (cfg.batch_size,))],), lambda m, xb: m.loss(xb),
                schedule=schedule, data_parallel=False, log_every=max(1, cfg.train_steps // 20))

    with evaluating(model):
        chain = model.sample(cfg.eval_samples, torch.Generator().manual_seed(7), trajectory=True).cpu()
    samples = chain[0]
    position, positions = energy_position(model, bounds)  # the first set is `samples` (seed 7)
    bound = held_out_bound(model, held_out)
    gaussian = gaussian_fit_log_likelihood(x, held_out)
    bound_bits, gaussian_bits = bits_per_dim(bound, 2), bits_per_dim(gaussian, 2)

    # ---- pictures
    model.cpu()
    n_shown = min(1000, cfg.held_out_points, cfg.eval_samples)
    g = torch.Generator().manual_seed(8)
    forward = [held_out[:n_shown]]
    with torch.no_grad():
        for t in range(1, cfg.steps + 1):
            step = torch.full((n_shown,), t)
            forward.append(model.forward_step(forward[-1], step, torch.randn(n_shown, 2, generator=g)))
    figure1(ctx.artifact("figure1.png"), torch.stack(forward), chain[:, :n_shown], cfg.steps)
    generative.scatter(ctx.artifact("samples.png"), {"held-out data": held_out[:cfg.eval_samples],
                                                     "reverse chain": samples},
                       f"Samples after {cfg.train_steps} steps (energy position {positions[0]:.3f})")
    plots.curves(ctx.artifact("loss.png"), {"-K estimate (one t per point)": log.series("loss")},
                 "Training: the negative bound per point", ylabel="nats")

    checks = [
        check(f"energy distance to held-out data, mean of {cfg.sample_sets} sets of {cfg.eval_samples} samples, as a "
              f"position between the floor {bounds.floor:.5f} (0) and the Gaussian ceiling {bounds.ceiling:.5f} (1) "
              f"(each set: {', '.join(f'{p:.3f}' for p in positions)}; untrained reverse chain "
              f"{untrained_position:.2f})", position, "<=", MAX_ENERGY_POSITION, "MAX_ENERGY_POSITION", name="energy"),
        check(f"held-out bound K minus the Gaussian fit's log likelihood, bits per dimension ({bound_bits:.3f} vs "
              f"{gaussian_bits:.3f}; untrained K {bits_per_dim(untrained_bound, 2):.3f})",
              bound_bits - gaussian_bits, ">", MIN_BOUND_GAIN, "MIN_BOUND_GAIN", name="bound"),
    ]
    metrics = {"energy": {"floor": bounds.floor, "ceiling": bounds.ceiling, "mean_position": position,
                          "set_positions": positions},
               "untrained_energy_position": untrained_position,
               "bound_nats_per_point": bound, "bound_bits_per_dim": bound_bits,
               "gaussian_bits_per_dim": gaussian_bits, "untrained_bound_bits_per_dim": bits_per_dim(untrained_bound, 2),
               "loss": log.series("loss")}
    return Result(checks=checks, metrics=metrics)
