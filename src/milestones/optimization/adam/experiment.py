"""Adam's claims in miniature, on the 8x8 digits.

1. The paper's Figure 2 (right) trains a multilayer perceptron with dropout on MNIST and compares
   optimizers by training cost. We train a 2x256 ReLU MLP with dropout (0.2 inputs, 0.5 hidden)
   with Adam, SGD with Nesterov momentum and AdaGrad for the same number of minibatch steps, from
   the same initial weights and minibatches; each optimizer's learning rate is the best of the
   same grid. Training loss is the cross-entropy on the whole training set, dropout off.
2. Section 6.4 (Figure 4): with beta2 close to 1 and no bias correction, the early steps are
   inflated by (1 - beta1^t) / sqrt(1 - beta2^t), about 10-20x for beta2 = 0.9999. We measure the
   update sizes over the first steps with and without the correction; then, over a learning-rate
   grid on which both variants have an interior optimum, how many runs blow up (end above
   UNSTABLE_LOSS) and the best loss each variant reaches. A smaller net (dropout 0.3, so that training
   loss has a floor and the grid an interior optimum) trains for more steps than in part 1, so that
   a variant's best run is not decided by the first few hundred steps alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from milestones.core import Result, Run, check, experiment, plots
from milestones.core.data import load_digits
from milestones.core.training import best_learning_rate, evaluating, fit_classifier
from milestones.optimization.adam.model import Adam
from milestones.optimization.dropout.model import DropoutMLP

UNSTABLE_LOSS = 1.0  # nats: a run ending above this blew up (chance is ln 10 = 2.30; stable runs end below 0.3)
BEST_LOSS_TOLERANCE = 1.1  # the corrected variant's best loss may exceed the uncorrected one's by 10% (seed noise)

CLAIM = ("On an MLP with dropout trained on digits, Adam reaches a lower training loss after a fixed "
         "budget of steps than SGD with Nesterov momentum and AdaGrad, each with its best learning rate "
         "from the same grid (Kingma & Ba 2014, Figure 2); and without bias correction, with beta2 "
         "close to 1, the first steps are many times larger, training blows up at learning rates where the "
         "corrected Adam is stable, and the best run over the grid is no better (Section 6.4, Figure 4).")


@dataclass
class Config:
    width: int = 256
    steps: int = 300
    batch_size: int = 128
    learning_rates: tuple[float, ...] = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)  # every optimum interior
    bias_beta2: float = 0.9999
    bias_learning_rates: tuple[float, ...] = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
    bias_width: int = 64
    bias_dropout: float = 0.3  # on the inputs and the hidden units
    bias_steps: int = 1000
    early_steps: int = 10  # the "first steps" whose sizes are compared


SCALES = {
    "smoke": Config(width=32, steps=20, learning_rates=(1e-3, 1e-1), bias_learning_rates=(1e-3, 1e-2, 1e-1),
                    bias_width=16, bias_steps=20),
    "quick": Config(),
    "full": Config(width=1000, steps=5000, bias_width=256, bias_steps=10000,
                   bias_learning_rates=(1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)),
}

OPTIMIZERS = {
    "Adam": lambda params, lr: Adam(params, lr=lr),
    "SGD + Nesterov": lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True),
    "AdaGrad": lambda params, lr: torch.optim.Adagrad(params, lr=lr),
}


def new_net(ctx: Run, width: int, p_input: float = 0.2, p_hidden: float = 0.5) -> DropoutMLP:
    ctx.reseed(0)  # the same initial weights for every optimizer and learning rate
    return DropoutMLP(64, width, 2, 10, p_input=p_input, p_hidden=p_hidden).to(ctx.device)


def training_loss(net: DropoutMLP, x: torch.Tensor, y: torch.Tensor) -> float:
    with evaluating(net):
        loss = F.cross_entropy(net(x), y).item()
    return loss if math.isfinite(loss) else math.inf


def record_update_sizes(net: DropoutMLP, optimizer: torch.optim.Optimizer, steps: int) -> list[float]:
    """A list that the optimizer's first `steps` steps fill with their mean |change| per weight."""
    sizes: list[float] = []
    before: list[torch.Tensor] = []

    def snapshot(*_):
        if len(sizes) < steps:
            before[:] = [p.detach().clone() for p in net.parameters()]

    def measure(*_):
        if len(sizes) < steps:
            change = sum((p.detach() - b).abs().sum().item() for p, b in zip(net.parameters(), before))
            sizes.append(change / sum(p.numel() for p in net.parameters()))

    optimizer.register_step_pre_hook(snapshot)
    optimizer.register_step_post_hook(measure)
    return sizes


