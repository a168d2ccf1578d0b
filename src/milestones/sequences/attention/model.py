"""Additive attention: jointly learning to align and translate (Bahdanau, Cho & Bengio, 2014).

The encoder-decoder (../encoder_decoder) passes the whole source through one vector c, and its
translations of long sentences suffer for it. Here the encoder keeps one vector per source word,
and the decoder chooses, afresh for every word it writes, which of them to read.

Annotations. A bidirectional GRU reads the source both ways; the annotation of word j joins the
forward state (the sentence up to j) and the backward state (the sentence from j on):

    h_j = [fwd_h_j ; bwd_h_j]                                               (B, N, 2H)

Alignment. Before writing word i, the decoder scores every annotation against its previous
state s_(i-1) with a one-hidden-layer network, the *alignment model*, and normalises the scores:

    e_ij = v^T tanh(W s_(i-1) + U h_j)                                      (1)
    a_ij = exp(e_ij) / sum_k exp(e_ik)                                      (2)
    c_i  = sum_j a_ij h_j                                                   (3)

The weights a_i. are a probability distribution over source positions (a soft alignment), and
c_i, the context for word i, is their expectation of the annotations. Everything is
differentiable, so the alignment is learned by backprop from the translation loss alone, with no
alignment labels. U h_j does not depend on i, so it is computed once per sentence.

Decoding is the encoder-decoder's, with c_i in place of the fixed c:

    s_0 = tanh(W_s bwd_h_1)
    s_i = GRU([e(y_(i-1)); c_i], s_(i-1))
    p(y_i | y_<i, x) = softmax(W_o [s_i; e(y_(i-1)); c_i])                  (4)

(The paper's readout adds a maxout layer; one linear layer keeps ours equal to the encoder-decoder
it is compared with.) Because c_i must be computed from s_(i-1) before s_i exists, the decoder
runs one step at a time even under teacher forcing. Only the recurrence (1)-(3) and the GRU step
need that loop, though: under teacher forcing the previous words y_0 = BOS, y_1, ..., y_(T-1) are
known in advance, so their embeddings are looked up once before the loop, and the readout (4) runs
once on all the stacked s_i, e(y_(i-1)) and c_i after it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from milestones.sequences.encoder_decoder.model import GRU, RecurrentLayer


class AdditiveAttention(nn.Module):
    """Equations (1)-(3): score each key against the query, softmax, and average the keys."""

    def __init__(self, query_size: int, key_size: int, attention_size: int):
        super().__init__()
        self.query_projection = nn.Linear(query_size, attention_size, bias=False)  # W
        self.key_projection = nn.Linear(key_size, attention_size)  # U (its bias is the network's hidden bias)
        self.score = nn.Linear(attention_size, 1, bias=False)  # v

    def project_keys(self, keys: torch.Tensor) -> torch.Tensor:
        """U h_j for every position, once per sentence: keys (B, N, K) -> (B, N, A)."""
        return self.key_projection(keys)

    def forward(self, query: torch.Tensor, keys: torch.Tensor,
                projected_keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, Q), keys (B, N, K), projected_keys (B, N, A) -> (context (B, K), weights (B, N))."""
        hidden = torch.tanh(self.query_projection(query).unsqueeze(1) + projected_keys)  # (B, N, A)
        weights = F.softmax(self.score(hidden).squeeze(-1), dim=1)  # (B, N), each row sums to 1
        context = torch.bmm(weights.unsqueeze(1), keys).squeeze(1)  # sum_j a_j h_j: (B, K)
        return context, weights


