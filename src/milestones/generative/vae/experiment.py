"""AEVB's two pictures in miniature: its gradient against the score function's (Figure 2, Section 2.2)
and a two-dimensional latent space that lays the digits out (Figure 4).

Data: sklearn's 8 x 8 digits (64 pixel intensities in [0, 1]), the training split for training and the
held-out split for every score. Model: the VAE of model.py, one hidden layer of tanh units in each
network and a Bernoulli decoder, trained with Adagrad on minibatches of 100, one sample of z per digit
(the paper's Section 5 recipe, shrunk).

1. Figure 2 compares how fast AEVB raises the bound against earlier estimators; Section 2.2 names the
   reason: the naive score-function estimator of the bound's gradient in the encoder's parameters,
   E_q[ f(z) grad log q(z | x) ], "exhibits very high variance". Two VAEs with the same initial weights
   and the same minibatches train for the same number of steps, one with the reparameterized gradient
   (`VAE.elbo`), one with the score-function gradient (`VAE.score_function_surrogate`; the KL term is
   exact in both, so only the encoder's route through the sampled reconstruction differs). Each has
   its own Adagrad learning rate, the best of a sweep made while writing this (notes.md). Checks: AEVB's
   held-out ELBO beats the score function's by at least MIN_ELBO_GAP nats per digit (`elbo`), and the
   variance of the one-minibatch gradient estimate in the encoder's weights, at the same parameters
   (the initial ones and AEVB's trained ones), is at least MIN_VARIANCE_RATIO times lower with AEVB
   (`variance`; the smaller of the two ratios counts).
2. Figure 4: a VAE with a two-dimensional code. The decoder's mean image at a 15 x 15 grid of codes
   spaced evenly in the prior's quantiles (so the grid is a stratified sample of the prior) is plotted
   as the learned manifold and scored by the judge (milestones.core.generative): the grid holds at
   least MIN_GRID_CLASSES of the ten digits (`grid_classes`), its FD-digits lies below the noise
   ceiling (`grid_fd`), and held-out digits whose codes are neighbours share a class: the 5-nearest-
   neighbour vote of the training digits' codes classifies held-out digits with accuracy at least
   MIN_LATENT_KNN (`latent_neighbours`). The untrained VAE's numbers are reported beside each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from milestones.core import Result, Run, UserError, check, experiment, generative, plots
from milestones.core.data import load_digits
from milestones.core.training import evaluating, train
from milestones.generative.vae.model import VAE, VAEConfig

MIN_ELBO_GAP = 0.5  # nats per digit: AEVB's held-out ELBO minus the score-function estimator's
MIN_VARIANCE_RATIO = 10.0  # score-function gradient variance / AEVB's, in the encoder's weights
MIN_GRID_CLASSES = 8  # classes the judge finds among the decoded 15 x 15 grid
MIN_LATENT_KNN = 0.6  # 5-NN accuracy of held-out digits in the 2-D code space (chance: about 0.1)

CLAIM = (f"Figure 2 and Section 2.2: with the same steps, the reparameterized (AEVB) gradient reaches a held-out "
         f"ELBO at least MIN_ELBO_GAP = {MIN_ELBO_GAP} nats per digit better than the score-function estimator, "
         f"whose gradient variance is at least MIN_VARIANCE_RATIO = {MIN_VARIANCE_RATIO:g} times larger; "
         f"Figure 4: a 2-D latent space lays the digits out as a manifold (at least MIN_GRID_CLASSES = "
         f"{MIN_GRID_CLASSES} classes on the decoded grid, FD-digits below noise, held-out 5-NN accuracy in the "
         f"code space at least MIN_LATENT_KNN = {MIN_LATENT_KNN}).")


@dataclass
class Config:
    hidden: int = 100  # tanh units per network (the paper: 500 for MNIST's 784 pixels)
    latent: int = 5  # Figure 2's code size (the paper: 3 to 200)
    steps: int = 1000  # optimizer steps for each estimator
    batch_size: int = 100  # the paper's M = 100
    aevb_lr: float = 0.03  # Adagrad; the best of 0.01, 0.03, 0.1, 0.3 (notes.md)
    score_lr: float = 0.03  # Adagrad; the best of 0.01, 0.03, 0.1 (notes.md)
    variance_draws: int = 100  # gradient estimates per variance measurement
    elbo_draws: int = 10  # samples of z per held-out digit when scoring the ELBO
    manifold_steps: int = 3000  # AEVB steps of the 2-D model (Figure 4)
    manifold_lr: float = 0.1  # Adagrad; the 2-D model's own learning rate, the better of 0.03 and 0.1 (notes.md)
    grid: int = 15  # the decoded grid is grid x grid codes


SCALES = {
    "smoke": Config(hidden=16, steps=20, variance_draws=4, elbo_draws=2, manifold_steps=20),
    "quick": Config(),
    "full": Config(hidden=400, latent=10, steps=20000, variance_draws=400, elbo_draws=50, manifold_steps=20000),
}


def held_out_elbo(model: VAE, x: torch.Tensor, draws: int) -> float:
    """The mean ELBO per digit over `draws` samples of z each, from a generator of its own (the training
    RNG is untouched, so evaluating does not change the run)."""
    g = torch.Generator().manual_seed(1234)
    with evaluating(model):
        return torch.stack([model.elbo(x, torch.randn(len(x), model.cfg.latent, generator=g))
                            for _ in range(draws)]).mean().item()


def encoder_gradient_variance(model: VAE, x: torch.Tensor, estimator: str, draws: int) -> dict:
    """Over `draws` one-sample gradient estimates of the minibatch's mean ELBO in the encoder's weights:
    the total variance (the trace of their covariance) and the squared norm of their mean."""
    weights = [*model.enc_hidden.parameters(), *model.enc_out.parameters()]
    estimates = []
    for _ in range(draws):
        elbo = model.elbo(x) if estimator == "aevb" else model.score_function_surrogate(x)[0]
        grads = torch.autograd.grad(elbo.mean(), weights)
        estimates.append(torch.cat([g.flatten() for g in grads]))
    estimates = torch.stack(estimates)
    return {"variance": estimates.var(0).sum().item(), "mean_squared_norm": estimates.mean(0).square().sum().item()}


def train_vae(ctx: Run, name: str, model: VAE, x: torch.Tensor, x_test: torch.Tensor, steps: int, lr: float,
              cfg: Config, estimator: str = "aevb"):
    def batch(i: int):
        return (x[torch.randint(len(x), (cfg.batch_size,))],)

    def loss(net, xb):
        if estimator == "aevb":
            elbo = net.elbo(xb)
            return -elbo.mean(), {"elbo": elbo.mean().detach()}
        surrogate, elbo = net.score_function_surrogate(xb)
        return -surrogate.mean(), {"elbo": elbo.mean()}

    optimizer = torch.optim.Adagrad(model.parameters(), lr=lr)
    return train(ctx, name, model, optimizer, steps, batch, loss, data_parallel=False, log_every=max(1, steps // 20),
                 evaluate=lambda: {"held_out_elbo": held_out_elbo(model, x_test, 2)})


def code_grid(n: int) -> torch.Tensor:
    """(n * n, 2) codes on the prior's quantiles 0.03 .. 0.97 in each coordinate, row by row from the top."""
    values = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.03, 0.97, n))
    return torch.stack(torch.meshgrid(values, values.flip(0), indexing="xy"), -1).reshape(-1, 2)


