"""The GAN game on a toy with known modes: coverage (Section 5's promise), and the saturating loss
against the non-saturating one (Section 3), in miniature.

Data: `milestones.core.data.gaussian_ring`, eight small Gaussians (std 0.05) on the unit circle, the
standard test of whether a generator finds every mode; a fixed training sample and a separate held-out
sample. Networks: the MLPs of model.py (two hidden layers of rectifiers, noise of 8 dimensions).
Training alternates k discriminator steps and one generator step on minibatches of 256 (the paper's
Algorithm 1; `k` = 1, as in the paper: k = 2 and 3 did worse on seeds 3-8, notes.md), both with Adam
(beta_1 = 0.5): the paper's SGD with momentum diverged or collapsed onto one mode at every rate we
tried in the quick budget (notes.md), so Adam, published six months later, stands in for it; the
claims are about the game and the generator's loss, not the optimizer. The two players have their own
learning rates, the generator's 3e-4 and the discriminator's 1e-3, chosen on a
grid on seeds 3-8 (never 0-2) where both are interior optima: a discriminator that learns faster than
the generator stays nearer its best reply, which is what the paper's analysis assumes (and what its k
discriminator steps per generator step are for). With one rate of 1e-3 for both, 7 of 9 GANs on seeds
0-2 collapsed onto a few modes (notes.md).

Scores (milestones.core.generative): the energy distance of 1,024 generated points to the held-out
points, with its floor (held-out half against half) and its ceiling (a Gaussian with the data's mean
and covariance), and the modes covered (a mode counts when at least MIN_MODE_SHARE of the samples lie
within 3 standard deviations of it).

1. Coverage: GANs trained with the non-saturating loss from scratch (`restarts` of them, from different
   initial weights, scored by their median, since single runs differ widely) cover all eight modes
   (`modes`), and their energy distance falls below the noise ceiling (`energy`).
2. Section 3: the discriminator is first trained alone against the initial generator until it rejects
   its samples with confidence (a strong discriminator early on). From that same start, one generator
   trains with the minimax loss log(1 - D(G(z))) and one with the non-saturating -log D(G(z)). Checks:
   at the start the non-saturating gradient (norm over the generator's weights) is at least
   MIN_GRADIENT_RATIO times the minimax one (`early_gradients`); the minimax generator stalls, its
   energy distance after training not below half its starting value (`minimax_stalls`); the
   non-saturating generator trains, its distance falling to at most half its starting value
   (`non_saturating_trains`). To see what the optimizer does with the weak gradient, the run also records
   the cosine between the two losses' starting gradients and, every few steps, each generator's gradient
   norm next to the norm of its Adam step (the change in its weights).
3. Digits (a reported measurement, no check): a GAN with the same two learning rates trains on sklearn's
   8 x 8 digits (generator with sigmoid outputs, as the paper's pixel generators had); its samples are
   scored by the digits judge (classes covered, FD-digits between its floor and ceiling, against the
   untrained generator) and saved as `digits_samples.png`; `milestones generate RUN_DIR` samples it.
   At `quick` it has only `digits_steps` = 1000 steps, which the budget allows, and is far from
   converged (notes.md).
"""

from __future__ import annotations

import copy
import statistics
from dataclasses import dataclass

import torch

from milestones.core import Result, Run, UserError, check, experiment, generative, plots
from milestones.core.data import gaussian_ring, load_digits, ring_centers
from milestones.generative.gan.model import (
    GENERATOR_LOSSES,
    Discriminator,
    GANConfig,
    Generator,
    discriminator_loss,
)

MODES = 8
MODE_STD = 0.05
MODE_RADIUS = 3 * MODE_STD  # a sample within 3 standard deviations of a mode's center counts for it
MIN_MODE_SHARE = 0.02  # of the samples, near a mode for it to count as covered (1/8 = 0.125 if balanced)
MIN_GRADIENT_RATIO = 10.0  # non-saturating / minimax generator-gradient norm against a strong discriminator
STALL_FRACTION = 0.5  # "trains": the energy distance falls to at most this fraction of its starting value