@experiment(CLAIM, Config, SCALES)
def run(cfg: Config, ctx: Run) -> Result:
    data = load_digits(8)
    x, y = data.x_train.to(ctx.device), data.y_train.to(ctx.device)

    # 1. Figure 2 in miniature: each optimizer at its best learning rate from the same grid.
    def trial(name: str, lr: float) -> dict:
        net = new_net(ctx, cfg.width)
        log = fit_classifier(ctx, f"{name}-lr{lr:g}".replace(" + ", "-"), net, OPTIMIZERS[name](net.parameters(), lr),
                             data.x_train, data.y_train, cfg.steps, cfg.batch_size, stop_on_nonfinite=False)
        return {"loss": training_loss(net, x, y), "curve": log.series("loss")}

    best = {name: best_learning_rate(cfg.learning_rates, lambda lr: trial(name, lr)) for name in OPTIMIZERS}

    # 2. Bias correction with beta2 close to 1: update sizes early on, blow-ups, and the best loss.
    runs: dict[tuple[bool, float], dict] = {}
    for corrected in (True, False):
        for lr in cfg.bias_learning_rates:
            net = new_net(ctx, cfg.bias_width, cfg.bias_dropout, cfg.bias_dropout)
            optimizer = Adam(net.parameters(), lr=lr, betas=(0.9, cfg.bias_beta2), bias_correction=corrected)
            sizes = record_update_sizes(net, optimizer, cfg.early_steps)
            label = "corrected" if corrected else "uncorrected"
            log = fit_classifier(ctx, f"bias-{label}-lr{lr:g}", net, optimizer, data.x_train, data.y_train,
                                 cfg.bias_steps, cfg.batch_size, stop_on_nonfinite=False)
            runs[corrected, lr] = {"loss": training_loss(net, x, y), "sizes": sizes, "curve": log.series("loss")}

    lrs = cfg.bias_learning_rates
    size_ratio = [sum(runs[False, lr]["sizes"]) / sum(runs[True, lr]["sizes"]) for lr in lrs]
    theory_ratio = sum((1 - 0.9 ** t) / math.sqrt(1 - cfg.bias_beta2 ** t)
                       for t in range(1, cfg.early_steps + 1)) / cfg.early_steps
    final = {label: [runs[corrected, lr]["loss"] for lr in lrs] for label, corrected in
             [("with bias correction", True), ("without bias correction", False)]}
    unstable = {label: sum(loss > UNSTABLE_LOSS for loss in losses) for label, losses in final.items()}
    best_rate = {label: min(range(len(lrs)), key=losses.__getitem__) for label, losses in final.items()}
    best_loss = {label: losses[best_rate[label]] for label, losses in final.items()}
    at_edge = sum(i in (0, len(lrs) - 1) for i in best_rate.values())
    median_ratio = sorted(size_ratio)[len(size_ratio) // 2]

    plots.curves(ctx.artifact("optimizers.png"), {f"{n} (lr {b['lr']:g})": b["curve"] for n, b in best.items()},
                 title="MLP with dropout on digits: best learning rate each", ylabel="minibatch cross-entropy",
                 logy=True)
    plots.curves(ctx.artifact("bias_correction.png"),
                 {label: ([math.log10(lr) for lr in lrs], losses) for label, losses in final.items()},
                 title=f"Adam, beta1 = 0.9, beta2 = {cfg.bias_beta2}, after {cfg.bias_steps} steps",
                 xlabel="log10 learning rate", ylabel="training loss", logy=True,
                 hlines={"blown up above": UNSTABLE_LOSS})

    losses = {n: b["loss"] for n, b in best.items()}
    return Result(
        checks=[
            check("training loss, Adam", losses["Adam"], "<", losses["SGD + Nesterov"], "SGD + Nesterov"),
            check("training loss, Adam", losses["Adam"], "<", losses["AdaGrad"], "AdaGrad"),
            check(f"median over learning rates of (update size without / with bias correction), "
                  f"first {cfg.early_steps} steps", median_ratio, ">=", 5.0, "five times"),
            check(f"runs that blow up without bias correction, minus those with it "
                  f"({unstable['without bias correction']} - {unstable['with bias correction']} of {len(lrs)})",
                  unstable["without bias correction"] - unstable["with bias correction"], ">=", 1, "one run",
                  name="bias_correction_stability"),
            check(f"best training loss over the grid, with / without bias correction "
                  f"({best_loss['with bias correction']:.4f} / {best_loss['without bias correction']:.4f})",
                  best_loss["with bias correction"] / best_loss["without bias correction"], "<=",
                  BEST_LOSS_TOLERANCE, "BEST_LOSS_TOLERANCE", name="bias_correction_best_loss"),
            check("variants whose best learning rate sits at an edge of the grid (an unfair comparison)", at_edge,
                  "<=", 0, "none", name="interior_optima", control=True),
        ],
        metrics={"training_loss": losses, "best_learning_rate": {n: b["lr"] for n, b in best.items()},
                 "bias_learning_rates": list(lrs), "update_size_ratio": size_ratio,
                 "update_size_ratio_theory": theory_ratio, "final_loss": final, "unstable_runs": unstable,
                 "best_bias_learning_rate": {label: lrs[i] for label, i in best_rate.items()}},
    )
