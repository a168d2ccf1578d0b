"""Learning to forget (Gers, Schmidhuber & Cummins, 2000): an LSTM that can clear its own memory.

The 1997 LSTM cell ([lstm](../lstm/model.py)) keeps its state on a carousel of weight exactly 1,

    c_t = c_(t-1) + i_t * g_t,

which is what lets an error flow back undiminished; but it also means that nothing ever leaves the
cell. On a task cut into separate sequences that is harmless, because the state is reset to zero
at the start of each one. On a *continual* stream, with no boundaries marked, every write piles on
top of the last: c_t drifts without bound, tanh(c_t) saturates at +-1, and the output gate can no
longer read anything from the cell. The paper's remedy is one more multiplicative gate, on the
carousel itself:

    f_t = sigmoid(W_f [x_t, h_(t-1)] + b_f)
    c_t = f_t * c_(t-1) + i_t * g_t                     so  dc_t / dc_(t-1) = f_t.

While f_t stays near 1 the cell is the old carousel; when the net has learned that what it holds is
no longer needed it drives f_t to 0 and the cell resets itself, at a moment it chooses. The forget
gate is already a flag of our `LSTM` (its `cell` method holds both updates, and
tests/equivalence/test_lstm.py proves the cell with forget gates equal to `nn.LSTM`), so this
module adds what the paper's experiments need around it:

- `ReberPredictor`: one-hot symbols in, an LSTM, a sigmoid output unit per symbol out. The task
  is to say which symbols may legally come next, so several outputs can be on at once;
- the paper's initialisation: forget-gate biases positive, so that every cell starts by
  remembering and has to learn to forget (and not the other way round);
- `process_stream`: run a stream far longer than any training chunk, carrying the state from
  chunk to chunk and never resetting it, as the continual task demands;
- `correct_predictions`: the paper's criterion, that after every symbol exactly the legal
  successors (and nothing else) have outputs above 0.5.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from milestones.sequences.lstm.model import LSTM

State = tuple[torch.Tensor, torch.Tensor]  # (h, c), each (layers, B, H)


class ReberPredictor(nn.Module):
    """Predict the set of legal next symbols of a symbol stream: logits (B, T, symbols)."""

    def __init__(self, symbols: int, hidden: int, forget_gate: bool = True, forget_bias: float = 1.0):
        super().__init__()
        self.symbols = symbols
        self.lstm = LSTM(symbols, hidden, batch_first=True, forget_gate=forget_gate)
        self.readout = nn.Linear(hidden, symbols)
        if forget_gate:
            with torch.no_grad():  # gate rows are (i, f, g, o): start with f = sigmoid(b_f) near 1
                self.lstm.bias_ih_l0[hidden:2 * hidden].fill_(forget_bias)
                self.lstm.bias_hh_l0[hidden:2 * hidden].zero_()

    def forward(self, symbols: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """symbols: (B, T) ids; returns the logits (B, T, symbols) and the state after the last step."""
        x = F.one_hot(symbols, self.symbols).to(self.readout.weight.dtype)  # (B, T, symbols)
        h, state = self.lstm(x, state)  # (B, T, H)
        return self.readout(h), state

    @property
    def cell_states(self) -> torch.Tensor:
        """The cells of the last forward, (B, T, H): what the paper plots to show them grow or reset."""
        return torch.stack(self.lstm.cell_states, 1)


@torch.no_grad()
def forget_gate_values(model: ReberPredictor, symbols: torch.Tensor) -> torch.Tensor:
    """f_t of every cell while reading `symbols` (B, T) from the zero state: (B, T, H), in [0, 1].
    A value near 0 is the net wiping that cell; the paper shows this happening at string ends."""
    lstm, hidden = model.lstm, model.lstm.hidden_size
    x = F.one_hot(symbols, model.symbols).to(model.readout.weight.dtype)  # (B, T, symbols)
    h, _ = lstm(x)  # (B, T, H)
    h_before = torch.cat([torch.zeros_like(h[:, :1]), h[:, :-1]], 1)  # h_(t-1), zero before the first step
    w_ih, w_hh, b_ih, b_hh = lstm.layer_weights(0)
    rows = slice(hidden, 2 * hidden)  # the f rows of the fused (i, f, g, o) gates
    return torch.sigmoid(x @ w_ih[rows].T + h_before @ w_hh[rows].T + b_ih[rows] + b_hh[rows])


def correct_predictions(logits: torch.Tensor, legal_next: torch.Tensor) -> torch.Tensor:
    """True where the outputs above 0.5 are exactly the legal successors; (..., symbols) -> (...)."""
    return ((logits > 0).float() == legal_next).all(-1)  # sigmoid(z) > 0.5  <=>  z > 0


@torch.no_grad()
def process_stream(model: ReberPredictor, symbols: torch.Tensor, chunk: int = 1000
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Run (B, L) streams from a zero state with no reset; returns the logits (B, L, symbols) and
    the mean |c| over the cells at every step, (B, L). Chunking only bounds memory: the state
    carries across chunk borders, so the result is that of one uninterrupted pass."""
    state, logits, magnitude = None, [], []
    for start in range(0, symbols.shape[1], chunk):
        out, state = model(symbols[:, start:start + chunk], state)
        logits.append(out)
        magnitude.append(model.cell_states.abs().mean(-1))
    return torch.cat(logits, 1), torch.cat(magnitude, 1)
