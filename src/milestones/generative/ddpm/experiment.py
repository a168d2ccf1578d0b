"""Table 2 in miniature: predicting the noise with the simple loss gives better samples than predicting
the reverse mean with the true variational bound, and the samples are recognisable digits.

Data: sklearn's 8 x 8 digits (`milestones.core.data.load_digits`), the training split scaled to [-1, 1]
as the paper scales its images. Model: model.py's `DDPM`, a small U-Net (widths 16 and 32, attention
over the 4 x 4 level) over T = 50 diffusion steps with the paper's linear schedule (beta 1e-4 .. 0.02 at
T = 1000, both scaled by 1000 / T so that abar_T stays as small), fixed variances sigma_t^2 = beta_t (the
choice of the paper's released CIFAR-10 run). Two arms with the same network, the same initial
weights, the same minibatches and the same number of Adam steps under a cosine decay (the paper trains
with Adam too), each at its own learning rate, the best of the same sweep (notes.md):

- `epsilon`: the network predicts eps, trained on L_simple (eq. 14), Table 2's last row;
- `mu`: the network predicts the reverse mean mu_theta directly, trained on the true bound L (the
  weighted squared error 1 / (2 sigma_t^2) || mu~ - mu_theta ||^2 with its Gaussian decoder at t = 1),
  Table 2's "mu~ prediction, L, fixed isotropic Sigma" row.

Both sample with the same ancestral sampler (Algorithm 2), the x_0 implied by the network clipped to
[-1, 1] at every step as the paper's code does for eps (here for both, so that only the training
differs). Scores (milestones.core.generative): FD-digits of `eval_samples` samples against held-out
digits, with its floor (real against real) and its ceiling (uniform noise); the digits judge's readings
of the samples. Checks:

1. `epsilon_beats_mu`: the epsilon arm's FD-digits is below the mu arm's (the paper: FID 3.17 against 8.06);
2. `digits_fd`: the epsilon arm's FD-digits sits within MAX_FD_POSITION of the floor, in units of the
   floor-to-noise span;
3. `classes`: the judge finds at least MIN_CLASSES of the ten digits among the epsilon arm's samples;
4. `recognisable`: the share of the epsilon arm's samples that the judge reads with confidence at least
   CONFIDENT is at least MIN_CONFIDENT_RATIO times the share among held-out real digits.

`digits_fd` and `recognisable` are expected to fail at the quick budget (notes.md). Figures: each arm's
samples with the judge's reading under each (samples_epsilon.png, samples_mu.png), and the reverse chain
x_T .. x_0 of the first few scored samples of the epsilon arm (denoising.png), kept from the same sampling
pass rather than drawn again.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from milestones.core import Result, Run, UserError, check, experiment, generative
from milestones.core.data import load_digits
from milestones.core.training import evaluating, train
from milestones.generative.ddpm.model import DDPM, DDPMConfig

MAX_FD_POSITION = 0.1  # (FD - floor) / (ceiling - floor) of the epsilon arm's samples
MIN_CLASSES = 10  # digits the judge finds among the epsilon arm's samples
CONFIDENT = 0.9  # the judge's softmax probability for its reading, for a sample to count as confident
MIN_CONFIDENT_RATIO = 0.8  # the samples' confident share / the held-out digits' confident share

CLAIM = (f"Table 2: at the same training budget, predicting the noise with the simple loss gives samples with "
         f"a lower FD-digits than predicting the reverse mean with the true variational bound; its samples are "
         f"digits: FD-digits within MAX_FD_POSITION = {MAX_FD_POSITION} of the real-data floor (in units of the "
         f"floor-to-noise span), at least MIN_CLASSES = {MIN_CLASSES} classes found by the judge, and a share "
         f"read with confidence >= CONFIDENT = {CONFIDENT} at least MIN_CONFIDENT_RATIO = {MIN_CONFIDENT_RATIO} "
         f"times that of real digits.")


@dataclass
class Config:
    steps: int = 50  # T
    widths: str = "16,32"  # U-Net channels per level
    heads: int = 4
    train_steps: int = 600
    batch_size: int = 32
    epsilon_lr: float = 1e-2  # Adam, cosine-decayed to zero; the best of 1e-3 .. 2e-2 (notes.md)
    mu_lr: float = 1e-2  # likewise, swept on its own over the same grid
    eval_samples: int = 224  # FD-digits scores the size of a held-out half (224)
    clip: bool = True  # clip the implied x_0 to [-1, 1] while sampling (both arms)
    variance: str = "beta"  # sigma_t^2 of both arms: "beta" (beta_t) or "posterior" (beta~_t)
    strip_rows: int = 6  # chains shown in denoising.png
    strip_frames: int = 11  # x_t shown per chain, from t = T down to 0


SCALES = {
    "smoke": Config(steps=10, widths="8,16", heads=2, train_steps=10, batch_size=16, strip_rows=2, strip_frames=4),
    "quick": Config(),
    "full": Config(steps=1000, widths="64,128,128", train_steps=20000, batch_size=128, epsilon_lr=2e-4,
                   mu_lr=2e-4, eval_samples=1024),
}


def net_config(cfg: Config, prediction: str) -> DDPMConfig:
    """The network and schedule of one arm; raises ValueError on bad widths or variance."""
    widths = tuple(int(w) for w in cfg.widths.split(","))
    scale = 1000 / cfg.steps  # keeps abar_T near the paper's 4e-5
    return DDPMConfig(widths=widths, heads=cfg.heads, steps=cfg.steps, beta_first=1e-4 * scale,
                      beta_last=min(0.02 * scale, 0.999), prediction=prediction, variance=cfg.variance)


def to_pixels(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clamped: what the judge and the pictures read."""
    return ((x + 1) / 2).clamp(0, 1)