class AttentionTranslator(nn.Module):
    """RNNsearch: a bidirectional GRU encoder, additive attention, and a GRU decoder, equation (4).

    `recurrent_layer` builds the two encoder directions and the decoder: our GRU, or nn.GRU for
    speed, as in the encoder-decoder. The decoder runs one step at a time in either case: our GRU's
    `step`, or for nn.GRU the same weights in `torch.gru_cell`, its fused cell (proven equal to
    `GRU.step` in tests/equivalence/test_attention.py). The target vocabulary includes the
    beginning-of-sentence token `bos`.
    """

    def __init__(self, source_vocab: int, target_vocab: int, bos: int, embed_size: int = 64,
                 hidden_size: int = 128, attention_size: int = 64, recurrent_layer: RecurrentLayer = GRU):
        super().__init__()
        self.bos = bos
        self.source_embedding = nn.Embedding(source_vocab, embed_size)
        self.target_embedding = nn.Embedding(target_vocab, embed_size)
        self.forward_encoder = recurrent_layer(embed_size, hidden_size)
        self.backward_encoder = recurrent_layer(embed_size, hidden_size)
        self.init_decoder = nn.Linear(hidden_size, hidden_size)  # W_s
        self.attention = AdditiveAttention(hidden_size, 2 * hidden_size, attention_size)
        self.decoder = recurrent_layer(embed_size + 2 * hidden_size, hidden_size)
        self.readout = nn.Linear(hidden_size + embed_size + 2 * hidden_size, target_vocab)  # W_o

    def encode(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """source (B, N) -> (annotations (B, N, 2H), the decoder's first state s_0 (B, H))."""
        embedded = self.source_embedding(source)  # (B, N, E)
        forward_states, _ = self.forward_encoder(embedded)  # (B, N, H)
        backward_states, _ = self.backward_encoder(embedded.flip(1))  # read right to left
        backward_states = backward_states.flip(1)  # back in source order: position j holds bwd_h_j
        annotations = torch.cat([forward_states, backward_states], dim=-1)
        return annotations, torch.tanh(self.init_decoder(backward_states[:, 0]))

    def recur(self, embedded: torch.Tensor, state: torch.Tensor, annotations: torch.Tensor,
              projected: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The part of a decoder step that needs s_(i-1): e(y_(i-1)) (B, E), s_(i-1) (B, H) ->
        (s_i (B, H), c_i (B, 2H), alignment a_i. (B, N))."""
        context, weights = self.attention(state, annotations, projected)  # c_i from s_(i-1), (1)-(3)
        x = torch.cat([embedded, context], dim=-1)  # the GRU's input [e(y_(i-1)); c_i]
        if isinstance(self.decoder, GRU):
            state = self.decoder.step(x, state)
        else:  # nn.GRU's weights in its fused cell
            d = self.decoder
            state = torch.gru_cell(x, state, d.weight_ih_l0, d.weight_hh_l0, d.bias_ih_l0, d.bias_hh_l0)
        return state, context, weights

    def teacher_forced(self, source: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """source (B, N), target (B, T) -> (logits (B, T, V), alignments (B, T, N))."""
        annotations, state = self.encode(source)
        projected = self.attention.project_keys(annotations)
        previous = torch.cat([torch.full_like(target[:, :1], self.bos), target[:, :-1]], dim=1)  # y_0 = BOS
        embedded = self.target_embedding(previous)  # (B, T, E), all known before decoding starts
        states, contexts, alignments = [], [], []
        for i in range(target.shape[1]):
            state, context, weights = self.recur(embedded[:, i], state, annotations, projected)
            states.append(state)
            contexts.append(context)
            alignments.append(weights)
        # (4) for every i at once: W_o [s_i; e(y_(i-1)); c_i]
        logits = self.readout(torch.cat([torch.stack(states, 1), embedded, torch.stack(contexts, 1)], dim=-1))
        return logits, torch.stack(alignments, dim=1)

    def forward(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.teacher_forced(source, target)[0]

    @torch.no_grad()
    def translate(self, source: torch.Tensor, length: int) -> torch.Tensor:
        """Greedy decoding of `length` words: source (B, N) -> (B, length). Each word is fed back, so
        here the embedding and the readout (4) run inside the loop."""
        annotations, state = self.encode(source)
        projected = self.attention.project_keys(annotations)
        word = torch.full_like(source[:, 0], self.bos)
        words = []
        for _ in range(length):
            embedded = self.target_embedding(word)  # (B, E)
            state, context, _ = self.recur(embedded, state, annotations, projected)
            word = self.readout(torch.cat([state, embedded, context], dim=-1)).argmax(-1)  # our own best guess
            words.append(word)
        return torch.stack(words, dim=1)
