"""Long Short-Term Memory (Hochreiter & Schmidhuber, 1997), the original cell and the modern one.

Why a new cell. In a plain recurrent layer ([rnn](../rnn/model.py)) the error signal is multiplied
by W_hh^T diag(tanh') at every step back, so it shrinks (or blows up) exponentially with the lag.
The LSTM's answer is the *constant error carousel*: a memory cell c whose only self-connection has
weight exactly 1,

    c_t = c_(t-1) + i_t * g_t                                              (1997 cell)

so dc_t/dc_(t-1) = 1 and an error reaching c_t flows back across any number of steps undiminished.
Multiplicative gates decide what enters and what leaves:

    i_t = sigmoid(W_i [x_t, h_(t-1)] + b_i)     input gate: may this step write to the cell?
    g_t = tanh(W_g [x_t, h_(t-1)] + b_g)        the candidate value to write
    o_t = sigmoid(W_o [x_t, h_(t-1)] + b_o)     output gate: may the cell be read now?
    h_t = o_t * tanh(c_t)

The modern cell adds the forget gate of Gers, Schmidhuber & Cummins (2000; see
[forget_gate](../forget_gate/notes.md)), which scales the carousel:

    f_t = sigmoid(W_f [x_t, h_(t-1)] + b_f),    c_t = f_t * c_(t-1) + i_t * g_t

All gates read the same [x_t, h_(t-1)], so they are computed as one fused matrix product
(4H or 3H rows) and then split, which is also how `nn.LSTM` stores them: rows in the order
(i, f, g, o), named `weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`. With
`forget_gate=True` our parameters are `nn.LSTM`'s, and tests/equivalence/test_lstm.py proves the
two equal. With `forget_gate=False` the f rows are absent, (i, g, o), and f_t = 1.

Two simplifications against the 1997 paper, both shared by every modern implementation: the
squashing functions are tanh in [-1, 1] (the paper scaled its sigmoids to [-2, 2] and [-1, 1]),
and the gradient is the full one from backpropagation through time (the paper truncated it at the
cell inputs, which its architecture made exact enough and cheaper).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class LSTM(nn.Module):
    """Stacked LSTM layers with fused gates; the same call signature and outputs as `nn.LSTM`."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, batch_first: bool = False,
                 forget_gate: bool = True):
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first, self.forget_gate = batch_first, forget_gate
        self.gates = 4 if forget_gate else 3
        for layer in range(num_layers):
            n_in = input_size if layer == 0 else hidden_size
            self.register_parameter(f"weight_ih_l{layer}", nn.Parameter(torch.empty(self.gates * hidden_size, n_in)))
            self.register_parameter(f"weight_hh_l{layer}",
                                    nn.Parameter(torch.empty(self.gates * hidden_size, hidden_size)))
            self.register_parameter(f"bias_ih_l{layer}", nn.Parameter(torch.empty(self.gates * hidden_size)))
            self.register_parameter(f"bias_hh_l{layer}", nn.Parameter(torch.empty(self.gates * hidden_size)))
        bound = 1 / math.sqrt(hidden_size)  # nn.LSTM's initialisation
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)
        self.cell_states: list[torch.Tensor] = []  # the top layer's c_t of the last forward, one (B, H) per step

    def layer_weights(self, layer: int) -> tuple[torch.Tensor, ...]:
        return tuple(getattr(self, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    def cell(self, gates: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step from the fused pre-activations (B, gates*H) and the old cell (B, H) to (h, c)."""
        if self.forget_gate:
            i, f, g, o = gates.chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)  # c_t = f c_(t-1) + i g
        else:
            i, g, o = gates.chunk(3, 1)
            c = c + torch.sigmoid(i) * torch.tanh(g)  # the constant error carousel: weight 1 on c_(t-1)
        return torch.sigmoid(o) * torch.tanh(c), c  # h_t = o tanh(c_t)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        """x: (T, B, I), or (B, T, I) if batch_first; state: (h0, c0), each (layers, B, H), or None.

        Returns the top layer's h_t for every step, (T, B, H) or (B, T, H), and (h_n, c_n), each
        (layers, B, H): what `nn.LSTM` returns. The top layer's per-step cells stay in
        `self.cell_states` (for plotting how large they grow).
        """
        if self.batch_first:
            x = x.transpose(0, 1)  # (T, B, I)
        steps, batch = x.shape[:2]
        if state is None:
            zeros = x.new_zeros(self.num_layers, batch, self.hidden_size)
            state = (zeros, zeros)
        h_finals, c_finals = [], []
        for layer in range(self.num_layers):
            w_ih, w_hh, b_ih, b_hh = self.layer_weights(layer)
            driven = torch.addmm(b_ih + b_hh, x.reshape(-1, x.shape[-1]), w_ih.T)  # every step's input share
            driven = driven.view(steps, batch, -1)  # (T, B, gates*H)
            h, c = state[0][layer], state[1][layer]
            outputs, cells = [], []
            # unbind, not driven[t]: one backward node for all steps instead of a full-size zero
            # gradient per step (which made the backward pass quadratic in the length)
            for drive in driven.unbind(0):
                h, c = self.cell(torch.addmm(drive, h, w_hh.T), c)  # (B, gates*H) -> (B, H), (B, H)
                outputs.append(h)
                cells.append(c)
            x = torch.stack(outputs)  # (T, B, H): the next layer's input
            h_finals.append(h)
            c_finals.append(c)
        self.cell_states = cells
        out = x.transpose(0, 1) if self.batch_first else x
        return out, (torch.stack(h_finals), torch.stack(c_finals))
