"""The rectifier's claim in miniature: a deep MLP on the 8x8 digits, trained from a random start
(no pre-training) with rectifier, tanh or sigmoid units and nothing else changed.

Each activation gets the same budget of minibatch SGD steps with momentum, and its learning rate is
the best of the same small grid (best = lowest final training loss), so no unit wins by a lucky
choice of step size. We then measure the fraction of exact zeros in the rectifier net's hidden
layers over the training set: untrained, trained as above, and trained with the L1 penalty on the
activities that the paper adds to promote sparsity (Section 4), at the rectifier's best rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from milestones.core import Result, Run, check, experiment, plots
from milestones.core.data import load_digits
from milestones.core.training import accuracy, best_learning_rate, fit_classifier, train
from milestones.optimization.relu.model import ACTIVATIONS, DeepMLP, sparsity

SPARSITY_GAIN = 0.2  # the bar: penalised sparsity minus the untrained net's (which is about 0.5 by symmetry)
CLAIM = ("Without any unsupervised pre-training, a deep (6 hidden layers) MLP of rectifier units "
         "reaches a lower training loss in the same number of SGD steps than the same network of "
         "sigmoid or tanh units; and trained with an L1 penalty on its activities, its hidden "
         "representations become sparse, with far more activities exactly zero than at initialisation "
         f"(at least {SPARSITY_GAIN} more of them; Glorot, Bordes & Bengio 2011, Table 1 and Section 4).")


@dataclass
class Config:
    depth: int = 6  # hidden layers
    width: int = 128
    steps: int = 600
    batch_size: int = 64
    learning_rates: tuple[float, ...] = (0.003, 0.01, 0.03, 0.1)  # the grid every activation searches
    momentum: float = 0.9
    activity_l1: float = 1e-3  # the L1 penalty's weight, on the sum over hidden units of |h| per example
    l1_steps: int = 3000  # the penalty sparsifies slowly: at 600 steps seed 0 had 0.64 zeros, at 3,000 0.74


SCALES = {
    "smoke": Config(depth=6, width=32, steps=40, learning_rates=(0.01, 0.1), l1_steps=40),
    "quick": Config(),
    "full": Config(depth=10, width=512, steps=5000, learning_rates=(0.001, 0.003, 0.01, 0.03, 0.1, 0.3),
                   l1_steps=20000),
}


class ActivityL1(nn.Module):
    """The MLP, returning its class scores and the L1 norm of all its hidden activities (summed over
    the units, averaged over the examples): the sparsity penalty of the paper's Section 4."""

    def __init__(self, mlp: DeepMLP):
        super().__init__()
        self.mlp = mlp

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        layers = self.mlp.representations(x)
        return self.mlp.readout(layers[-1]), sum(h.abs().sum(1).mean() for h in layers)


def train_with_activity_penalty(ctx: Run, model: DeepMLP, data, lr: float, cfg: Config) -> None:
    def batch(i: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.randint(len(data.x_train), (cfg.batch_size,))
        return data.x_train[index], data.y_train[index]

    def loss(net: ActivityL1, xb: torch.Tensor, yb: torch.Tensor):
        logits, activity = net(xb)
        cross_entropy = F.cross_entropy(logits, yb)
        return cross_entropy + cfg.activity_l1 * activity, {"cross_entropy": cross_entropy.detach()}

    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=cfg.momentum)
    train(ctx, f"rectifier-l1-lr{lr:g}", ActivityL1(model), optimizer, cfg.l1_steps, batch, loss)


@torch.no_grad()
def training_loss(model: DeepMLP, x: torch.Tensor, y: torch.Tensor) -> float:
    return F.cross_entropy(model(x), y).item()


@experiment(CLAIM, Config, SCALES)
def run(cfg: Config, ctx: Run) -> Result:
    data = load_digits(8)
    x, y = data.x_train.to(ctx.device), data.y_train.to(ctx.device)
    def trial(name: str, lr: float) -> dict:
        ctx.reseed(0)  # the same initial weights and minibatches for every activation and rate
        model = DeepMLP(64, cfg.width, cfg.depth, 10, name).to(ctx.device)
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=cfg.momentum)
        log = fit_classifier(ctx, f"{name}-lr{lr:g}", model, optimizer, data.x_train, data.y_train,
                             cfg.steps, cfg.batch_size, stop_on_nonfinite=False)
        return {"loss": training_loss(model, x, y), "model": model, "curve": log.series("loss")}

    best = {name: best_learning_rate(cfg.learning_rates, lambda lr: trial(name, lr)) for name in ACTIVATIONS}
    ctx.reseed(0)  # the rectifier net again, from the same start, now with the paper's activity penalty
    sparse_net = DeepMLP(64, cfg.width, cfg.depth, 10, "rectifier").to(ctx.device)
    train_with_activity_penalty(ctx, sparse_net, data, best["rectifier"]["lr"], cfg)

    with torch.no_grad():
        rectifier = best["rectifier"]["model"]
        layers = rectifier.representations(x)
        per_layer = [sparsity(h) for h in layers]
        trained_sparsity = sparsity(torch.cat(layers, 1))
        ctx.reseed(0)
        untrained = DeepMLP(64, cfg.width, cfg.depth, 10, "rectifier").to(ctx.device)
        initial_sparsity = sparsity(torch.cat(untrained.representations(x), 1))
        tanh_zeros = sparsity(torch.cat(best["tanh"]["model"].representations(x), 1))
        sparse_layers = sparse_net.representations(x)
        penalized_sparsity = sparsity(torch.cat(sparse_layers, 1))

    plots.curves(ctx.artifact("training_loss.png"),
                 {f"{name} (lr {b['lr']:g})": b["curve"] for name, b in best.items()},
                 title=f"{cfg.depth}-hidden-layer MLP on digits, best learning rate each",
                 ylabel="minibatch cross-entropy", logy=True)
    plots.bars(ctx.artifact("sparsity_per_layer.png"),
               {f"layer {i + 1}, L1 penalty": sparsity(h) for i, h in enumerate(sparse_layers)},
               title="Rectifier net trained with the L1 activity penalty: exact zeros per hidden layer",
               ylabel="fraction of zeros", reference=("paper, MNIST: 0.834", 0.834))

    losses = {name: b["loss"] for name, b in best.items()}
    return Result(
        checks=[
            check("training loss, rectifier", losses["rectifier"], "<", losses["tanh"], "tanh"),
            check("training loss, rectifier", losses["rectifier"], "<", losses["sigmoid"], "sigmoid"),
            check("exact zeros in the hidden layers, rectifier net trained with the L1 activity penalty",
                  penalized_sparsity, ">=", initial_sparsity + SPARSITY_GAIN,
                  f"the untrained net's + {SPARSITY_GAIN}", name="sparsity_with_l1_penalty"),
        ],
        metrics={"training_loss": losses, "best_learning_rate": {n: b["lr"] for n, b in best.items()},
                 "test_accuracy": {n: accuracy(b["model"], data.x_test, data.y_test) for n, b in best.items()},
                 "sparsity_trained": trained_sparsity, "sparsity_per_layer": per_layer,
                 "sparsity_trained_with_l1": penalized_sparsity,
                 "test_accuracy_with_l1": accuracy(sparse_net, data.x_test, data.y_test),
                 "sparsity_at_initialisation": initial_sparsity, "exact_zeros_tanh": tanh_zeros,
                 "paper_sparsity_mnist": 0.834},
    )
