"""GELU's claims, in miniature.

1. The paper's motivation (Section 2): GELU(x) = x Phi(x) is the expected value of the stochastic
   regularizer that keeps x with probability Phi(x) and zeroes it otherwise. We draw that mask many
   times on a grid of inputs and compare the Monte Carlo mean with x Phi(x), in units of its
   standard error; and we confirm the mean is clearly not ReLU (GELU dips below zero for x < 0).
2. The MNIST classification experiment (Section 3.1, Figure 2) in miniature, with the paper's
   protocol: its 8-layer, 128-unit MLP trained with Adam (batches of 128) on the 8x8 digits, once per
   nonlinearity (GELU, ReLU, ELU), in two arms: without dropout and with dropout 0.5 after every
   hidden layer. In each arm each nonlinearity gets its own learning rate from the paper's grid
   {1e-3, 1e-4, 1e-5}, the one whose training-loss curve has the lowest area (see below) over the
   first `lr_inits` initializations; at that rate it is trained from `inits` (five, as in the paper)
   initializations and we take the pointwise median of their training-loss curves. Initialization k
   gives every nonlinearity and rate the same initial weights (unit-norm rows, as in the authors'
   code) and the same minibatches.

   The training loss is the cross-entropy of the whole training set (1,348 digits), dropout off,
   every `log_every` steps. A curve's area is the mean of its log: the loss falls by one to three
   orders of magnitude, so a plain mean would only weigh the first few dozen steps, while the mean
   of the log weighs every factor of ten of progress alike. We report it as a loss, exp(mean log),
   the curve's geometric mean. The check, per arm: GELU's median curve has an area no higher than
   the best of ReLU's and ELU's. The final median training loss and the median final test loss are
   reported, not checked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from milestones.core import Result, Run, check, experiment, plots
from milestones.core.data import load_digits
from milestones.core.training import best_learning_rate, evaluating, train
from milestones.optimization.gelu.model import (
    GELU,
    DeepMLP,
    gelu,
    standard_normal_cdf,
    stochastic_gate,
    unit_norm_rows_,
)

MONTE_CARLO_Z = 5.0  # the Monte Carlo mean must lie within 5 standard errors of x Phi(x) everywhere
NOT_RELU = 0.1  # ... and differ from ReLU by at least 0.1 somewhere (GELU's minimum is -0.17)

CLAIM = ("GELU(x) = x Phi(x) is the expected value of x under a Bernoulli(Phi(x)) gate (Section 2, checked by "
         f"Monte Carlo to {MONTE_CARLO_Z:g} standard errors), and on a digits version of the paper's 8-layer MLP "
         "experiment (Figure 2: each nonlinearity at its own learning rate from {1e-3, 1e-4, 1e-5}, curves the "
         "median of five runs) GELU's median training-loss curve lies no higher, by its area, than the best of "
         "ReLU's and ELU's, both without dropout and with dropout 0.5.")

ACTIVATIONS = {"GELU": GELU, "ReLU": nn.ReLU, "ELU": nn.ELU}
ARMS = {"no dropout": 0.0, "dropout": 0.5}  # Figure 2, left and right: "a dropout rate of 0.5"


@dataclass
class Config:
    monte_carlo_samples: int = 200_000  # masks per grid point
    width: int = 128  # the paper's MLP: 8 layers of 128 units
    depth: int = 8
    learning_rates: tuple[float, ...] = (1e-3, 1e-4, 1e-5)  # the paper's grid for Adam
    batch_size: int = 128  # as in the paper
    steps: int = 120  # 50 epochs of 1,348 digits in batches of 128 is 527 steps (full)
    inits: int = 5  # each curve is the median of five runs, as in the paper
    lr_inits: int = 1  # initializations per rate when choosing the rate (the paper: all five)
    log_every: int = 10


SCALES = {
    "smoke": Config(monte_carlo_samples=10_000, width=32, depth=3, steps=20, inits=1, log_every=10),
    "quick": Config(),
    "full": Config(monte_carlo_samples=2_000_000, steps=527, lr_inits=5, log_every=17),
}


def median_curve(curves: list[list[float]]) -> list[float]:
    """The pointwise median of equally long curves (the lower middle value for an even count)."""
    return torch.tensor(curves).median(0).values.tolist()


def area(curve: list[float]) -> float:
    """A loss curve's geometric mean, exp(mean of log loss): the area under the log curve, as a loss."""
    return math.exp(sum(math.log(v) for v in curve) / len(curve))


@experiment(CLAIM, Config, SCALES,  # both MLP checks fail at quick scale: see notes.md
            expected_failures=("gelu_training_curve_no_dropout", "gelu_training_curve_dropout"))
