"""A fully recurrent network and two exact ways to compute its gradient (Williams & Zipser, 1989).

The network. At each time step t every hidden unit sees the current input x_t and the whole
previous hidden state h_(t-1) (the "Elman" or "simple" recurrent layer):

    h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh)                            (1)

Layers stack: layer l's h_t is layer l+1's x_t. `ElmanRNN` names its parameters exactly as
`nn.RNN` does (`weight_ih_l0`, ...), so a state dict moves between the two unchanged and
tests/equivalence/test_rnn.py can prove them equal.

Gradients. A loss L = sum_t L_t(h_t) depends on a weight through every step, so its gradient is a
sum over time. Two exact algorithms compute it:

- backpropagation through time (BPTT): unroll (1) into a deep feed-forward net with shared
  weights and run ordinary backprop from the last step to the first. The error signal obeys

      dL/dh_(t-1) = dL_(t-1)/dh_(t-1) + W_hh^T [ (1 - h_t^2) * dL/dh_t ]       (2)

  Every step back multiplies it by W_hh^T and by tanh's slope (at most 1), which is why, unless
  W_hh is large, it shrinks geometrically with distance: the *vanishing gradient* our experiment
  measures. This is what PyTorch's autograd does with `ElmanRNN.forward`.

- real-time recurrent learning (RTRL), the paper's algorithm: carry forward, alongside h_t, its
  sensitivity to every weight, P_t = dh_t/dtheta (H x n_params), with

      P_t = diag(1 - h_t^2) [ da_t/dtheta (direct) + W_hh P_(t-1) ],    P_0 = 0      (3)

  and add dL_t/dh_t P_t to the gradient at each step. No unrolling and no storage of the past:
  the gradient is ready the moment the sequence ends, so the net can learn while it runs. The
  price is O(H^2 n_params) work per step against BPTT's O(n_params). `rtrl_gradients` implements
  (3) for one layer and the test checks it against BPTT.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn


class ElmanRNN(nn.Module):
    """Stacked tanh recurrent layers, equation (1), unrolled in a Python loop over time."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, batch_first: bool = False):
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first = batch_first
        for layer in range(num_layers):
            n_in = input_size if layer == 0 else hidden_size
            self.register_parameter(f"weight_ih_l{layer}", nn.Parameter(torch.empty(hidden_size, n_in)))
            self.register_parameter(f"weight_hh_l{layer}", nn.Parameter(torch.empty(hidden_size, hidden_size)))
            self.register_parameter(f"bias_ih_l{layer}", nn.Parameter(torch.empty(hidden_size)))
            self.register_parameter(f"bias_hh_l{layer}", nn.Parameter(torch.empty(hidden_size)))
        bound = 1 / math.sqrt(hidden_size)  # nn.RNN's initialisation, so the two start from the same law
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)
        self.states: list[torch.Tensor] = []  # the top layer's h_t of the last forward, one (B, H) per step

    def layer_weights(self, layer: int) -> tuple[torch.Tensor, ...]:
        return tuple(getattr(self, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (T, B, I), or (B, T, I) if batch_first; h0: (layers, B, H) or None for zeros.

        Returns the top layer's h_t for every step, (T, B, H) or (B, T, H), and the last h of
        every layer, (layers, B, H): the same pair `nn.RNN` returns. The top layer's per-step
        states stay in `self.states`, still attached to the graph, so dL/dh_t can be read off.
        """
        if self.batch_first:
            x = x.transpose(0, 1)  # (T, B, I)
        batch = x.shape[1]
        if h0 is None:
            h0 = x.new_zeros(self.num_layers, batch, self.hidden_size)
        finals = []
        for layer in range(self.num_layers):
            w_ih, w_hh, b_ih, b_hh = self.layer_weights(layer)
            driven = x @ w_ih.T + b_ih  # (T, B, H): the input's share of every step, in one matmul
            h, states = h0[layer], []
            for drive in driven.unbind(0):  # unbind: one backward node, not a full-size gradient per step
                h = torch.tanh(torch.addmm(drive + b_hh, h, w_hh.T))  # (B, H), equation (1)
                states.append(h)
            x = torch.stack(states)  # (T, B, H): the next layer's input
            finals.append(h)
        self.states = states
        out = x.transpose(0, 1) if self.batch_first else x
        return out, torch.stack(finals)


def rtrl_gradients(rnn: ElmanRNN, x: torch.Tensor,
                   step_loss: Callable[[int, torch.Tensor], torch.Tensor]) -> dict[str, torch.Tensor]:
    """The gradient of sum_t step_loss(t, h_t) for a one-layer `rnn`, by real-time recurrent learning.

    x: (T, B, I), time first. `step_loss(t, h_t)` is the loss at step t as a function of that
    step's state alone (say a readout and a cross-entropy); autograd is used only for its local
    derivative dL_t/dh_t, never through time. Returns {parameter name: gradient}, like `.grad`.
    """
    if rnn.num_layers != 1:
        raise ValueError("rtrl_gradients handles one recurrent layer")
    w_ih, w_hh, b_ih, b_hh = (w.detach() for w in rnn.layer_weights(0))
    steps, batch, n_in = x.shape
    hidden = rnn.hidden_size
    eye = torch.eye(hidden, dtype=x.dtype)
    # theta = (W_ih, W_hh, b_ih, b_hh) flattened; P holds dh_t/dtheta for each sequence of the batch.
    sizes = [hidden * n_in, hidden * hidden, hidden, hidden]
    sensitivity = x.new_zeros(batch, hidden, sum(sizes))  # (B, H, n_params), P_0 = 0
    h = x.new_zeros(batch, hidden)
    gradient = x.new_zeros(sum(sizes))
    for t in range(steps):
        # da_t/dtheta, direct part: unit k's pre-activation depends on W[k, j] through x_j or h_j.
        direct = torch.cat([
            torch.einsum("ki,bj->bkij", eye, x[t]).reshape(batch, hidden, -1),  # d a_k / d W_ih[i, j]
            torch.einsum("ki,bj->bkij", eye, h).reshape(batch, hidden, -1),  # d a_k / d W_hh[i, j]
            eye.expand(batch, hidden, hidden), eye.expand(batch, hidden, hidden),  # d a_k / d b_ih, b_hh
        ], dim=2)
        h = torch.tanh(x[t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh)  # (B, H), equation (1)
        sensitivity = (1 - h ** 2).unsqueeze(2) * (direct + w_hh @ sensitivity)  # equation (3)
        h_leaf = h.clone().requires_grad_()
        (local,) = torch.autograd.grad(step_loss(t, h_leaf), h_leaf)  # dL_t/dh_t: (B, H)
        gradient += torch.einsum("bk,bkp->p", local, sensitivity)
    names = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    shapes = [w_ih.shape, w_hh.shape, b_ih.shape, b_hh.shape]
    return {name: g.reshape(shape) for name, g, shape in zip(names, gradient.split(sizes), shapes)}
