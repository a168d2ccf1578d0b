"""The Transformer: attention is all you need (Vaswani et al., 2017).

The attention translator (../../sequences/attention) still reads and writes one word at a time with
recurrent networks: step t waits for step t-1, so a sentence of N words costs N sequential steps
however many processors there are. The Transformer drops the recurrence. Every layer lets every
position look at every other position at once through attention, and the whole sentence is
processed in parallel; only the order of the words must be injected from outside.

Scaled dot-product attention (equation numbers here are ours). Each query is compared with every
key by a dot product; the softmax of the scores weights the values. With queries Q (Tq, d_k), keys
K (Tk, d_k), values V (Tk, d_v):

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V                                   (1)

The dot product of two random d_k-vectors with unit-variance entries has variance d_k; dividing by
sqrt(d_k) keeps the scores near unit scale, so the softmax does not saturate as d_k grows.

Multi-head attention. h heads attend in parallel, each in its own d_k = d_model / h dimensional
projection, and their outputs are concatenated and projected back:

    head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)
    MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O                                 (2)

One head averages what it reads; several heads can read different positions for different reasons.

The layers. An encoder layer is self-attention then a position-wise feed-forward network,

    FFN(x) = max(0, x W_1 + b_1) W_2 + b_2                                               (3)

each wrapped as LayerNorm(x + Dropout(Sublayer(x))): a residual connection (../../optimization/resnet)
followed by layer normalisation (../../optimization/layernorm), "post-LN". A decoder layer has three
sublayers: causal self-attention (position i sees only positions <= i), attention over the encoder's
output (cross-attention, the Bahdanau alignment in dot-product form), and the feed-forward network.

Positions. Attention is blind to order, so a fixed code is added to each word embedding:

    PE(pos, 2i) = sin(pos / 10000^(2i / d_model)),  PE(pos, 2i + 1) = cos(pos / 10000^(2i / d_model))   (4)

Each pair of dimensions is a clock with its own period (2 pi to 10000 * 2 pi); PE(pos + k) is a fixed
rotation of PE(pos), so an offset is a linear function a head can learn.

Embeddings. Source words, target words and the output softmax share one matrix E (vocab, d_model);
embeddings are multiplied by sqrt(d_model), so that with E initialised at scale d_model^-1/2 the
embedding and the positional code (entries in [-1, 1]) start at the same size.

Training (Section 5): Adam (beta_2 = 0.98, eps = 1e-9), the learning rate of equation (5) below,
dropout 0.1 on every sublayer output and on the embedding sums, and label smoothing 0.1.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def attention_weights(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None = None,
                      causal: bool = False) -> torch.Tensor:
    """softmax(q k^T / sqrt(d_k)): q (..., Tq, d_k), k (..., Tk, d_k) -> (..., Tq, Tk), rows summing to 1.

    `mask` (boolean, broadcastable to (..., Tq, Tk)) is True where a query may look at a key (the
    convention of `F.scaled_dot_product_attention`); `causal` also hides every key after the query's
    own position. Every query must keep at least one key, or its row is 0/0.
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., Tq, Tk)
    if causal:
        allowed = torch.ones(scores.shape[-2:], dtype=torch.bool, device=q.device).tril()  # key j <= query i
        mask = allowed if mask is None else mask & allowed
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))  # exp(-inf) = 0: no weight at all
    return F.softmax(scores, dim=-1)


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
                                 causal: bool = False) -> torch.Tensor:
    """Equation (1): q (..., Tq, d_k), k (..., Tk, d_k), v (..., Tk, d_v) -> (..., Tq, d_v); masks as above."""
    return attention_weights(q, k, mask, causal) @ v


