"""The RNN encoder-decoder and its gated recurrent unit (Cho et al., 2014).

The gated recurrent unit. A plain tanh RNN overwrites its whole state at every step, so what it
saw long ago fades (see ../rnn). The LSTM (../lstm) protects its memory with a separate cell and
three gates; Cho et al. keep the single state vector h and use two gates:

    r_t = sigmoid(W_ir x_t + b_ir + W_hr h_(t-1) + b_hr)                  reset gate
    z_t = sigmoid(W_iz x_t + b_iz + W_hz h_(t-1) + b_hz)                  update gate
    n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_(t-1) + b_hn))             candidate state
    h_t = (1 - z_t) * n_t + z_t * h_(t-1)                                  (1)

When z_t is near 1 the unit copies its old state forward untouched, so gradients flow back across
many steps as they do through the LSTM's cell; when r_t is near 0 the candidate ignores the past
and the unit can start afresh at a phrase boundary. (The paper applies the reset before the
recurrent matrix, n_t = tanh(W_in x_t + b_in + W_hn (r_t * h_(t-1)) + b_hn); PyTorch, cuDNN and most
later work apply it after, as above. Our `GRU` does either: by default PyTorch's, so that
tests/equivalence/test_encoder_decoder.py can prove it equal to `nn.GRU` with the same weights, and
the paper's with `reset_before=True`, tested there against the equations written out.)

The encoder-decoder. One GRU reads the source x_1..x_N; its last state becomes a fixed-size
summary c of the whole sentence. A second GRU writes the translation one word at a time, seeing
c at every step:

    c = tanh(V h_N)                                          the summary vector
    s_0 = tanh(V' c)                                         the decoder's first state
    s_t = GRU([e(y_(t-1)); c], s_(t-1))                      (e: the target word embedding)
    p(y_t | y_<t, x) = softmax(W_o [s_t; e(y_(t-1)); c])      (2)

Training maximises log p(y | x), feeding the true previous word y_(t-1) (teacher forcing);
translating feeds back the model's own most likely word (greedy decoding). Everything the decoder
knows about the source passes through c, whatever the sentence length: the bottleneck that
attention (../attention) removes.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn


class GRU(nn.Module):
    """One GRU layer, equation (1), unrolled in a Python loop over time; inputs are (B, T, I).

    Parameters carry `nn.GRU`'s names and layout (the three gates stacked r, z, n in that order),
    so a state dict moves between the two unchanged. `reset_before=True` gives the paper's candidate
    state, with the reset gate applied to h before the recurrent matrix.
    """

    def __init__(self, input_size: int, hidden_size: int, reset_before: bool = False):
        super().__init__()
        self.hidden_size = hidden_size
        self.reset_before = reset_before
        self.weight_ih_l0 = nn.Parameter(torch.empty(3 * hidden_size, input_size))  # [W_ir; W_iz; W_in]
        self.weight_hh_l0 = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))  # [W_hr; W_hz; W_hn]
        self.bias_ih_l0 = nn.Parameter(torch.empty(3 * hidden_size))
        self.bias_hh_l0 = nn.Parameter(torch.empty(3 * hidden_size))
        bound = 1 / math.sqrt(hidden_size)  # nn.GRU's initialisation
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def step(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One step of (1): x (B, I), h (B, H) -> the next h (B, H)."""
        from_input = (x @ self.weight_ih_l0.T + self.bias_ih_l0).chunk(3, dim=1)  # 3 x (B, H)
        from_state = (h @ self.weight_hh_l0.T + self.bias_hh_l0).chunk(3, dim=1)
        reset = torch.sigmoid(from_input[0] + from_state[0])
        update = torch.sigmoid(from_input[1] + from_state[1])
        if self.reset_before:  # the paper: W_hn (r * h) + b_hn
            w_hn, b_hn = self.weight_hh_l0[2 * self.hidden_size:], self.bias_hh_l0[2 * self.hidden_size:]
            candidate = torch.tanh(from_input[2] + (reset * h) @ w_hn.T + b_hn)
        else:  # PyTorch: r * (W_hn h + b_hn)
            candidate = torch.tanh(from_input[2] + reset * from_state[2])
        return (1 - update) * candidate + update * h

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, I), h0 (1, B, H) or None for zeros -> (every state (B, T, H), last state (1, B, H)),
        the same signature as `nn.GRU(batch_first=True)`."""
        h = x.new_zeros(x.shape[0], self.hidden_size) if h0 is None else h0[0]
        states = []
        for t in range(x.shape[1]):
            h = self.step(x[:, t], h)
            states.append(h)
        return torch.stack(states, dim=1), h.unsqueeze(0)


RecurrentLayer = Callable[[int, int], nn.Module]  # (input size, hidden size) -> a batch-first GRU layer


class EncoderDecoder(nn.Module):
    """Equation (2): a GRU encoder squeezes the source into c, a GRU decoder writes the target from c.

    `recurrent_layer` builds both GRUs: our `GRU` by default; the experiments pass
    `nn.GRU(batch_first=True)`, its fused equal (proven in tests/equivalence/test_encoder_decoder.py).
    The target vocabulary includes a beginning-of-sentence token, id `bos`, that starts decoding.
    """

    def __init__(self, source_vocab: int, target_vocab: int, bos: int, embed_size: int = 64,
                 hidden_size: int = 128, recurrent_layer: RecurrentLayer = GRU):
        super().__init__()
        self.bos = bos
        self.source_embedding = nn.Embedding(source_vocab, embed_size)
        self.target_embedding = nn.Embedding(target_vocab, embed_size)
        self.encoder = recurrent_layer(embed_size, hidden_size)
        self.summarize = nn.Linear(hidden_size, hidden_size)  # V in c = tanh(V h_N)
        self.init_decoder = nn.Linear(hidden_size, hidden_size)  # V' in s_0 = tanh(V' c)
        self.decoder = recurrent_layer(embed_size + hidden_size, hidden_size)
        self.readout = nn.Linear(hidden_size + embed_size + hidden_size, target_vocab)  # W_o

    def encode(self, source: torch.Tensor) -> torch.Tensor:
        """source (B, N) word ids -> the summary c (B, H)."""
        _, last = self.encoder(self.source_embedding(source))  # last: (1, B, H)
        return torch.tanh(self.summarize(last[0]))

    def decode(self, summary: torch.Tensor, previous: torch.Tensor,
               state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the decoder over previous words (B, T) from `state` (1, B, H) -> (logits (B, T, V), last state)."""
        embedded = self.target_embedding(previous)  # (B, T, E)
        context = summary.unsqueeze(1).expand(-1, previous.shape[1], -1)  # c at every step, (B, T, H)
        states, last = self.decoder(torch.cat([embedded, context], dim=-1), state)  # (B, T, H)
        return self.readout(torch.cat([states, embedded, context], dim=-1)), last

    def first_state(self, summary: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.init_decoder(summary)).unsqueeze(0)  # (1, B, H)

    def forward(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: source (B, N), target (B, T) -> logits (B, T, V) for each target word."""
        summary = self.encode(source)
        previous = torch.cat([torch.full_like(target[:, :1], self.bos), target[:, :-1]], dim=1)  # y_0 = BOS
        logits, _ = self.decode(summary, previous, self.first_state(summary))
        return logits

    @torch.no_grad()
    def translate(self, source: torch.Tensor, length: int) -> torch.Tensor:
        """Greedy decoding of `length` words: source (B, N) -> (B, length) word ids."""
        summary = self.encode(source)
        state = self.first_state(summary)
        word = torch.full_like(source[:, :1], self.bos)  # (B, 1)
        words = []
        for _ in range(length):
            logits, state = self.decode(summary, word, state)
            word = logits.argmax(-1)  # (B, 1): feed back our own best guess
            words.append(word)
        return torch.cat(words, dim=1)
