"""Sequence to sequence learning with deep LSTMs (Sutskever, Vinyals & Le, 2014).

The design is the encoder-decoder of ../encoder_decoder, made deep and plain:

- the encoder is a stack of LSTM layers (../lstm, with the forget gate of ../forget_gate) that
  reads the source; its final hidden and cell states, one pair per layer, are the whole summary;
- the decoder is a second LSTM stack of the same shape that *starts* from those states (the
  summary is not fed again at later steps) and predicts each target word from its top layer:

      (h, c)^enc = LSTM_enc(e(x_1), ..., e(x_N))                  one (h, c) per layer
      s_t = LSTM_dec(e(y_(t-1)), s_(t-1)),  s_0 = (h, c)^enc
      p(y_t | y_<t, x) = softmax(W_o s_t^top)                                (1)

Two ideas of the paper live here besides the architecture:

1. Reversing the source. The encoder reads x_N, ..., x_1 instead of x_1, ..., x_N. Nothing is lost
   (the same words go in), but the first target words, which usually come from the first source
   words, are now only a few steps away from them; these short dependencies give the optimiser an
   easy start. `reverse_source=True` turns it on.

2. Beam search. The model scores whole translations, log p(y | x) = sum_t log p(y_t | y_<t, x),
   and decoding looks for the best-scoring one. Greedy decoding takes the single most likely word
   at every step; a beam keeps the K best prefixes, extends each by every word, and keeps the K
   best of the K x V candidates, so an early word that looks slightly worse can win later.

The LSTM stacks are `nn.LSTM`: our from-scratch LSTM (../lstm/model.py) is proven equal to it in
tests/equivalence/test_lstm.py, and the fused kernel is much faster.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

State = tuple[torch.Tensor, torch.Tensor]  # (h, c), each (layers, B, H)


class Seq2Seq(nn.Module):
    """Equation (1): a deep LSTM encoder whose final states start a deep LSTM decoder."""

    def __init__(self, source_vocab: int, target_vocab: int, bos: int, embed_size: int = 64,
                 hidden_size: int = 128, num_layers: int = 2, reverse_source: bool = False):
        super().__init__()
        self.bos, self.reverse_source = bos, reverse_source
        self.source_embedding = nn.Embedding(source_vocab, embed_size)
        self.target_embedding = nn.Embedding(target_vocab, embed_size)
        self.encoder = nn.LSTM(embed_size, hidden_size, num_layers, batch_first=True)
        self.decoder = nn.LSTM(embed_size, hidden_size, num_layers, batch_first=True)
        self.readout = nn.Linear(hidden_size, target_vocab)  # W_o

    def encode(self, source: torch.Tensor) -> State:
        """source (B, N) -> the encoder's final (h, c), each (layers, B, H)."""
        if self.reverse_source:
            source = source.flip(1)  # read x_N, ..., x_1
        _, state = self.encoder(self.source_embedding(source))
        return state

    def decode(self, previous: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """previous words (B, T), state -> (logits (B, T, V), the state after the last word)."""
        top, state = self.decoder(self.target_embedding(previous), state)  # top: (B, T, H)
        return self.readout(top), state

    def forward(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: source (B, N), target (B, T) -> logits (B, T, V)."""
        previous = torch.cat([torch.full_like(target[:, :1], self.bos), target[:, :-1]], dim=1)
        return self.decode(previous, self.encode(source))[0]

    @torch.no_grad()
    def log_likelihood(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """log p(target | source) = sum_t log p(y_t | y_<t, x), one number per sentence: (B,)."""
        log_probs = F.log_softmax(self(source, target), dim=-1)  # (B, T, V)
        return log_probs.gather(-1, target.unsqueeze(-1)).squeeze(-1).sum(1)

    @torch.no_grad()
    def translate(self, source: torch.Tensor, length: int) -> torch.Tensor:
        """Greedy decoding of `length` words: source (B, N) -> (B, length)."""
        state = self.encode(source)
        word = torch.full_like(source[:, :1], self.bos)  # (B, 1)
        words = []
        for _ in range(length):
            logits, state = self.decode(word, state)
            word = logits.argmax(-1)  # (B, 1)
            words.append(word)
        return torch.cat(words, dim=1)

    @torch.no_grad()
    def beam_search(self, source: torch.Tensor, length: int, beam_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The `beam_size` best-scoring translations of `length` words found by beam search.

        source (B, N) -> (words (B, K, length), log p(words | source) (B, K)), best first.
        Every sentence in the batch runs its own beam; the K hypotheses are folded into the batch.
        """
        batch, k = source.shape[0], beam_size
        h, c = self.encode(source)
        state = (h.repeat_interleave(k, dim=1), c.repeat_interleave(k, dim=1))  # (layers, B*K, H)
        words = torch.full((batch * k, 1), self.bos, dtype=torch.long, device=source.device)
        # Only the first hypothesis is live at the start: the others would duplicate it.
        scores = torch.full((batch, k), float("-inf"), device=source.device)
        scores[:, 0] = 0.0
        for _ in range(length):
            logits, state = self.decode(words[:, -1:], state)  # (B*K, 1, V)
            vocab = logits.shape[-1]
            candidates = scores.unsqueeze(-1) + F.log_softmax(logits[:, 0], -1).view(batch, k, vocab)  # (B, K, V)
            scores, best = candidates.view(batch, k * vocab).topk(k, dim=1)  # (B, K): the K best extensions
            parent = best // vocab + torch.arange(batch, device=source.device).unsqueeze(1) * k  # row in B*K
            parent = parent.flatten()
            words = torch.cat([words[parent], (best % vocab).view(-1, 1)], dim=1)
            state = (state[0][:, parent], state[1][:, parent])  # each survivor continues its parent's state
        return words[:, 1:].view(batch, k, length), scores
