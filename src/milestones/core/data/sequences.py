"""Procedural sequence tasks, generated on the fly from a seed (the same seed gives the same data).

- `copy_task`, `reverse_task`: a random token string and the string (or its reverse) to produce;
- `delayed_recall`: at every step, output the token seen `lag` steps earlier;
- `windowed_parity`: at every step, output the parity of the last `window` bits;
- `adding_problem`: the scaled sum of two values marked in a long sequence (Hochreiter & Schmidhuber
  1997, Experiment 4);
- the embedded Reber grammar (Cleeremans et al. 1989, used by the LSTM papers), one string at a
  time or as a continual stream with no boundaries marked (Gers, Schmidhuber & Cummins 2000).

Per-step targets that do not exist yet (the first `lag` steps of a recall task) are `IGNORE`, the
value `F.cross_entropy` skips by default.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

IGNORE = -100  # F.cross_entropy's default ignore_index


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def copy_task(n: int, length: int, vocab: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Source strings (n, length) of tokens in [0, vocab) and their targets, identical copies."""
    source = torch.randint(vocab, (n, length), generator=_gen(seed))
    return source, source.clone()


def reverse_task(n: int, length: int, vocab: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Source strings (n, length) and their targets, the same strings read backwards."""
    source = torch.randint(vocab, (n, length), generator=_gen(seed))
    return source, source.flip(1)


def delayed_recall(n: int, length: int, lag: int, vocab: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens x (n, length); target y[:, t] = x[:, t - lag], and IGNORE for t < lag."""
    x = torch.randint(vocab, (n, length), generator=_gen(seed))
    y = torch.full_like(x, IGNORE)
    y[:, lag:] = x[:, :length - lag]
    return x, y


def windowed_parity(n: int, length: int, window: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Bits x (n, length); y[:, t] = x[:, t-window+1] xor ... xor x[:, t], and IGNORE for t < window - 1."""
    x = torch.randint(2, (n, length), generator=_gen(seed))
    y = torch.full_like(x, IGNORE)
    y[:, window - 1:] = x.unfold(1, window, 1).sum(-1) % 2  # unfold: (n, length - window + 1, window)
    return x, y


def adding_problem(n: int, length: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The adding problem as Experiment 4 of Hochreiter & Schmidhuber (1997) sets it: inputs (n, length, 2)
    and targets (n,) in [0, 1].

    Channel 0 holds values drawn uniformly from [-1, 1]. Channel 1 is 1 at two marked steps: the first
    among the first 10 steps, the second, a different one, among the first length/2 - 1 steps; it is -1
    at the first and the last step (unless the first step is marked) and 0 elsewhere. When the first
    step is marked its value X1 is set to 0. The target is 0.5 + (X1 + X2) / 4; the paper counts a
    sequence as solved when the absolute error is below 0.04. Always predicting 0.5 gives a mean
    squared error of Var(X1 + X2) / 16 = (2/3) / 16 = 1/24 and solves about 16% of the sequences.
    The paper draws each sequence's length between T and T + T/10: callers draw the length (one per
    batch) and call this once per length.
    """
    g = _gen(seed)
    values = torch.rand(n, length, generator=g) * 2 - 1
    first = torch.randint(10, (n,), generator=g)
    # the second mark: uniform over the first length/2 - 1 steps, skipping the first mark
    second = torch.randint(length // 2 - 2, (n,), generator=g)
    second = second + (second >= first).long()
    rows = torch.arange(n)
    values[rows[first == 0], 0] = 0.0  # the paper's rule when the first step is the marked one
    markers = torch.zeros(n, length)
    markers[:, 0] = -1.0
    markers[:, -1] = -1.0
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    return torch.stack([values, markers], -1), 0.5 + (values[rows, first] + values[rows, second]) / 4


ADDING_BASELINE_MSE = 1.0 / 24.0
ADDING_TOLERANCE = 0.04  # the paper's success criterion: |output - target| < 0.04

# ------------------------------------------------------------------ the embedded Reber grammar

REBER_SYMBOLS = "BTSXPVE"
# The Reber grammar as a graph: state -> [(symbol emitted, next state), ...]; each edge is taken
# with equal probability. State 0 emits the opening B, state 6 the closing E.
_REBER_GRAPH = {
    0: [("B", 1)],
    1: [("T", 2), ("P", 3)],
    2: [("S", 2), ("X", 4)],
    3: [("T", 3), ("V", 5)],
    4: [("X", 3), ("S", 6)],
    5: [("P", 4), ("V", 6)],
    6: [("E", None)],
}


def _reber(rng: random.Random) -> tuple[str, list[str]]:
    """One Reber string, and after each symbol the set of symbols that may legally come next."""
    symbols, successors, state = "", [], 0
    while state is not None:
        symbol, state = rng.choice(_REBER_GRAPH[state])
        symbols += symbol
        successors.append("".join(s for s, _ in _REBER_GRAPH[state]) if state is not None else "")
    return symbols, successors


def embedded_reber(rng: random.Random) -> tuple[str, list[str]]:
    """One embedded Reber string, B {T|P} <Reber string> {T|P} E, with its legal-successor sets.

    The symbol after B is repeated just before the final E, with a whole Reber string in between:
    predicting it needs a memory that spans the inner string. After the final E the legal
    successor set is empty (for a continual stream, `continual_embedded_reber` sets it to B).
    """
    branch = rng.choice("TP")
    inner, inner_next = _reber(rng)
    symbols = "B" + branch + inner + branch + "E"
    successors = ["TP", "B"] + inner_next[:-1] + [branch, "E", ""]
    return symbols, successors


@dataclass(frozen=True)
class ReberStream:
    """Symbols as ids (L,), the multi-hot legal-next-symbol targets (L, 7), and string ends."""

    symbols: torch.Tensor  # (L,) int64 indices into REBER_SYMBOLS
    next_symbols: torch.Tensor  # (L, 7) float: 1 for each symbol that may legally follow
    string_ends: torch.Tensor  # (L,) bool: True at the final E of each embedded string
    critical: torch.Tensor  # (L,) bool: True where the next symbol is the remembered T/P (the hard step)


def _encode(strings: list[tuple[str, list[str]]], continual: bool) -> ReberStream:
    ids, targets, ends, critical = [], [], [], []
    for symbols, successors in strings:
        for i, (symbol, nxt) in enumerate(zip(symbols, successors)):
            last = i == len(symbols) - 1
            nxt = "B" if continual and last else nxt
            ids.append(REBER_SYMBOLS.index(symbol))
            targets.append([float(s in nxt) for s in REBER_SYMBOLS])
            ends.append(last)
            critical.append(i == len(symbols) - 3)  # the step whose successor is the remembered branch
    return ReberStream(torch.tensor(ids), torch.tensor(targets), torch.tensor(ends), torch.tensor(critical))


def embedded_reber_strings(n: int, seed: int = 0) -> list[ReberStream]:
    """`n` separate embedded Reber strings, each encoded on its own (the net is reset between them)."""
    rng = random.Random(seed)
    return [_encode([embedded_reber(rng)], continual=False) for _ in range(n)]


def continual_embedded_reber(n_strings: int, seed: int = 0) -> ReberStream:
    """`n_strings` embedded Reber strings run together into one stream with no resets between them."""
    rng = random.Random(seed)
    return _encode([embedded_reber(rng) for _ in range(n_strings)], continual=True)
