"""The LSTM's claim in miniature: the adding problem (Experiment 4 of the 1997 paper).

Each sequence has `length` steps of two inputs: a random value in [0, 1] and a marker that is 1 at
exactly two steps (one in each half). At the end the net must output the sum of the two marked
values. The first marked value may be 25 to 50 steps in the past, so the error has to travel that
far back to teach the net to store it. Predicting the mean every time scores MSE 1/6, the trivial
baseline. Our LSTM and a plain recurrent net of similar size ([rnn](../rnn/model.py)) get the
same data, optimizer and number of steps.

The original 1997 cell (no forget gate) is also trained and reported, as a measurement: see notes.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from milestones.core import Result, Run, check, experiment, plots
from milestones.core.data import ADDING_BASELINE_MSE, adding_problem
from milestones.core.training import evaluating, train
from milestones.sequences.lstm.model import LSTM
from milestones.sequences.rnn.model import ElmanRNN

CLAIM = ("On the adding problem (the paper's Experiment 4) with sequences of length 50, an LSTM "
         "drives the mean squared error far below the trivial baseline of always predicting the mean, "
         "while a plain recurrent net of similar size, trained the same way, stays near that baseline.")


@dataclass
class Config:
    length: int = 50
    lstm_hidden: int = 32
    rnn_hidden: int = 64  # about as many weights as the 32-cell LSTM (4,417 vs 4,641 with readouts)
    steps: int = 1200
    batch_size: int = 64
    lr: float = 1e-2  # Adam
    train_sequences: int = 20000
    test_sequences: int = 1000
    original_cell: bool = True  # also train the 1997 cell without a forget gate (reported, not checked)


SCALES = {
    "smoke": Config(length=10, steps=20, train_sequences=512, test_sequences=128),
    "quick": Config(),
    "full": Config(length=200, lstm_hidden=64, rnn_hidden=128, steps=20000, train_sequences=200000,
                   test_sequences=4000, lr=3e-3),
}


class AddingNet(nn.Module):
    """A recurrent layer reading the (value, marker) pairs; a linear readout of its last state."""

    def __init__(self, recurrent: nn.Module, hidden: int):
        super().__init__()
        self.recurrent = recurrent
        self.readout = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, 2) -> (B,)
        states, _ = self.recurrent(x)
        return self.readout(states[:, -1]).squeeze(1)


def squared_error(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((net(x) - y) ** 2).mean()


def train_adder(ctx: Run, name: str, model: AddingNet, cfg: Config, data: tuple, test: tuple) -> list:
    x, y = data

    def batch(i: int) -> tuple:
        index = torch.randint(len(x), (cfg.batch_size,))
        return x[index], y[index]

    log = train(ctx, name, model, torch.optim.Adam(model.parameters(), lr=cfg.lr), cfg.steps, batch, squared_error,
                log_every=max(1, cfg.steps // 24), evaluate=lambda: {"test_mse": mse(model, *test)})
    return log.series("test_mse")


def mse(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with evaluating(model):
        return squared_error(model, x, y).item()


@experiment(CLAIM, Config, SCALES)
def run(cfg: Config, ctx: Run) -> Result:
    data = adding_problem(cfg.train_sequences, cfg.length, seed=ctx.seed)
    test = adding_problem(cfg.test_sequences, cfg.length, seed=ctx.seed + 10_000)
    nets = {"LSTM": lambda: AddingNet(LSTM(2, cfg.lstm_hidden, batch_first=True), cfg.lstm_hidden),
            "plain RNN": lambda: AddingNet(ElmanRNN(2, cfg.rnn_hidden, batch_first=True), cfg.rnn_hidden)}
    if cfg.original_cell:
        nets["LSTM, 1997 cell (no forget gate)"] = lambda: AddingNet(
            LSTM(2, cfg.lstm_hidden, batch_first=True, forget_gate=False), cfg.lstm_hidden)
    curves, errors = {}, {}
    for k, (name, build) in enumerate(nets.items()):
        ctx.reseed(k)
        model = build()
        curves[name] = train_adder(ctx, name.split(",")[0].replace(" ", "-") + f"-{k}", model, cfg, data, test)
        errors[name] = mse(model, *test)
    plots.curves(ctx.artifact("adding_problem.png"), curves, f"Adding problem, length {cfg.length}",
                 ylabel="test MSE", logy=True, hlines={"predict the mean (1/6)": ADDING_BASELINE_MSE})

    baseline = ADDING_BASELINE_MSE
    return Result(
        checks=[
            check("LSTM test MSE", errors["LSTM"], "<", baseline / 10, "a tenth of the mean-predictor's 1/6"),
            check("plain RNN test MSE", errors["plain RNN"], ">", baseline / 2, "half of the mean-predictor's 1/6"),
        ],
        metrics={"baseline_mse": baseline, "lstm_mse": errors["LSTM"], "rnn_mse": errors["plain RNN"],
                 "original_cell_mse": errors.get("LSTM, 1997 cell (no forget gate)"),
                 "parameters": {name: sum(p.numel() for p in build().parameters()) for name, build in nets.items()}},
    )