class MultiHeadAttention(nn.Module):
    """Equation (2). The h heads' projections W_i^Q are stored side by side as one (d_model, d_model)
    linear map (likewise W^K, W^V), so head i owns the columns i*d_k .. (i+1)*d_k of its output."""

    def __init__(self, d_model: int, heads: int):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model ({d_model}) must divide into {heads} heads")
        self.heads = heads
        self.query = nn.Linear(d_model, d_model)  # [W_1^Q ... W_h^Q]
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)  # W^O

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, d_model) -> (B, h, T, d_k)."""
        return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                key_padding: torch.Tensor | None = None, causal: bool = False) -> torch.Tensor:
        """query (B, Tq, d_model), key and value (B, Tk, d_model) -> (B, Tq, d_model).

        `key_padding` (B, Tk) is True at padding positions, which no query may attend to (the
        convention of `nn.MultiheadAttention`'s key_padding_mask); `causal` as in `attention_weights`.
        """
        q = self.split_heads(self.query(query))  # Q W^Q for every head at once: (B, h, Tq, d_k)
        k, v = self.split_heads(self.key(key)), self.split_heads(self.value(value))  # (B, h, Tk, d_k)
        mask = None if key_padding is None else ~key_padding[:, None, None, :]  # (B, 1, 1, Tk): every head, query
        heads = scaled_dot_product_attention(q, k, v, mask, causal)  # (B, h, Tq, d_k)
        return self.out(heads.transpose(1, 2).flatten(2))  # Concat(head_1..head_h) W^O


class FeedForward(nn.Module):
    """Equation (3), the same two-layer ReLU network (../../optimization/relu) at every position."""

    def __init__(self, d_model: int, d_ff: int):
        super().__init__()
        self.inner = nn.Linear(d_model, d_ff)  # W_1, b_1
        self.outer = nn.Linear(d_ff, d_model)  # W_2, b_2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outer(F.relu(self.inner(x)))


class EncoderLayer(nn.Module):
    """x -> LN(x + Drop(SelfAttention(x))) -> LN(. + Drop(FFN(.))): post-LN, as in the paper."""

    def __init__(self, d_model: int, heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.self_attention = MultiHeadAttention(d_model, heads)
        self.self_attention_norm = nn.LayerNorm(d_model)
        self.feed_forward = FeedForward(d_model, d_ff)
        self.feed_forward_norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, N, d_model), padding (B, N) True at padding -> (B, N, d_model)."""
        x = self.self_attention_norm(x + self.dropout(self.self_attention(x, x, x, key_padding=padding)))
        return self.feed_forward_norm(x + self.dropout(self.feed_forward(x)))


class DecoderLayer(nn.Module):
    """Causal self-attention, attention over the encoder's output `memory`, then the FFN; each post-LN."""

    def __init__(self, d_model: int, heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.self_attention = MultiHeadAttention(d_model, heads)
        self.self_attention_norm = nn.LayerNorm(d_model)
        self.cross_attention = MultiHeadAttention(d_model, heads)
        self.cross_attention_norm = nn.LayerNorm(d_model)
        self.feed_forward = FeedForward(d_model, d_ff)
        self.feed_forward_norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, y: torch.Tensor, memory: torch.Tensor, memory_padding: torch.Tensor | None = None,
                padding: torch.Tensor | None = None) -> torch.Tensor:
        """y (B, T, d_model), memory (B, N, d_model); paddings (B, N), (B, T) -> (B, T, d_model)."""
        y = self.self_attention_norm(y + self.dropout(self.self_attention(y, y, y, key_padding=padding, causal=True)))
        attended = self.cross_attention(y, memory, memory, key_padding=memory_padding)  # queries from the target
        y = self.cross_attention_norm(y + self.dropout(attended))
        return self.feed_forward_norm(y + self.dropout(self.feed_forward(y)))


def sinusoidal_positions(length: int, d_model: int) -> torch.Tensor:
    """Equation (4): (length, d_model), row pos = PE(pos)."""
    position = torch.arange(length, dtype=torch.float64)[:, None]  # (length, 1)
    frequency = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # 1 / 10000^(2i/d)
    angle = position * frequency  # (length, d_model / 2)
    return torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(1).float()  # sin, cos interleaved


class Transformer(nn.Module):
    """The encoder-decoder of Figure 1 with one shared vocabulary (source words, target words and the
    beginning-of-sentence token `bos`). The defaults are the paper's base model."""

    def __init__(self, vocab: int, bos: int, d_model: int = 512, heads: int = 8, d_ff: int = 2048,
                 layers: int = 6, dropout: float = 0.1, max_length: int = 512):
        super().__init__()
        self.bos, self.d_model = bos, d_model
        self.embedding = nn.Embedding(vocab, d_model)  # E: source, target and output, tied
        self.register_buffer("positions", sinusoidal_positions(max_length, d_model), persistent=False)
        self.dropout = nn.Dropout(dropout)
        self.encoder = nn.ModuleList(EncoderLayer(d_model, heads, d_ff, dropout) for _ in range(layers))
        self.decoder = nn.ModuleList(DecoderLayer(d_model, heads, d_ff, dropout) for _ in range(layers))
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)  # the paper's code (tensor2tensor) and nn.Transformer
        nn.init.normal_(self.embedding.weight, std=d_model ** -0.5)  # times sqrt(d_model): unit scale

    def embed(self, words: torch.Tensor) -> torch.Tensor:
        """words (B, T) -> Drop(E[words] * sqrt(d_model) + PE[0..T-1]): (B, T, d_model)."""
        return self.dropout(self.embedding(words) * math.sqrt(self.d_model) + self.positions[:words.shape[1]])

    def encode(self, source: torch.Tensor, source_padding: torch.Tensor | None = None) -> torch.Tensor:
        """source (B, N), source_padding (B, N) True at padding -> memory (B, N, d_model)."""
        x = self.embed(source)
        for layer in self.encoder:
            x = layer(x, source_padding)
        return x

    def decode(self, previous: torch.Tensor, memory: torch.Tensor, source_padding: torch.Tensor | None = None,
               target_padding: torch.Tensor | None = None) -> torch.Tensor:
        """The words written so far, previous (B, T), and memory (B, N, d_model) -> logits (B, T, vocab):
        position t scores the word that follows previous[:, :t + 1]."""
        y = self.embed(previous)
        for layer in self.decoder:
            y = layer(y, memory, source_padding, target_padding)
        return y @ self.embedding.weight.T  # the pre-softmax projection is E^T

    def forward(self, source: torch.Tensor, target: torch.Tensor, source_padding: torch.Tensor | None = None,
                target_padding: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher forcing, all positions at once: the decoder reads bos, y_1 .. y_(T-1) and predicts
        y_1 .. y_T. source (B, N), target (B, T) -> logits (B, T, vocab)."""
        previous = torch.cat([torch.full_like(target[:, :1], self.bos), target[:, :-1]], dim=1)  # shift right
        return self.decode(previous, self.encode(source, source_padding), source_padding, target_padding)

    @torch.no_grad()
    def translate(self, source: torch.Tensor, length: int, source_padding: torch.Tensor | None = None) -> torch.Tensor:
        """Greedy decoding of `length` words: source (B, N) -> (B, length). The encoder runs once; the
        decoder reruns on the growing prefix (a cache of past keys and values would avoid that)."""
        memory = self.encode(source, source_padding)
        words = torch.full_like(source[:, :1], self.bos)  # (B, 1)
        for _ in range(length):
            best = self.decode(words, memory, source_padding)[:, -1].argmax(-1)  # (B,)
            words = torch.cat([words, best[:, None]], dim=1)
        return words[:, 1:]


def label_smoothed_cross_entropy(logits: torch.Tensor, target: torch.Tensor, smoothing: float = 0.1) -> torch.Tensor:
    """Mean cross-entropy against the smoothed target q = (1 - eps) onehot(y) + eps / K (Szegedy et al.,
    2016; K classes): logits (..., K), target (...) -> scalar.

    -sum_k q_k log p_k = (1 - eps) (-log p_y) + eps * mean_k(-log p_k): the usual loss plus a pull of
    every prediction towards uniform, so the model is never rewarded for certainty.
    """
    log_p = F.log_softmax(logits, dim=-1)
    true_word = -log_p.gather(-1, target.unsqueeze(-1)).squeeze(-1)  # -log p_y
    uniform = -log_p.mean(-1)  # the cross-entropy against the uniform distribution
    return ((1 - smoothing) * true_word + smoothing * uniform).mean()


def learning_rate(step: int, d_model: int, warmup: int) -> float:
    """Equation (5), step >= 1: d_model^-0.5 * min(step^-0.5, step * warmup^-1.5). It grows linearly
    for `warmup` steps, peaks at (d_model * warmup)^-0.5, then decays as 1/sqrt(step)."""
    return d_model ** -0.5 * min(step ** -0.5, step * warmup ** -1.5)


def learning_rate_schedule(d_model: int, warmup: int) -> Callable[[int], float]:
    """Equation (5) for `torch.optim.lr_scheduler.LambdaLR` over an optimizer with lr=1.0 (a
    different lr scales it). LambdaLR passes the number of updates already made, so update
    number `done + 1`, the paper's step_num, gets learning_rate(done + 1)."""
    return lambda done: learning_rate(done + 1, d_model, warmup)