def manifold_scores(model: VAE, split, grid: int) -> dict:
    """The judge's reading of the decoded grid, and how well code-space neighbours agree on the class."""
    with evaluating(model):
        images = model.mean_image(code_grid(grid)).view(-1, 1, 8, 8)
        codes_train = model.encode(split.x_train.flatten(1))[0]
        codes_test = model.encode(split.x_test.flatten(1))[0]
    neighbours = torch.cdist(codes_test, codes_train).topk(5, largest=False).indices
    votes = split.y_train[neighbours].mode(1).values
    fd = generative.fd_digits(images) if len(images) >= len(generative.held_out_halves()[1]) else None
    return {"grid_classes": generative.class_coverage(images), "grid_fd": fd.as_dict() if fd else None,
            "knn_accuracy": (votes == split.y_test).float().mean().item(), "images": images}


@experiment(CLAIM, Config, SCALES)
def run(cfg: Config, ctx: Run) -> Result:
    if min(cfg.hidden, cfg.latent, cfg.steps, cfg.batch_size, cfg.variance_draws, cfg.elbo_draws) < 1 or cfg.grid < 2:
        raise UserError("hidden, latent, steps, batch_size, variance_draws and elbo_draws must be positive, grid >= 2")
    split = load_digits()
    x, x_test = split.x_train.flatten(1), split.x_test.flatten(1)
    pixel_mean = x.mean(0).clamp(1e-4, 1 - 1e-4)  # the best model of independent pixels: a reference level
    independent = (x_test * pixel_mean.log() + (1 - x_test) * (1 - pixel_mean).log()).sum(1).mean().item()

    # ---- 1. Figure 2: AEVB against the score-function estimator
    ctx.reseed(1)
    initial = VAE(VAEConfig(hidden=cfg.hidden, latent=cfg.latent)).state_dict()
    probe = x[:cfg.batch_size]  # the minibatch on which gradient variance is measured
    runs, variances = {}, {}
    for estimator, lr in (("aevb", cfg.aevb_lr), ("score", cfg.score_lr)):
        model = VAE(VAEConfig(hidden=cfg.hidden, latent=cfg.latent))
        model.load_state_dict(initial)
        if estimator == "aevb":
            ctx.reseed(2)
            variances["initial"] = {e: encoder_gradient_variance(model, probe, e, cfg.variance_draws)
                                    for e in ("aevb", "score")}
        ctx.reseed(3)  # the same minibatches and the same noise draws for both
        log = train_vae(ctx, f"vae-{estimator}", model, x, x_test, cfg.steps, lr, cfg, estimator)
        runs[estimator] = {"held_out_elbo": held_out_elbo(model, x_test, cfg.elbo_draws), "lr": lr,
                           "curve": log.series("held_out_elbo")}
        if estimator == "aevb":
            ctx.reseed(4)
            variances["trained"] = {e: encoder_gradient_variance(model, probe, e, cfg.variance_draws)
                                    for e in ("aevb", "score")}
    ratios = {point: v["score"]["variance"] / v["aevb"]["variance"] for point, v in variances.items()}
    gap = runs["aevb"]["held_out_elbo"] - runs["score"]["held_out_elbo"]

    # ---- 2. Figure 4: a two-dimensional code
    ctx.reseed(5)
    flat = VAE(VAEConfig(hidden=cfg.hidden, latent=2))
    untrained = manifold_scores(flat, split, cfg.grid)
    ctx.reseed(6)
    train_vae(ctx, "vae-2d", flat, x, x_test, cfg.manifold_steps, cfg.manifold_lr, cfg)
    ctx.save_trained(flat.cfg, "vae-2d")  # what `milestones generate` samples from
    trained = manifold_scores(flat, split, cfg.grid)
    manifold_elbo = held_out_elbo(flat, x_test, cfg.elbo_draws)

    # ---- pictures
    plots.curves(ctx.artifact("elbo_curves.png"), {
        f"AEVB (reparameterized, lr {cfg.aevb_lr:g})": runs["aevb"]["curve"],
        f"score function (lr {cfg.score_lr:g})": runs["score"]["curve"]},
        "Held-out ELBO per digit (Figure 2 in miniature)", ylabel="ELBO (nats)",
        hlines={"independent pixels": independent})
    readings = generative.judge_predictions(trained["images"])
    generative.sample_grid(ctx.artifact("manifold.png"), trained["images"], [str(int(c)) for c in readings],
                           title="The 2-D latent space decoded (Figure 4); the judge's reading above each",
                           ncols=cfg.grid)
    samples = flat.sample(40, torch.Generator().manual_seed(ctx.seed)).detach().view(-1, 1, 8, 8)
    generative.sample_grid(ctx.artifact("samples.png"), samples,
                           [f"judge: {int(c)}" for c in generative.judge_predictions(samples)],
                           title="Samples from the prior (2-D code)")

    grid_fd = trained["grid_fd"] or {"value": math.nan, "ceiling": math.nan}
    checks = [
        check(f"AEVB minus score-function held-out ELBO after {cfg.steps} steps ({runs['aevb']['held_out_elbo']:.2f} "
              f"vs {runs['score']['held_out_elbo']:.2f} nats)", gap, ">=", MIN_ELBO_GAP, "MIN_ELBO_GAP", name="elbo"),
        check(f"score-function / AEVB encoder-gradient variance, the smaller of initial ({ratios['initial']:.0f}) and "
              f"trained ({ratios['trained']:.0f})", min(ratios.values()), ">=", MIN_VARIANCE_RATIO,
              "MIN_VARIANCE_RATIO", name="variance"),
        check(f"classes the judge finds on the decoded {cfg.grid} x {cfg.grid} grid (untrained: "
              f"{untrained['grid_classes']})", trained["grid_classes"], ">=", MIN_GRID_CLASSES, "MIN_GRID_CLASSES",
              name="grid_classes"),
        check("FD-digits of the decoded grid (floor real vs real "
              f"{(trained['grid_fd'] or {}).get('floor', math.nan):.1f}; untrained "
              f"{(untrained['grid_fd'] or {}).get('value', math.nan):.1f})", grid_fd["value"], "<", grid_fd["ceiling"],
              "FD-digits of uniform noise", name="grid_fd"),
        check(f"5-NN accuracy of held-out digits in the 2-D code space (untrained: {untrained['knn_accuracy']:.3f})",
              trained["knn_accuracy"], ">=", MIN_LATENT_KNN, "MIN_LATENT_KNN", name="latent_neighbours"),
    ]
    strip = lambda scores: {k: v for k, v in scores.items() if k != "images"}  # noqa: E731
    metrics = {"figure2": {"runs": runs, "elbo_gap": gap, "gradient_variance": variances, "variance_ratio": ratios,
                           "independent_pixels_elbo": independent},
               "figure4": {"trained": strip(trained), "untrained": strip(untrained), "held_out_elbo": manifold_elbo}}
    return Result(checks=checks, metrics=metrics)
