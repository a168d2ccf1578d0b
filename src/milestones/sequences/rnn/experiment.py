"""The recurrent net's claim in miniature: feedback gives memory, and the gradient that trains it fades.

1. Delayed recall: a stream of random symbols, and at every step the target is the symbol seen
   `lag` steps earlier. The current input says nothing about it (the symbols are independent), so a
   feed-forward net that sees only x_t is stuck at chance, 1/vocab. A recurrent net trained by
   backpropagation through time must hold the last `lag` symbols in its state, and does.
2. The vanishing gradient: on the trained net we put a loss on the last step of a long sequence
   and measure ||dL/dh_t|| at every earlier step. Equation (2) of model.py multiplies the signal by
   W_hh^T diag(1 - h^2) once per step back, so it shrinks geometrically; we fit
   log ||dL/dh_t|| = a + d log(rho) against the distance d and report the per-step factor rho.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from milestones.core import Result, Run, check, experiment, plots
from milestones.core.data import IGNORE, delayed_recall
from milestones.core.training import evaluating, train
from milestones.sequences.rnn.model import ElmanRNN

CLAIM = ("A fully recurrent net trained by gradient descent through time learns a task that needs memory "
         "of the last few inputs (delayed recall, akin to the paper's pipelined XOR and flip-flop "
         "experiments), which a feed-forward net on the current input cannot do better than chance; "
         "and the error signal dL/dh_t it learns from decays exponentially with the distance from the loss, "
         "the vanishing gradient that limits it to short lags.")


@dataclass
class Config:
    vocab: int = 4  # symbols; chance accuracy is 1/vocab
    lag: int = 4  # recall the symbol seen this many steps earlier
    length: int = 20  # training sequence length
    hidden: int = 32
    steps: int = 600
    batch_size: int = 64
    lr: float = 1e-2  # Adam
    train_sequences: int = 4096
    test_sequences: int = 1024
    probe_length: int = 60  # sequence length for the gradient measurement
    fit_distances: int = 30  # fit the exponential over distances 0..fit_distances-1


SCALES = {
    "smoke": Config(steps=20, train_sequences=256, test_sequences=64, probe_length=20, fit_distances=10),
    "quick": Config(),
    "full": Config(lag=6, hidden=64, steps=4000, train_sequences=65536, test_sequences=8192),
}


class RecurrentRecaller(nn.Module):
    """One-hot symbols -> ElmanRNN -> a linear readout at every step."""

    def __init__(self, vocab: int, hidden: int):
        super().__init__()
        self.vocab = vocab
        self.rnn = ElmanRNN(vocab, hidden, batch_first=True)
        self.readout = nn.Linear(hidden, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # (B, T) -> (B, T, vocab) logits
        states, _ = self.rnn(F.one_hot(tokens, self.vocab).float())
        return self.readout(states)


class FeedForwardRecaller(nn.Module):
    """The same readout problem with no recurrence: each step sees its own symbol only."""

    def __init__(self, vocab: int, hidden: int):
        super().__init__()
        self.vocab = vocab
        self.net = nn.Sequential(nn.Linear(vocab, hidden), nn.Tanh(), nn.Linear(hidden, vocab))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.net(F.one_hot(tokens, self.vocab).float())


def recall_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE)


def recall_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with evaluating(model):
        predicted = model(x).argmax(-1)
    scored = y != IGNORE
    return (predicted[scored] == y[scored]).float().mean().item()


def train_recaller(ctx: Run, name: str, model: nn.Module, cfg: Config, data: tuple, test: tuple) -> None:
    x, y = data

    def batch(i: int) -> tuple:
        index = torch.randint(len(x), (cfg.batch_size,))
        return x[index], y[index]

    train(ctx, name, model, torch.optim.Adam(model.parameters(), lr=cfg.lr), cfg.steps, batch,
          lambda net, xb, yb: recall_loss(net(xb), yb), log_every=max(1, cfg.steps // 20),
          evaluate=lambda: {"test_accuracy": recall_accuracy(model, *test)})


def gradient_norms(model: RecurrentRecaller, tokens: torch.Tensor) -> list[float]:
    """Mean over the batch of ||dL/dh_t||, for the loss on the last step only; index 0 is the last step."""
    logits = model(tokens)
    loss = F.cross_entropy(logits[:, -1], tokens[:, -1])  # any fixed target: we measure how the signal travels
    grads = torch.autograd.grad(loss, model.rnn.states)  # dL/dh_t through every path in time
    return [g.norm(dim=1).mean().item() for g in reversed(grads)]


def fit_exponential(norms: list[float]) -> tuple[float, float]:
    """Least squares of log(norm) on distance: returns the per-step factor rho and R^2 of the fit."""
    d = torch.arange(len(norms), dtype=torch.float64)
    log_n = torch.tensor(norms, dtype=torch.float64).log()
    slope = ((d - d.mean()) * (log_n - log_n.mean())).sum() / ((d - d.mean()) ** 2).sum()
    residual = log_n - (log_n.mean() + slope * (d - d.mean()))
    r2 = 1 - (residual ** 2).sum() / ((log_n - log_n.mean()) ** 2).sum()
    return math.exp(slope.item()), r2.item()


@experiment(CLAIM, Config, SCALES)
def run(cfg: Config, ctx: Run) -> Result:
    data = delayed_recall(cfg.train_sequences, cfg.length, cfg.lag, cfg.vocab, seed=ctx.seed)
    test = delayed_recall(cfg.test_sequences, cfg.length, cfg.lag, cfg.vocab, seed=ctx.seed + 10_000)
    chance = 1 / cfg.vocab

    ctx.reseed(1)
    recurrent = RecurrentRecaller(cfg.vocab, cfg.hidden)
    train_recaller(ctx, "recurrent", recurrent, cfg, data, test)
    ctx.reseed(2)
    feed_forward = FeedForwardRecaller(cfg.vocab, cfg.hidden)
    train_recaller(ctx, "feed-forward", feed_forward, cfg, data, test)
    rnn_accuracy, ff_accuracy = recall_accuracy(recurrent, *test), recall_accuracy(feed_forward, *test)

    probe, _ = delayed_recall(256, cfg.probe_length, cfg.lag, cfg.vocab, seed=ctx.seed + 20_000)
    norms = gradient_norms(recurrent, probe)
    rho, r2 = fit_exponential(norms[:cfg.fit_distances])
    far = cfg.fit_distances - 1
    plots.curves(ctx.artifact("gradient_decay.png"),
                 {"||dL/dh_t||": (list(range(len(norms))), norms),
                  f"fit: rho = {rho:.3f} per step": (list(range(cfg.fit_distances)),
                                                      [norms[0] * rho ** d for d in range(cfg.fit_distances)])},
                 "Vanishing gradient in the trained RNN", xlabel="distance from the loss (steps)",
                 ylabel="mean ||dL/dh_t||", logy=True)

    return Result(
        checks=[
            check(f"recurrent net: recall accuracy at lag {cfg.lag}", rnn_accuracy, ">=", 0.95, "95%"),
            check("feed-forward net on the current input: recall accuracy", ff_accuracy, "<=", chance + 0.05,
                  "chance + 0.05", control=True),
            check("fitted per-step factor of ||dL/dh_t||", rho, "<", 0.9, "0.9 (clearly decaying)"),
            check("R^2 of the exponential fit", r2, ">=", 0.9, "0.9"),
        ],
        metrics={"rnn_accuracy": rnn_accuracy, "feed_forward_accuracy": ff_accuracy, "chance": chance,
                 "decay_per_step": rho, "fit_r2": r2,
                 f"gradient_ratio_{far}_steps_back": norms[far] / norms[0], "gradient_norms": norms},
    )
