"""GPT-3: language models are few-shot learners (Brown et al., 2020).

GPT-3 is GPT-2 (../gpt2/model.py) made a hundred times larger (175B parameters, 96 layers, width
12,288, a context of 2,048 tokens) and trained on 300B tokens. The paper's news is what the size
buys: shown a few examples of a task in its prompt, the model does the task, with no gradient step.
The architecture changes in one respect only: "alternating dense and locally banded sparse attention
patterns in the layers of the transformer, similar to the Sparse Transformer" (Section 2.1). Every
other layer attends only to a band of the last w positions:

    dense layer:   query i sees every key j with          j <= i     O(T^2) scores
    banded layer:  query i sees every key j with  i - w < j <= i     O(T w) scores

Stacked, the two kinds still connect every position to every earlier one (a dense layer above a
banded one reaches everything), while half of the layers cost O(T w) instead of O(T^2). The paper
does not say which layers carry the band or how wide it is; here the band sits on the even layers
(0, 2, 4, ...), so that the first layer is local (a copying circuit's first step, looking at the
neighbouring token, is local) and the last layer of an even stack is dense.

How the band is computed in O(T w): cut the sequence into blocks of w positions. The keys a query in
block b may see lie in block b or block b - 1, since i - w < j <= i spans less than two blocks.
So each block of w queries attends to the 2w keys of its own and the previous block:

    scores_b = q_b [k_(b-1); k_b]^T / sqrt(D)      (w, 2w) per block, T / w blocks: 2 T w scores
    query a of a block (i = b w + a), key c of the 2w (j = (b - 1) w + c):  i - j = w + a - c,
    so the band i - w < j <= i is  a < c <= a + w,  the same (w, 2w) mask for every block;
    block 0 has no previous block: its first w keys are padding, masked out.

The sequence is padded with zeros to a whole number of blocks; padded keys lie after every real
query (masked as the future) and padded queries' outputs are dropped. The blocks pay off on long
sequences (at T = 1,024, w = 64 the banded layer runs 1.5x faster than the dense causal kernel, forward
and backward, on a CPU thread); on a handful of blocks their bookkeeping costs more than it saves, and
a banded layer uses the dense kernel with the band as its mask, which computes the same numbers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from milestones.transformers.gpt2.model import GPT, CausalSelfAttention, GPTConfig, KVCache

MIN_BLOCKS = 8  # below this many blocks of w positions, the dense kernel with a band mask is faster


@dataclass
class GPT3Config(GPTConfig):
    """GPT-2's configuration, plus the band: None keeps every layer dense (exactly GPT-2's model)."""

    band: int | None = None  # w: a banded layer's query i sees keys i - w < j <= i (GPT-3 does not publish w)

    def is_banded(self, layer: int) -> bool:
        return self.band is not None and layer % 2 == 0  # layers 0, 2, 4, ...: alternating, local first


def band_mask(queries: int, keys: int, band: int, device=None) -> torch.Tensor:
    """(queries, keys) booleans, True where i - band < j <= i; the queries are the last `queries` of the
    `keys` positions (a KV cache holds the earlier ones)."""
    i = torch.arange(keys - queries, keys, device=device)[:, None]
    j = torch.arange(keys, device=device)
    return (j <= i) & (j > i - band)


def banded_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, band: int,
                     dropout_p: float = 0.0) -> torch.Tensor:
    """softmax(q k^T / sqrt(D) + band mask) v for q, k, v (B, H, T, D) -> (B, H, T, D), in O(T band) work."""
    B, H, T, D = q.shape
    w = band
    n = -(-T // w)  # blocks
    pad = n * w - T

    def blocks(x: torch.Tensor) -> torch.Tensor:  # (B, H, T, D) -> (B, H, n, w, D), zeros after position T
        return F.pad(x, (0, 0, 0, pad)).view(B, H, n, w, D)

    def with_previous(x: torch.Tensor) -> torch.Tensor:  # (B, H, n, w, D) -> (B, H, n, 2w, D): [block b-1; block b]
        previous = F.pad(x, (0, 0, 0, 0, 1, 0))[:, :, :-1]  # block b-1 in slot b; zeros before block 0
        return torch.cat([previous, x], dim=3)

    qb, kb, vb = blocks(q), with_previous(blocks(k)), with_previous(blocks(v))
    a = torch.arange(w, device=q.device)[:, None]  # query a within its block
    c = torch.arange(2 * w, device=q.device)  # key c within [previous; own]
    inside = (c > a) & (c <= a + w)  # (w, 2w): i - w < j <= i
    first = inside & (c >= w)  # block 0: the previous block is padding
    mask = torch.cat([first[None], inside.expand(n - 1, w, 2 * w)])  # (n, w, 2w)
    # the fused kernel, proven equal to the transformer's written-out attention in test_transformer.py
    y = F.scaled_dot_product_attention(qb, kb, vb, attn_mask=mask, dropout_p=dropout_p)  # (B, H, n, w, D)
    return y.reshape(B, H, n * w, D)[:, :, :T]


class BandedSelfAttention(CausalSelfAttention):
    """GPT-2's causal self-attention, with each query restricted to the last `band` positions."""

    def __init__(self, config: GPT3Config, layer: int):
        super().__init__(config, layer)
        self.band = config.band

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, cache: KVCache | None) -> torch.Tensor:
        B, T, C = x.shape
        if mask is not None or cache is not None or T < MIN_BLOCKS * self.band:  # the dense kernel, band as its mask
            keys = T + (cache.length if cache is not None else 0)  # padding and cached keys combine with the band
            band = band_mask(T, keys, self.band, x.device)  # (T, S)
            return super().forward(x, band if mask is None else mask & band, cache)
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)  # 3 x (B, H, T, D)
        y = banded_attention(q, k, v, self.band, self.attention_dropout if self.training else 0.0)
        return self.residual_dropout(self.proj(y.transpose(1, 2).reshape(B, T, C)))