def confident_share(images: torch.Tensor) -> float:
    """The share of images (N, 1, 8, 8) in [0, 1] whose judge reading has probability at least CONFIDENT."""
    with torch.no_grad():
        probs = generative.judge()(images).softmax(1)
    return (probs.max(1).values >= CONFIDENT).float().mean().item()


def draw_samples(model: DDPM, n: int, seed: int, clip: bool, trajectory: bool = False) -> torch.Tensor:
    with evaluating(model):
        return model.sample(n, torch.Generator().manual_seed(seed), clip=clip, trajectory=trajectory).cpu()


# At the quick budget (600 steps of 32 images per arm) the samples are digits but not yet good ones:
# FD-digits sits 0.18 to 0.27 of the span above the floor and the judge is confident of a quarter of
# them, against 0.86 of real digits. The comparison of Table 2 holds on every seed (notes.md).
@experiment(CLAIM, Config, SCALES, expected_failures=("digits_fd", "recognisable"))
def run(cfg: Config, ctx: Run) -> Result:
    if min(cfg.steps, cfg.heads, cfg.train_steps, cfg.batch_size, cfg.strip_rows) < 1 or cfg.strip_frames < 2:
        raise UserError("steps, heads, train_steps, batch_size and strip_rows must be positive, strip_frames >= 2")
    try:
        net_config(cfg, "epsilon")
    except ValueError:
        raise UserError(f"widths must be channels separated by commas (e.g. 16,32), variance 'beta' or 'posterior'; "
                        f"got {cfg.widths!r} and {cfg.variance!r}") from None
    if cfg.eval_samples < len(generative.held_out_halves()[1]):
        raise UserError(f"eval_samples must be at least {len(generative.held_out_halves()[1])} (FD-digits' size)")
    if cfg.strip_rows > cfg.eval_samples:
        raise UserError("strip_rows must be at most eval_samples (denoising.png shows scored samples' chains)")
    split = load_digits()
    x = split.x_train * 2 - 1  # (N, 1, 8, 8) in [-1, 1]
    real = generative.held_out_halves()[1]

    ctx.reseed(1)
    initial = DDPM(net_config(cfg, "epsilon")).state_dict()  # both arms start from these weights

    arms, models = {}, {}
    for prediction, lr in (("epsilon", cfg.epsilon_lr), ("mu", cfg.mu_lr)):
        model = DDPM(net_config(cfg, prediction))
        model.load_state_dict(initial)
        # foreach: each update runs once over all the tensors rather than in a Python loop over them,
        # the same arithmetic bit for bit on CPU, a few per cent of a step
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cfg.train_steps)
        objective = model.simple_loss if prediction == "epsilon" else model.bound_loss
        ctx.reseed(2)  # the same minibatches, steps and noise for both arms

        def batch(i: int):
            return (x[torch.randint(len(x), (cfg.batch_size,))],)

        def loss(net, x0, objective=objective):
            return objective(x0)

        log = train(ctx, f"ddpm-{prediction}", model, optimizer, cfg.train_steps, batch, loss, schedule=schedule,
                    data_parallel=False, log_every=max(1, cfg.train_steps // 10))
        # the epsilon arm keeps its whole chain: the first strip_rows of its scored samples are denoising.png
        chain = draw_samples(model, cfg.eval_samples, ctx.seed, cfg.clip, trajectory=prediction == "epsilon")
        if prediction == "epsilon":
            strip_chains, chain = chain[:, :cfg.strip_rows], chain[0]  # (T + 1, rows, 1, 8, 8), x_0
        samples = to_pixels(chain)
        fd = generative.fd_digits(samples)
        arms[prediction] = {"lr": lr, "fd_digits": fd.as_dict(), "classes": generative.class_coverage(samples),
                            "confident_share": confident_share(samples), "final_loss": log.last("loss")}
        models[prediction] = (model, samples)
    # what `milestones generate` samples from: the epsilon model, with this run's clipping
    ctx.save_trained(net_config(cfg, "epsilon"), "ddpm-epsilon", clip=cfg.clip)

    # ---- pictures
    for prediction, (_, samples) in models.items():
        shown = samples[:40]
        generative.sample_grid(ctx.artifact(f"samples_{prediction}.png"), shown,
                               [f"judge: {int(c)}" for c in generative.judge_predictions(shown)],
                               title=f"{prediction} prediction ({'L_simple' if prediction == 'epsilon' else 'bound'}), "
                                     f"T = {cfg.steps}; FD-digits {arms[prediction]['fd_digits']['value']:.1f}")
    frames = torch.linspace(cfg.steps, 0, cfg.strip_frames).round().long()
    strip = strip_chains[frames].transpose(0, 1).reshape(-1, 1, 8, 8)  # row r: chain r at t = T .. 0
    generative.sample_grid(ctx.artifact("denoising.png"), to_pixels(strip),
                           [f"t={int(t)}" for _ in range(cfg.strip_rows) for t in frames],
                           title="The reverse chain x_T .. x_0 (epsilon prediction), one sample per row",
                           ncols=cfg.strip_frames)

    eps, mu = arms["epsilon"], arms["mu"]
    real_share = confident_share(real)
    checks = [
        check(f"FD-digits of the epsilon / L_simple arm (floor {eps['fd_digits']['floor']:.1f}, ceiling "
              f"{eps['fd_digits']['ceiling']:.1f})", eps["fd_digits"]["value"],
              "<", mu["fd_digits"]["value"], "FD-digits of the mu / true-bound arm", name="epsilon_beats_mu"),
        check("position of the epsilon arm's FD-digits between floor (0) and noise (1)",
              eps["fd_digits"]["position"], "<=", MAX_FD_POSITION, "MAX_FD_POSITION", name="digits_fd"),
        check(f"classes the judge finds among {cfg.eval_samples} epsilon-arm samples (mu arm: {mu['classes']})",
              eps["classes"], ">=", MIN_CLASSES, "MIN_CLASSES", name="classes"),
        check(f"confident share of the epsilon arm's samples ({eps['confident_share']:.3f}; mu arm "
              f"{mu['confident_share']:.3f}) / held-out digits' ({real_share:.3f})",
              eps["confident_share"] / max(real_share, 1e-9), ">=", MIN_CONFIDENT_RATIO, "MIN_CONFIDENT_RATIO",
              name="recognisable"),
    ]
    metrics = {"arms": arms, "real_confident_share": real_share}
    return Result(checks=checks, metrics=metrics)
