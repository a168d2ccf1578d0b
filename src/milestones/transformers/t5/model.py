"""T5: a unified text-to-text Transformer (Raffel et al., 2019).

T5's point is less a new network than a single interface: every task, translation, classification,
regression, summarisation, is text in and text out, told apart by a prefix ("translate English to
German: ...", "cola sentence: ..."). One encoder-decoder, one loss (cross-entropy of the output
text), one decoding procedure serve them all. The network is the Transformer's (../transformer)
with the changes below, which the paper settled on after its own ablations and which the released
checkpoints (T5 v1.0) carry.

Pre-LN residual blocks with an RMS norm. Every sublayer reads a normalised copy of the stream and
adds its output back, x <- x + Drop(F(Norm(x))), and the stack ends with one more Norm. The norm
only rescales (no mean subtracted, no bias; Zhang and Sennrich's RMSNorm, a trimmed
../../optimization/layernorm):

    Norm(x) = g * x / sqrt(mean_i x_i^2 + eps)                                         (1)

Relative position biases instead of positional embeddings. Nothing about position enters the
embeddings. Each attention layer adds to the logit of query i and key j a learned scalar per head
that depends only on the offset j - i, through a small table of buckets:

    scores_h(i, j) = q_i . k_j + b_h[bucket(j - i)]                                    (2)

Offsets below a threshold get a bucket each; larger ones share logarithmically wider buckets up to
`max_distance`, beyond which all offsets are one bucket. In the encoder past and future offsets get
separate halves of the table (bidirectional); in the decoder future keys are masked anyway, so only
past offsets are bucketed. Each stack has one table (T5 stores it in the stack's first layer), its
bias is computed once and added in every layer; cross-attention has none.

No 1/sqrt(d_k) in the logits. Equation (2) has no scale: T5 puts it into the initialisation instead
(the query weights start with standard deviation (d_model d_k)^-1/2, see `init_weights`), so at the
start the logits have the Transformer's size, and the optimizer (Adafactor in the paper) is free to
grow or shrink them.

Everything else is plain: ReLU feed-forward networks without biases (no linear layer in T5 has a
bias), dropout on the sublayer outputs, the attention weights, the feed-forward hidden layer and
the embeddings, one embedding matrix E shared by encoder input, decoder input and the output layer.
Tying the output to E needs a rescale: E starts with unit-variance entries, so the decoder's final
state y is multiplied by d_model^-1/2 before the logits,

    logits = (y * d_model^-1/2) E^T                                                    (3)

The decoder starts from the padding token (id 0) and a sequence ends with the end token (id 1).

Span corruption (Section 3.3). The unsupervised objective is itself text to text: drop about 15%
of the tokens of a text in a few contiguous spans, replace each span by a sentinel token (a
distinct id per span), and train the model to output the dropped spans, each after its sentinel:

    text   "the cat sat on the warm mat by the door"
    input  "the cat <X> the warm mat by <Y> door"
    target "<X> sat on <Y> the <Z>"

The target holds only the dropped tokens plus one sentinel per span, so longer spans mean fewer
sentinels and shorter targets, which is cheaper to train on than BERT's whole-sequence output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from milestones.core import interop

IGNORE = -100  # a label position without a target (F.cross_entropy's ignore_index)
PAD, EOS = 0, 1  # T5's vocabulary: padding (also the decoder's start token) and end of sequence


@dataclass
class T5Config:
    """T5-small by default (60M parameters)."""

    vocab_size: int = 32128
    d_model: int = 512
    d_kv: int = 64  # channels per head (T5 does not tie it to d_model / heads)
    d_ff: int = 2048
    layers: int = 6  # encoder layers
    decoder_layers: int = 6
    heads: int = 8
    buckets: int = 32  # relative position buckets
    max_distance: int = 128  # offsets this far or farther share the last bucket
    dropout: float = 0.1
    eps: float = 1e-6


# ------------------------------------------------------------------------------- positions
def relative_position_bucket(relative: torch.Tensor, bidirectional: bool = True, buckets: int = 32,
                             max_distance: int = 128) -> torch.Tensor:
    """Equation (2)'s bucket of each offset `relative` = key position - query position (an int tensor).

    Bidirectional: half the buckets for keys at or before the query, half for keys after it.
    Within a half of n buckets: offsets 0 .. n/2 - 1 each get their own; from n/2 on, the bucket is
    n/2 + floor(log(d / (n/2)) / log(max_distance / (n/2)) * (n - n/2)), so the remaining n/2 buckets
    cover n/2 .. max_distance in equal steps of log(d), and every d >= max_distance lands in n - 1.
    Causal (the decoder): keys after the query are masked, so their offsets all fall in bucket 0.
    """
    bucket = torch.zeros_like(relative)
    if bidirectional:
        buckets //= 2
        bucket = bucket + (relative > 0).long() * buckets  # the upper half: keys after the query
        distance = relative.abs()
    else:
        distance = (-relative).clamp(min=0)  # how far back the key is
    exact = buckets // 2
    # float32, as Mesh TensorFlow and Hugging Face compute it: the floor of the log must agree exactly
    scaled = torch.log(distance.clamp(min=exact).float() / exact) / torch.log(torch.tensor(max_distance / exact))
    far = (exact + (scaled * (buckets - exact)).long()).clamp(max=buckets - 1)
    return bucket + torch.where(distance < exact, distance, far)


class RelativePositionBias(nn.Module):
    """The table b_h[bucket] of equation (2): (buckets, heads), read as a bias (1, heads, Tq, Tk)."""

    def __init__(self, config: T5Config, bidirectional: bool):
        super().__init__()
        self.bidirectional, self.max_distance = bidirectional, config.max_distance
        self.table = nn.Embedding(config.buckets, config.heads)

    def forward(self, queries: int, keys: int, first_query: int = 0) -> torch.Tensor:
        """Queries at positions first_query .. first_query + queries - 1, keys at 0 .. keys - 1."""
        device = self.table.weight.device
        q = torch.arange(first_query, first_query + queries, device=device)[:, None]
        k = torch.arange(keys, device=device)[None, :]
        bucket = relative_position_bucket(k - q, self.bidirectional, self.table.num_embeddings, self.max_distance)
        return self.table(bucket).permute(2, 0, 1)[None]  # (Tq, Tk, h) -> (1, h, Tq, Tk)


# -------------------------------------------------------------------------------- the blocks
class RMSNorm(nn.Module):
    """Equation (1): a LayerNorm that neither centres nor shifts."""

    def __init__(self, d_model: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))  # g

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)


class Attention(nn.Module):
    """Multi-head attention of equation (2): no biases, no 1/sqrt(d_k); `bias` carries the positions."""

    def __init__(self, config: T5Config):
        super().__init__()
        inner = config.heads * config.d_kv
        self.heads = config.heads
        self.q = nn.Linear(config.d_model, inner, bias=False)
        self.k = nn.Linear(config.d_model, inner, bias=False)
        self.v = nn.Linear(config.d_model, inner, bias=False)
        self.o = nn.Linear(inner, config.d_model, bias=False)
        self.dropout = nn.Dropout(config.dropout)  # on the attention weights (its rate only: the kernel drops)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)  # (B, T, h d_kv) -> (B, h, T, d_kv)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """x (B, Tq, d) attends to memory (B, Tk, d) -> (B, Tq, d). `bias` (B or 1, h or 1, Tq or 1, Tk) is
        added to the logits: the position bias, and -inf where a query may not see a key (padding, future)."""
        q, k, v = self.split(self.q(x)), self.split(self.k(memory)), self.split(self.v(memory))
        # softmax(q k^T + bias) v, the 1/sqrt(d_kv) left in q's initial scale (scale=1). The fused kernel
        # equals the Transformer's written-out attention (tests/equivalence/test_transformer.py).
        heads = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=1.0,
                                               dropout_p=self.dropout.p if self.training else 0.0)
        return self.o(heads.transpose(1, 2).flatten(2))


class FeedForward(nn.Module):
    """W_o Drop(ReLU(W_i x)): the Transformer's network without biases."""

    def __init__(self, config: T5Config):
        super().__init__()
        self.wi = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wo = nn.Linear(config.d_ff, config.d_model, bias=False)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.wo(self.dropout(F.relu(self.wi(x))))