CLAIM = (f"A GAN's generator, trained against its discriminator, covers all {MODES} modes of a ring of Gaussians "
         f"with an energy distance to held-out data below noise; and (Section 3) against a strong early "
         f"discriminator the minimax loss gives the generator gradients at least MIN_GRADIENT_RATIO = "
         f"{MIN_GRADIENT_RATIO:g} times weaker than the non-saturating loss and stalls (its energy distance does not "
         f"fall to STALL_FRACTION = {STALL_FRACTION} of its start) while the non-saturating one trains (it does).")


@dataclass
class Config:
    train_points: int = 8192
    held_out_points: int = 2048
    noise_dim: int = 8
    hidden: int = 64
    layers: int = 2
    batch_size: int = 256
    lr_generator: float = 3e-4  # Adam (beta_1 = 0.5, as DCGAN); the interior optimum of a grid on seeds 3-8
    lr_discriminator: float = 1e-3  # the discriminator moves faster, so it stays nearer its best reply
    steps: int = 1000  # generator steps, each coverage run
    k: int = 1  # discriminator steps per generator step (Algorithm 1's k); the paper used 1, so do we (notes.md)
    restarts: int = 3  # coverage runs from different initial weights; their median is scored
    strong_d_steps: int = 200  # discriminator-only steps before the Section 3 comparison
    section3_steps: int = 400  # alternating steps for each generator loss after that
    eval_samples: int = 2048
    digits_steps: int = 1000  # the digits GAN (reported, not checked); 0 leaves it out
    digits_batch: int = 64
    digits_noise: int = 16
    digits_hidden: int = 128


SCALES = {
    "smoke": Config(train_points=1024, held_out_points=512, hidden=16, steps=10, restarts=1, strong_d_steps=5,
                    section3_steps=10, eval_samples=512, digits_steps=10, digits_hidden=16),
    "quick": Config(),
    "full": Config(train_points=65536, held_out_points=8192, hidden=256, layers=3, steps=10000, strong_d_steps=1000,
                   section3_steps=5000, eval_samples=8192, digits_steps=10000, digits_hidden=256),
}