def run(cfg: Config, ctx: Run) -> Result:
    # 1. Monte Carlo: the mean of x * Bernoulli(Phi(x)) against x Phi(x), in float64.
    x = torch.linspace(-4, 4, 33, dtype=torch.float64)
    generator = torch.Generator().manual_seed(ctx.seed)
    draws = stochastic_gate(x.expand(cfg.monte_carlo_samples, -1), generator)  # (samples, 33)
    estimate = draws.mean(0)
    keep = standard_normal_cdf(x)
    standard_error = x.abs() * (keep * (1 - keep) / cfg.monte_carlo_samples).sqrt()  # exact, for |x| Bernoulli
    exact = gelu(x)
    z = ((estimate - exact).abs() / standard_error.clamp_min(1e-300)).max().item()  # worst grid point
    distance_from_relu = (estimate - x.clamp_min(0)).abs().max().item()
    plots.curves(ctx.artifact("gelu_monte_carlo.png"),
                 {"x Phi(x)": (x.tolist(), exact.tolist()),
                  f"mean of x * Bernoulli(Phi(x)), {cfg.monte_carlo_samples} draws": (x.tolist(), estimate.tolist()),
                  "ReLU": (x.tolist(), x.clamp_min(0).tolist())},
                 "GELU is the expected stochastic gate", xlabel="x", ylabel="output")

    # 2. The deep MLP: per arm and nonlinearity, choose the rate, then the median of `inits` runs.
    data = load_digits(8)
    x_train, y_train = data.x_train.to(ctx.device), data.y_train.to(ctx.device)
    x_test, y_test = data.x_test.to(ctx.device), data.y_test.to(ctx.device)

    def whole_set_loss(model: nn.Module, xs: torch.Tensor, ys: torch.Tensor) -> float:
        with evaluating(model):  # dropout off; draws nothing from the RNG
            return F.cross_entropy(model(xs).float(), ys).item()

    def train_once(arm: str, name: str, lr: float, k: int) -> dict:
        ctx.reseed(k)  # initialization k: the same weights and minibatches for every nonlinearity and rate
        model = DeepMLP(64, cfg.width, cfg.depth, 10, ACTIVATIONS[name], dropout=ARMS[arm])
        model = unit_norm_rows_(model).to(ctx.device)

        def batch(i: int) -> tuple[torch.Tensor, torch.Tensor]:
            index = torch.randint(len(data.x_train), (cfg.batch_size,))
            return data.x_train[index], data.y_train[index]

        log = train(ctx, f"mlp-{arm.replace(' ', '-')}-{name.lower()}-lr{lr:g}-init{k}", model,
                    torch.optim.Adam(model.parameters(), lr=lr), cfg.steps, batch,
                    lambda net, xb, yb: F.cross_entropy(net(xb).float(), yb), log_every=cfg.log_every,
                    evaluate=lambda: {"train_loss": whole_set_loss(model, x_train, y_train)})
        return {"curve": log.series("train_loss")[1], "test_loss": whole_set_loss(model, x_test, y_test),
                "steps": log.series("train_loss")[0]}

    results = {}
    for arm in ARMS:
        for name in ACTIVATIONS:
            areas_by_rate = {}

            def trial(lr: float) -> dict:
                runs = [train_once(arm, name, lr, k) for k in range(cfg.lr_inits)]
                areas_by_rate[f"{lr:g}"] = area(median_curve([r["curve"] for r in runs]))
                return {"area": areas_by_rate[f"{lr:g}"], "runs": runs}

            chosen = best_learning_rate(cfg.learning_rates, trial, score="area")  # a tie goes to the earlier rate
            runs = chosen["runs"] + [train_once(arm, name, chosen["lr"], k) for k in range(cfg.lr_inits, cfg.inits)]
            curve = median_curve([r["curve"] for r in runs])
            results[arm, name] = {"lr": chosen["lr"], "selection_areas": areas_by_rate, "steps": runs[0]["steps"],
                                  "median_curve": curve, "area": area(curve), "final_train_loss": curve[-1],
                                  "test_loss": float(torch.tensor([r["test_loss"] for r in runs]).median()),
                                  "final_train_loss_each": [r["curve"][-1] for r in runs]}

    checks = [
        check("Monte Carlo vs x Phi(x): worst |error| in standard errors", z, "<=", MONTE_CARLO_Z,
              f"{MONTE_CARLO_Z:g} standard errors"),
        check("Monte Carlo mean vs ReLU: largest difference", distance_from_relu, ">=", NOT_RELU, "clearly not ReLU"),
    ]
    for arm in ARMS:
        plots.curves(ctx.artifact(f"mlp_training_loss_{arm.replace(' ', '_')}.png"),
                     {f"{name} (lr {results[arm, name]['lr']:g})":
                      (results[arm, name]["steps"], results[arm, name]["median_curve"]) for name in ACTIVATIONS},
                     f"{cfg.depth}x{cfg.width} MLP on digits, {arm}: median of {cfg.inits} runs",
                     ylabel="training-set cross-entropy", logy=True)
        best_other = min(results[arm, "ReLU"]["area"], results[arm, "ELU"]["area"])
        checks.append(check(f"GELU MLP, {arm}: area of the median training-loss curve (geometric mean)",
                            results[arm, "GELU"]["area"], "<=", best_other, "best of ReLU and ELU",
                            name=f"gelu_training_curve_{arm.replace(' ', '_')}"))

    return Result(
        checks=checks,
        metrics={"monte_carlo_worst_z": z, "monte_carlo_distance_from_relu": distance_from_relu,
                 "mlp": {arm: {name: results[arm, name] for name in ACTIVATIONS} for arm in ARMS}},
    )