class Layer(nn.Module):
    """An encoder layer (self-attention, FFN) or a decoder layer (causal self-attention, attention over
    the encoder's output, FFN); each sublayer pre-norm: x <- x + Drop(F(Norm(x)))."""

    def __init__(self, config: T5Config, decoder: bool):
        super().__init__()
        self.self_attention_norm = RMSNorm(config.d_model, config.eps)
        self.self_attention = Attention(config)
        if decoder:
            self.cross_attention_norm = RMSNorm(config.d_model, config.eps)
            self.cross_attention = Attention(config)
        self.feed_forward_norm = RMSNorm(config.d_model, config.eps)
        self.feed_forward = FeedForward(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x, bias, memory=None, memory_bias=None):
        h = self.self_attention_norm(x)
        x = x + self.dropout(self.self_attention(h, h, bias))
        if memory is not None:
            x = x + self.dropout(self.cross_attention(self.cross_attention_norm(x), memory, memory_bias))
        return x + self.dropout(self.feed_forward(self.feed_forward_norm(x)))


class Stack(nn.Module):
    """The encoder or the decoder: layers that share one relative position bias, then a final norm."""

    def __init__(self, config: T5Config, decoder: bool):
        super().__init__()
        self.decoder = decoder
        self.position_bias = RelativePositionBias(config, bidirectional=not decoder)
        count = config.decoder_layers if decoder else config.layers
        self.layers = nn.ModuleList(Layer(config, decoder) for _ in range(count))
        self.final_norm = RMSNorm(config.d_model, config.eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, memory: torch.Tensor | None = None,
                memory_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, d) embedded tokens; mask (B, T) and memory_mask (B, N) 1 at tokens, 0 at padding."""
        T = x.shape[1]
        bias = self.position_bias(T, T).to(x.dtype)  # (1, h, T, T): computed once, added in every layer
        if self.decoder:  # key j <= query i
            bias = bias.masked_fill(torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1), float("-inf"))
        if mask is not None:  # no query looks at a padding key
            bias = bias.masked_fill(mask[:, None, None, :] == 0, float("-inf"))  # (B, h, T, T)
        memory_bias = None
        if memory is not None and memory_mask is not None:
            memory_bias = torch.zeros(memory_mask.shape, dtype=x.dtype, device=x.device).masked_fill(
                memory_mask == 0, float("-inf"))[:, None, None, :]  # (B, 1, 1, N): cross-attention has no positions
        x = self.dropout(x)
        for layer in self.layers:
            x = layer(x, bias, memory, memory_bias)
        return self.dropout(self.final_norm(x))


class T5(nn.Module):
    """The text-to-text encoder-decoder: token ids in, logits over the next output token out."""

    def __init__(self, config: T5Config):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.d_model)  # E: both inputs and the output
        self.encoder = Stack(config, decoder=False)
        self.decoder = Stack(config, decoder=True)
        self.apply(lambda module: init_weights(module, config))

    def encode(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """ids (B, N), mask (B, N) 1 at tokens, 0 at padding -> the encoder's output (B, N, d)."""
        return self.encoder(self.embedding(ids), mask)

    def decode(self, previous: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor | None = None,
               previous_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The output so far, previous (B, T), starting with PAD -> logits (B, T, vocab), equation (3)."""
        y = self.decoder(self.embedding(previous), previous_mask, memory, mask)
        return (y * self.config.d_model ** -0.5) @ self.embedding.weight.T

    def forward(self, ids: torch.Tensor, mask: torch.Tensor | None, labels: torch.Tensor,
                labels_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher forcing: the decoder reads PAD, y_1 .. y_(T-1) and scores y_1 .. y_T. labels (B, T),
        IGNORE where there is no target (read as PAD) -> logits (B, T, vocab)."""
        previous = torch.cat([torch.full_like(labels[:, :1], PAD), labels[:, :-1]], dim=1)  # shift right
        previous = previous.masked_fill(previous == IGNORE, PAD)
        return self.decode(previous, self.encode(ids, mask), mask, labels_mask)

    def loss(self, ids: torch.Tensor, mask: torch.Tensor | None, labels: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the output tokens (positions with label IGNORE left out)."""
        logits = self(ids, mask, labels)
        at_least_fp32 = torch.promote_types(logits.dtype, torch.float32)  # no bf16 softmax under autocast
        return F.cross_entropy(logits.flatten(0, 1).to(at_least_fp32), labels.flatten(), ignore_index=IGNORE)

    @torch.no_grad()
    def generate(self, ids: torch.Tensor, mask: torch.Tensor | None = None, max_new_tokens: int = 20) -> torch.Tensor:
        """Greedy decoding: (B, N) -> (B, <= max_new_tokens) output tokens; a row that has written EOS
        continues with PAD, and decoding stops when every row has. The encoder runs once; the decoder
        reruns on the growing output (a cache of past keys and values would save that)."""
        memory = self.encode(ids, mask)
        out = torch.full_like(ids[:, :1], PAD)  # the start token
        done = torch.zeros(len(ids), dtype=torch.bool, device=ids.device)
        for _ in range(max_new_tokens):
            best = self.decode(out, memory, mask)[:, -1].argmax(-1)
            best = best.masked_fill(done, PAD)
            out = torch.cat([out, best[:, None]], dim=1)
            done |= best == EOS
            if done.all():
                break
        return out[:, 1:]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ------------------------------------------------------------------ interop with Hugging Face
    @classmethod
    def from_hf(cls, model_or_path) -> T5:
        """Ours with the weights of a Hugging Face T5ForConditionalGeneration (an instance or a
        save_pretrained folder) of the original T5 (v1.0): ReLU, tied embeddings."""
        hf = interop.hf_model("T5ForConditionalGeneration", model_or_path)
        c = hf.config
        if c.feed_forward_proj != "relu" or not c.tie_word_embeddings:
            raise ValueError("only the original T5 converts: feed_forward_proj='relu', tie_word_embeddings=True")
        config = T5Config(vocab_size=c.vocab_size, d_model=c.d_model, d_kv=c.d_kv, d_ff=c.d_ff,
                          layers=c.num_layers, decoder_layers=c.num_decoder_layers, heads=c.num_heads,
                          buckets=c.relative_attention_num_buckets, max_distance=c.relative_attention_max_distance,
                          dropout=c.dropout_rate, eps=c.layer_norm_epsilon)
        weight = hf.get_parameter("shared.weight")
        model = cls(config).to(device=weight.device, dtype=weight.dtype)
        interop.copy_weights(model, hf, hf_names(config), into_ours=True)
        return model.train(hf.training)

    def to_hf(self):
        """A Hugging Face T5ForConditionalGeneration holding our weights."""
        transformers = interop.transformers()
        c = self.config
        hf_config = transformers.T5Config(
            vocab_size=c.vocab_size, d_model=c.d_model, d_kv=c.d_kv, d_ff=c.d_ff, num_layers=c.layers,
            num_decoder_layers=c.decoder_layers, num_heads=c.heads, relative_attention_num_buckets=c.buckets,
            relative_attention_max_distance=c.max_distance, dropout_rate=c.dropout, layer_norm_epsilon=c.eps,
            feed_forward_proj="relu", tie_word_embeddings=True, pad_token_id=PAD, eos_token_id=EOS,
            decoder_start_token_id=PAD)
        weight = self.embedding.weight
        hf = transformers.T5ForConditionalGeneration(hf_config).to(device=weight.device, dtype=weight.dtype)
        interop.copy_weights(self, hf, hf_names(c), into_ours=False)
        return hf.train(self.training)


def init_weights(module: nn.Module, config: T5Config) -> None:
    """T5's initialisation (Mesh TensorFlow's, as Hugging Face repeats it): each matrix with standard
    deviation 1/sqrt(fan-in), the query's with an extra 1/sqrt(d_kv) (the missing logit scale), the
    embedding with unit variance (equation (3) rescales the output), the norms at 1."""
    d, inner = config.d_model, config.heads * config.d_kv
    if isinstance(module, T5):
        nn.init.normal_(module.embedding.weight, std=1.0)
    elif isinstance(module, Attention):
        nn.init.normal_(module.q.weight, std=(d * config.d_kv) ** -0.5)
        nn.init.normal_(module.k.weight, std=d ** -0.5)
        nn.init.normal_(module.v.weight, std=d ** -0.5)
        nn.init.normal_(module.o.weight, std=inner ** -0.5)
    elif isinstance(module, FeedForward):
        nn.init.normal_(module.wi.weight, std=d ** -0.5)
        nn.init.normal_(module.wo.weight, std=config.d_ff ** -0.5)
    elif isinstance(module, RelativePositionBias):
        nn.init.normal_(module.table.weight, std=d ** -0.5)


def hf_names(config: T5Config) -> dict[str, str]:
    """Our parameter name -> Hugging Face T5ForConditionalGeneration's (whose encoder and decoder
    embeddings and LM head are all tied to `shared`)."""
    names = {"embedding.weight": "shared.weight"}
    for stack, count in (("encoder", config.layers), ("decoder", config.decoder_layers)):
        table = f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight"  # in the first layer
        names[f"{stack}.position_bias.table.weight"] = table
        names[f"{stack}.final_norm.weight"] = f"{stack}.final_layer_norm.weight"
        sublayers = [("self_attention", "SelfAttention")]
        if stack == "decoder":
            sublayers.append(("cross_attention", "EncDecAttention"))
        for i in range(count):
            ours, theirs = f"{stack}.layers.{i}", f"{stack}.block.{i}.layer"
            for j, (name, hf_name) in enumerate(sublayers):
                names[f"{ours}.{name}_norm.weight"] = f"{theirs}.{j}.layer_norm.weight"
                for w in "qkvo":
                    names[f"{ours}.{name}.{w}.weight"] = f"{theirs}.{j}.{hf_name}.{w}.weight"
            j = len(sublayers)
            names[f"{ours}.feed_forward_norm.weight"] = f"{theirs}.{j}.layer_norm.weight"
            names[f"{ours}.feed_forward.wi.weight"] = f"{theirs}.{j}.DenseReluDense.wi.weight"
            names[f"{ours}.feed_forward.wo.weight"] = f"{theirs}.{j}.DenseReluDense.wo.weight"
    return names


# ------------------------------------------------------------------------------ span corruption
def random_spans(length: int, noise_density: float, mean_span_length: float,
                 generator: torch.Generator | None = None, rows: int = 1) -> torch.Tensor:
    """Which of `length` tokens to drop in each of `rows` texts (a bool (rows, length) mask), in T5's
    way: n = round(length * noise_density) dropped tokens in s = round(n / mean_span_length) spans; the
    n dropped and the length - n kept tokens are each cut into s runs of random positive lengths, and
    the runs alternate, kept first, so a text never starts with a dropped span. All rows at once: drawn
    text by text, a pre-training batch cost a sixth of its training step here."""
    noise = min(max(round(length * noise_density), 1), length - 1)
    spans = max(round(noise / mean_span_length), 1)

    def cut(total: int) -> torch.Tensor:  # `total` into `spans` positive parts per row, uniformly at random
        # s - 1 distinct cut points out of 1 .. total - 1: the first s - 1 of a random permutation
        bars = torch.rand(rows, total - 1, generator=generator).argsort(1)[:, :spans - 1].sort(1).values + 1
        edges = torch.cat([torch.zeros(rows, 1, dtype=torch.long), bars, torch.full((rows, 1), total)], dim=1)
        return edges.diff(dim=1)  # (rows, spans)

    runs = torch.stack([cut(length - noise), cut(noise)], dim=2).flatten(1)  # kept_1, noise_1, kept_2, ...
    # the run each position falls in: how many runs end at or before it; odd runs are dropped
    run = torch.searchsorted(runs.cumsum(1), torch.arange(length).repeat(rows, 1), right=True)
    return run % 2 == 1


def corrupt_spans(tokens: torch.Tensor, dropped: torch.Tensor,
                  sentinels: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """tokens (T,), dropped (T,) bool -> (input, target), each ending with EOS as in T5. In the input each
    run of dropped tokens becomes one sentinel (sentinels[0] for the first run, sentinels[1] for the
    next, ...); the target lists every run after its sentinel and closes with the next sentinel."""
    inputs, target, run = [], [], 0
    previous = False  # was the token before dropped?
    for token, drop in zip(tokens.tolist(), dropped.tolist()):
        if drop and not previous:  # a run starts: its sentinel goes into both
            inputs.append(sentinels[run])
            target.append(sentinels[run])
            run += 1
        (target if drop else inputs).append(token)
        previous = drop
    return torch.tensor(inputs + [EOS]), torch.tensor(target + [sentinels[run], EOS])


def span_corruption(tokens: torch.Tensor, sentinels: list[int], noise_density: float = 0.15,
                    mean_span_length: float = 3.0, generator: torch.Generator | None = None):
    """T5's unsupervised objective for one text, tokens (T,) -> (input, target). With mean_span_length 1
    every dropped token is a span of its own: i.i.d. token masking in the sentinel format."""
    return corrupt_spans(tokens, random_spans(len(tokens), noise_density, mean_span_length, generator)[0], sentinels)