def adam(parameters, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(parameters, lr=lr, betas=(0.5, 0.999))


def scores(generator: Generator, held_out: torch.Tensor, n: int) -> dict:
    """Energy distance (with floor and ceiling), modes covered and near-mode share of n fresh samples."""
    with torch.no_grad():
        samples = generator.sample(n, torch.Generator().manual_seed(7)).cpu()  # the same noise at every call
    centers = ring_centers(MODES)
    return {"energy": generative.energy_scores(samples, held_out).as_dict(),
            "modes": generative.modes_covered(samples, centers, MODE_RADIUS, max(1, round(MIN_MODE_SHARE * n))),
            "near_mode": generative.near_mode_fraction(samples, centers, MODE_RADIUS), "samples": samples}


def without_samples(record: dict) -> dict:
    """A score record for result.json: without the sample tensors and the training log it carries."""
    return {k: v for k, v in record.items() if k not in ("samples", "log")}


def generator_gradient(generator: Generator, discriminator: Discriminator, loss: str, n: int) -> torch.Tensor:
    """The gradient of the generator's loss over all its weights (one flat vector), on n fixed noise draws."""
    z = torch.randn(n, generator.cfg.noise_dim, generator=torch.Generator().manual_seed(11))
    generator.zero_grad()
    GENERATOR_LOSSES[loss](discriminator(generator(z))).backward()
    gradient = torch.cat([p.grad.flatten() for p in generator.parameters()])
    generator.zero_grad()
    discriminator.zero_grad()
    return gradient


def train_gan(ctx: Run, name: str, g: Generator, d: Discriminator, x: torch.Tensor, steps: int, cfg: Config,
              loss: str = "non_saturating", train_generator: bool = True, batch_size: int | None = None,
              log_every: int | None = None):
    """The paper's Algorithm 1: each of `steps` steps does cfg.k discriminator steps, each on a fresh
    minibatch, then one generator step; in Run.fit so the run logs, checkpoints and resumes like every
    other. The log records the generator's gradient norm, the size of its Adam update (the norm of the
    change in its weights) and D's mean output on generated points."""
    g_opt, d_opt = adam(g.parameters(), cfg.lr_generator), adam(d.parameters(), cfg.lr_discriminator)
    generator_loss = GENERATOR_LOSSES[loss]
    batch_size = batch_size or cfg.batch_size
    log_every = log_every or max(1, steps // 20)

    def step(i: int) -> dict:
        for _ in range(cfg.k if train_generator else 1):
            real = x[torch.randint(len(x), (batch_size,))]
            fake = g.sample(batch_size).detach()
            d_loss = discriminator_loss(d(real), d(fake))
            d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            d_opt.step()
        metrics = {"loss": d_loss.detach()}
        if train_generator:
            logits = d(g.sample(batch_size))
            g_loss = generator_loss(logits)
            g_opt.zero_grad(set_to_none=True)
            g_loss.backward()
            metrics |= {"g_loss": g_loss.detach(), "d_of_fake": torch.sigmoid(logits).mean().detach()}
            # the two norms cost a copy of G's weights, so only on the steps Run.fit logs
            logged = (i + 1) % log_every == 0 or i + 1 == steps
            if logged:
                before = torch.cat([p.detach().flatten() for p in g.parameters()])
            g_opt.step()
            if logged:
                after = torch.cat([p.detach().flatten() for p in g.parameters()])
                metrics |= {"g_grad_norm": torch.cat([p.grad.flatten() for p in g.parameters()]).norm(),
                            "g_update_norm": (after - before).norm()}
            d.zero_grad(set_to_none=True)  # the generator's step also filled D's gradients; drop them
        return metrics

    # the generator is saved as "model": what `load_trained` (milestones generate) reads
    return ctx.fit(name, steps, step, {"model": g, "discriminator": d, "g_opt": g_opt, "d_opt": d_opt},
                   log_every=log_every)


@experiment(CLAIM, Config, SCALES, expected_failures=("modes", "energy", "minimax_stalls", "non_saturating_trains"))
def run(cfg: Config, ctx: Run) -> Result:
    if min(cfg.train_points, cfg.noise_dim, cfg.hidden, cfg.layers, cfg.batch_size, cfg.steps, cfg.k, cfg.restarts,
           cfg.section3_steps) < 1 or min(cfg.lr_generator, cfg.lr_discriminator) <= 0:
        raise UserError("train_points, noise_dim, hidden, layers, batch_size, steps, k, restarts, section3_steps, "
                        "lr_generator and lr_discriminator must be positive")
    if cfg.held_out_points < 4 or cfg.eval_samples < cfg.held_out_points // 2:
        raise UserError("held_out_points must be at least 4 and eval_samples at least half of it")
    x, _ = gaussian_ring(cfg.train_points, MODES, std=MODE_STD, seed=2 * ctx.seed + 100)
    held_out, _ = gaussian_ring(cfg.held_out_points, MODES, std=MODE_STD, seed=2 * ctx.seed + 101)
    net = GANConfig(noise_dim=cfg.noise_dim, hidden=cfg.hidden, layers=cfg.layers)

    # ---- 1. coverage: several GANs trained from scratch with the non-saturating loss; the median counts
    runs = []
    for r in range(cfg.restarts):
        ctx.reseed(10 + r)
        g, d = Generator(net), Discriminator(net)
        ctx.reseed(20 + r)
        log = train_gan(ctx, f"gan-{r}", g, d, x, cfg.steps, cfg)
        runs.append(scores(g, held_out, cfg.eval_samples) | {"log": log})
    median_modes = statistics.median_low([run["modes"] for run in runs])
    median_energy = statistics.median_low([run["energy"]["value"] for run in runs])
    coverage = runs[0]

    # ---- 2. Section 3: the same strong-discriminator start for both generator losses
    ctx.reseed(3)
    g0, d0 = Generator(net), Discriminator(net)
    ctx.reseed(4)
    train_gan(ctx, "strong-discriminator", g0, d0, x, cfg.strong_d_steps, cfg, train_generator=False)
    with torch.no_grad():
        d_start = torch.sigmoid(d0(g0.sample(cfg.eval_samples, torch.Generator().manual_seed(7)))).mean().item()
    start = scores(g0, held_out, cfg.eval_samples)
    gradients = {loss: generator_gradient(g0, d0, loss, cfg.batch_size) for loss in GENERATOR_LOSSES}
    # near 1 when the minimax gradient is nearly the non-saturating one scaled down, which Adam undoes
    cosine = torch.nn.functional.cosine_similarity(*gradients.values(), dim=0).item()
    section3 = {}
    for loss in GENERATOR_LOSSES:
        g, d = copy.deepcopy(g0), copy.deepcopy(d0)
        ctx.reseed(5)  # the same minibatches and noise for both losses
        # logged every 5 steps at quick, to see the first steps, where the two losses differ most
        loss_log = train_gan(ctx, f"section3-{loss}", g, d, x, cfg.section3_steps, cfg, loss,
                             log_every=max(1, cfg.section3_steps // 80))
        section3[loss] = {"initial_gradient_norm": gradients[loss].norm().item(),
                          "end": scores(g, held_out, cfg.eval_samples),
                          "gradient_norms": loss_log.series("g_grad_norm"),
                          "update_norms": loss_log.series("g_update_norm"), "d_of_fake": loss_log.series("d_of_fake")}

    # ---- 3. digits (reported): the same game on sklearn's 8 x 8 digits, scored by the judge
    digits = train_digits(ctx, cfg) if cfg.digits_steps > 0 else None

    # ---- pictures
    centers = ring_centers(MODES)
    for r, run_scores in enumerate(runs):
        generative.scatter(ctx.artifact(f"samples_{r}.png"), {"held-out data": held_out,
                                                               "generator": run_scores["samples"]},
                           f"GAN {r}: {run_scores['modes']} of {MODES} modes", centers=centers)
    generative.scatter(ctx.artifact("section3_samples.png"), {
        "start (strong D)": start["samples"], "minimax after": section3["minimax"]["end"]["samples"],
        "non-saturating after": section3["non_saturating"]["end"]["samples"]},
        "Section 3: generator samples from a strong-discriminator start", centers=centers)
    plots.curves(ctx.artifact("section3_gradients.png"), {
        f"{loss} {what}": section3[loss][key] for loss in GENERATOR_LOSSES
        for what, key in (("|grad G|", "gradient_norms"), ("|Adam step|", "update_norms"))},
        "Generator gradient and Adam step after a strong-discriminator start", ylabel="norm", logy=True)
    plots.curves(ctx.artifact("losses.png"), {"discriminator": coverage["log"].series("loss"),
                                              "generator": coverage["log"].series("g_loss")},
                 "GAN losses (first coverage run)")

    start_energy = start["energy"]["value"]
    ends = {loss: section3[loss]["end"]["energy"]["value"] for loss in GENERATOR_LOSSES}
    norms = {loss: section3[loss]["initial_gradient_norm"] for loss in GENERATOR_LOSSES}
    floor, ceiling = statistics.median([r["energy"]["floor"] for r in runs]), runs[0]["energy"]["ceiling"]
    each = ", ".join(f"{r['modes']}" for r in runs)
    checks = [
        check(f"median over {cfg.restarts} GANs of the modes covered by {cfg.eval_samples} samples (each: {each})",
              median_modes, ">=", MODES, "all modes", name="modes"),
        check(f"median over {cfg.restarts} GANs of the energy distance to held-out data (floor {floor:.4f}; each: "
              + ", ".join(f"{r['energy']['value']:.4f}" for r in runs) + ")", median_energy, "<", ceiling,
              "the noise ceiling", name="energy"),
        check(f"non-saturating / minimax generator-gradient norm at a strong-discriminator start (D(G(z)) = "
              f"{d_start:.4f}; {norms['non_saturating']:.3g} vs {norms['minimax']:.3g})",
              norms["non_saturating"] / max(norms["minimax"], 1e-30), ">=", MIN_GRADIENT_RATIO, "MIN_GRADIENT_RATIO",
              name="early_gradients"),
        check(f"minimax generator's energy distance after {cfg.section3_steps} steps (start {start_energy:.4f})",
              ends["minimax"], ">", STALL_FRACTION * start_energy, "STALL_FRACTION x start", name="minimax_stalls"),
        check(f"non-saturating generator's energy distance after {cfg.section3_steps} steps (start "
              f"{start_energy:.4f})", ends["non_saturating"], "<=", STALL_FRACTION * start_energy,
              "STALL_FRACTION x start", name="non_saturating_trains"),
    ]
    metrics = {"coverage": {"runs": [without_samples(r) for r in runs], "median_modes": median_modes,
                            "median_energy": median_energy},
               "section3": {"d_of_fake_at_start": d_start, "start": without_samples(start),
                            "initial_gradient_cosine": cosine,
                            **{loss: {"initial_gradient_norm": r["initial_gradient_norm"],
                                      "end": without_samples(r["end"]), "gradient_norms": r["gradient_norms"],
                                      "update_norms": r["update_norms"], "d_of_fake": r["d_of_fake"]}
                               for loss, r in section3.items()}},
               "digits": digits}
    return Result(checks=checks, metrics=metrics)


def digits_scores(g: Generator, n: int = 500) -> dict:
    """The judge's reading of n samples (the same noise at every call): classes covered, FD-digits."""
    with torch.no_grad():
        images = g.sample(n, torch.Generator().manual_seed(7)).cpu().view(n, 1, 8, 8)
    return {"classes": generative.class_coverage(images), "fd": generative.fd_digits(images).as_dict(),
            "samples": images}


def train_digits(ctx: Run, cfg: Config) -> dict:
    """A GAN on the training digits (flattened to 64 pixels in [0, 1]), with the coverage runs' optimizers;
    its samples are scored against the untrained generator's and saved as a grid."""
    x = load_digits().x_train.flatten(1)
    net = GANConfig(data_dim=64, noise_dim=cfg.digits_noise, hidden=cfg.digits_hidden, layers=2,
                    sigmoid_output=True)
    ctx.reseed(30)
    g, d = Generator(net), Discriminator(net)
    untrained = digits_scores(g)
    ctx.reseed(31)
    train_gan(ctx, "digits", g, d, x, cfg.digits_steps, cfg, batch_size=cfg.digits_batch)
    ctx.save_trained(net, "digits")  # what `milestones generate` samples from
    trained = digits_scores(g)
    shown = trained["samples"][:50]
    readings = generative.judge_predictions(shown)
    generative.sample_grid(ctx.artifact("digits_samples.png"), shown, [f"judge: {int(c)}" for c in readings],
                           f"GAN on 8 x 8 digits after {cfg.digits_steps} steps: {trained['classes']} of 10 classes, "
                           f"FD-digits {trained['fd']['value']:.1f} (floor {trained['fd']['floor']:.1f}, "
                           f"ceiling {trained['fd']['ceiling']:.1f})")
    return {"steps": cfg.digits_steps, "trained": without_samples(trained), "untrained": without_samples(untrained)}