class GPT3(GPT):
    """GPT-2's model with banded attention on alternate layers (`GPT3Config.band`); with band None it is
    GPT-2's model exactly: the same modules, the same initial weights for the same seed."""

    def __init__(self, config: GPT3Config | GPTConfig):
        if not isinstance(config, GPT3Config):  # a GPT-2 configuration (from_hf gives one): no band
            config = GPT3Config(**dataclasses.asdict(config))
        if config.band is not None and config.band < 1:
            raise ValueError(f"the band must be at least 1 position (the query itself), got {config.band}")
        super().__init__(config)
        for layer, block in enumerate(self.blocks):
            if config.is_banded(layer):
                banded = BandedSelfAttention(config, layer)
                banded.load_state_dict(block.attention.state_dict())  # keep GPT-2's initial weights
                block.attention = banded

    def to_hf(self):
        """Hugging Face's GPT2LMHeadModel with our weights, for a model without the band (HF has none)."""
        if self.config.band is not None:
            raise ValueError("GPT2LMHeadModel attends densely on every layer: only a GPT3 with band=None converts")
        return super().to_hf()

    def estimate_flops_per_token(self, context: int | None = None) -> int:
        """GPT-2's 6N + 12 L H Q T, with a banded layer's scores costing min(T, 2w) keys per query, not T."""
        c = self.config
        T = context or c.block_size
        dense = super().estimate_flops_per_token(T)
        saved = sum(T - min(T, 2 * c.band) for layer in range(c.n_layer) if c.is_banded(layer))
        return dense - 12 * c.n_head * (c.n_embd // c.n_head) * saved


def attention_pattern(config: GPT3Config, length: int) -> list[torch.Tensor]:
    """Each layer's (length, length) mask, True where query i may see key j: causal, and banded on the
    banded layers. What the model computes, written out densely (for tests and plots)."""
    causal = band_mask(length, length, length)
    return [band_mask(length, length, config.band) if config.is_banded(layer) else causal
            for layer in range(config.n_layer)]
