"""The forget gate's claim in miniature: the continual embedded Reber grammar (the paper's Section 4).

Embedded Reber strings, B {T|P} <Reber string> {T|P} E, are run together into one endless stream
with no reset and no marked boundary. After every symbol the net must switch on exactly the output
units of the symbols that may legally come next; the hard step is the second-to-last symbol of each
string, which must repeat the T or P seen right after its B, a whole inner Reber string ago.

Two LSTMs of the same size, one with forget gates and one without (the 1997 cell), are trained the
same way: a batch of streams is read in chunks by truncated backpropagation through time, the state
carried from chunk to chunk; as in the paper, a stream's state is reset only after the net has made
a prediction error on it (a net that has learned the task is never reset). Both are then tested on
streams far longer than anything seen in training, from a zero state, never reset. We count the
strings each net processes before its first error (the paper's measure), the fraction of strings
predicted without any error, and record the mean |c| of the cells at every step. The first string of
each test stream is a warm-up and is not scored: it is read from the zero state, which training
(whose resets fall at arbitrary points of a string) never presents at the start of a string.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from milestones.core import Result, Run, check, experiment, plots
from milestones.core.data import REBER_SYMBOLS, continual_embedded_reber
from milestones.core.training import train
from milestones.sequences.forget_gate.model import (
    ReberPredictor,
    correct_predictions,
    forget_gate_values,
    process_stream,
)

CLAIM = ("On the continual embedded Reber grammar (the paper's Section 4: its results on the continual task and "
         "its plots of the cell states, Figures 3-4), an LSTM with forget gates learns to reset its cells and "
         "predicts correctly all along a test stream far longer than its training chunks, while the same LSTM "
         "without forget gates sees its cell states grow without bound and fails to predict the strings.")


@dataclass
class Config:
    hidden: int = 24
    streams: int = 32  # training streams read in parallel (the batch)
    chunk: int = 40  # truncated BPTT length; the state carries across chunks
    steps: int = 700
    lr: float = 1e-2  # Adam
    forget_bias: float = 0.0  # initial b_f, so f starts at 0.5 (see notes.md on the paper's positive init)
    test_streams: int = 4
    test_strings: int = 2000  # per test stream; ~12 symbols each


SCALES = {
    "smoke": Config(hidden=8, streams=8, chunk=20, steps=20, test_streams=2, test_strings=100),
    "quick": Config(),
    "full": Config(hidden=24, steps=5000, chunk=50, test_streams=10, test_strings=20000, lr=3e-3),
}


def string_outcomes(correct: torch.Tensor, string_ends: torch.Tensor) -> torch.Tensor:
    """(B, L) per-symbol correctness -> (B, strings): True for a string whose every symbol was right.
    Only complete strings count (those that end inside the stream), as many per stream as the
    stream with the fewest holds."""
    outcomes = []
    for row, ends in zip(correct, string_ends):
        boundaries = torch.nonzero(ends).squeeze(1).tolist()
        starts = [0] + [b + 1 for b in boundaries[:-1]]
        outcomes.append(torch.stack([row[s:e + 1].all() for s, e in zip(starts, boundaries)]))
    fewest = min(len(o) for o in outcomes)
    return torch.stack([o[:fewest] for o in outcomes])


def strings_before_first_error(outcomes: torch.Tensor) -> torch.Tensor:
    """(B, strings) -> (B,): how many strings in a row were right from the start of each stream."""
    wrong = ~outcomes
    first = torch.where(wrong.any(1), wrong.float().argmax(1), torch.full((len(outcomes),), outcomes.shape[1]))
    return first.float()


def train_predictor(ctx: Run, name: str, model: ReberPredictor, cfg: Config) -> list:
    stream = continual_embedded_reber(cfg.streams * cfg.steps * cfg.chunk // 11 + cfg.streams, seed=ctx.seed)
    length = cfg.steps * cfg.chunk
    symbols = stream.symbols[:cfg.streams * length].view(cfg.streams, length)  # (B, L): B pieces of one stream
    targets = stream.next_symbols[:cfg.streams * length].view(cfg.streams, length, -1)  # (B, L, symbols)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)  # proven equal to ours in test_adam.py
    carried = {"state": None}  # the state between chunks; reset per stream after an error

    def chunk(i: int) -> tuple[torch.Tensor, torch.Tensor]:  # the streams are the batch dimension
        window = slice(i * cfg.chunk, (i + 1) * cfg.chunk)
        return symbols[:, window], targets[:, window]

    def loss(net: ReberPredictor, x: torch.Tensor, y: torch.Tensor):
        logits, (h, c) = net(x, carried["state"])
        clean = correct_predictions(logits.detach(), y).all(1)  # (B,) no error in the chunk
        keep = clean.float().view(1, -1, 1)
        carried["state"] = (h.detach() * keep, c.detach() * keep)  # truncate; zero the streams that erred
        return F.binary_cross_entropy_with_logits(logits, y), {"clean_chunks": clean.float().mean()}

    # the carried state is rebuilt from zero on resume: a reset, as after an error
    log = train(ctx, name, model, optimizer, cfg.steps, chunk, loss, log_every=max(1, cfg.steps // 50))
    return log.series("clean_chunks")


@experiment(CLAIM, Config, SCALES)
def run(cfg: Config, ctx: Run) -> Result:
    tests = [continual_embedded_reber(cfg.test_strings, seed=ctx.seed + 10_000 + b) for b in range(cfg.test_streams)]
    length = min(len(t.symbols) for t in tests)  # cut to a common length; the cut string is not counted
    test_symbols = torch.stack([t.symbols[:length] for t in tests])  # (B, L)
    test_targets = torch.stack([t.next_symbols[:length] for t in tests])  # (B, L, symbols)
    test_ends = torch.stack([t.string_ends[:length] for t in tests])  # (B, L)
    test_critical = torch.stack([t.critical[:length] for t in tests])  # (B, L): the step before the final T/P

    variants = {"with forget gates": True, "without forget gates (1997 cell)": False}
    curves, magnitudes, accuracies, metrics = {}, {}, {}, {}
    for k, (name, forget_gate) in enumerate(variants.items()):
        ctx.reseed(k)
        model = ReberPredictor(len(REBER_SYMBOLS), cfg.hidden, forget_gate=forget_gate, forget_bias=cfg.forget_bias)
        curves[name] = train_predictor(ctx, "forget-gate" if forget_gate else "no-forget-gate", model, cfg)
        logits, magnitude = process_stream(model, test_symbols)
        correct = correct_predictions(logits, test_targets)  # (B, L)
        outcomes = string_outcomes(correct, test_ends)[:, 1:]  # (B, strings); the first one is the warm-up
        tenth = max(1, length // 10)
        metrics[name] = {
            "strings_before_first_error": strings_before_first_error(outcomes).mean().item(),
            "strings_correct": outcomes.float().mean().item(),
            "strings_correct_last_tenth": outcomes[:, -outcomes.shape[1] // 10:].float().mean().item(),
            "symbols_correct": correct.float().mean().item(),
            "remembered_symbol_correct": correct[test_critical].float().mean().item(),
            "cell_magnitude_first_tenth": magnitude[:, :tenth].mean().item(),
            "cell_magnitude_last_tenth": magnitude[:, -tenth:].mean().item(),
            "strings_per_test_stream": outcomes.shape[1],
        }
        magnitudes[name] = (list(range(length)), magnitude[0].tolist())
        if forget_gate:  # how much the net actually forgets: f_t over the first 2,000 test symbols
            f = forget_gate_values(model, test_symbols[:, :2000])
            metrics[name] |= {"mean_forget_gate": f.mean().item(),
                              "forget_gates_below_0.2": (f < 0.2).float().mean().item()}
        block = max(1, outcomes.shape[1] // 40)  # strings right, averaged over the streams and blocks of strings
        blocks = outcomes[:, :outcomes.shape[1] // block * block].float().view(len(outcomes), -1, block).mean((0, 2))
        accuracies[name] = ([block * (j + 1) for j in range(len(blocks))], blocks.tolist())

    plots.curves(ctx.artifact("cell_magnitude.png"), magnitudes, "Continual Reber stream: mean |c| of the cells",
                 xlabel="symbol in the test stream (never reset)", ylabel="mean |cell state|", logy=True)
    zoom = {name: (x[:120], y[:120]) for name, (x, y) in magnitudes.items()}
    plots.curves(ctx.artifact("cell_magnitude_first_strings.png"), zoom,
                 "The first 120 symbols of the test stream: the cells' mean size",
                 xlabel="symbol in the test stream", ylabel="mean |cell state|")
    plots.curves(ctx.artifact("strings_correct.png"), accuracies, "Continual Reber stream: strings predicted right",
                 xlabel="strings into the test stream (never reset)", ylabel="fraction without an error")
    plots.curves(ctx.artifact("training.png"), curves, "Training: chunks predicted without an error",
                 ylabel="fraction of streams")

    fg, no_fg = metrics["with forget gates"], metrics["without forget gates (1997 cell)"]
    total = fg["strings_per_test_stream"]
    return Result(
        checks=[
            check("with forget gates: fraction of test strings predicted without error", fg["strings_correct"], ">=",
                  0.99, "99%"),
            check("with forget gates: growth of mean |c| (last tenth / first tenth of the stream)",
                  fg["cell_magnitude_last_tenth"] / fg["cell_magnitude_first_tenth"], "<", 2.0, "bounded (2x)"),
            check("without forget gates: growth of mean |c| (last tenth / first tenth)",
                  no_fg["cell_magnitude_last_tenth"] / no_fg["cell_magnitude_first_tenth"], ">", 10.0,
                  "grows (10x)"),
            check("without forget gates: fraction of test strings predicted without error", no_fg["strings_correct"],
                  "<", 0.5, "guessing the remembered T/P"),
        ],
        metrics={"test_strings_per_stream": total, "test_symbols_per_stream": length} | {
            ("forget_gate_" if name.startswith("with ") else "no_forget_gate_") + key: value
            for name, values in metrics.items() for key, value in values.items()},
    )
