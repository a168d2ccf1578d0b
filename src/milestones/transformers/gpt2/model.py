"""GPT-2: language models are unsupervised multitask learners (Radford et al., 2019).

A language model predicts the next token from the ones before it. GPT-2 asks how far that one
objective goes when the model is a large Transformer and the text is broad (WebText, 8 million web
pages): far enough that, prompted the right way, it answers questions, translates and summarises
with no task-specific training at all. The architecture is the Transformer's decoder alone
(../transformer), with a handful of changes that made deep stacks train well:

    x_0 = E[t_i] + P[i]                           token embedding + learned position embedding  (B, T, C)
    a_l = x_(l-1) + Attn_l(LN(x_(l-1)))           causal self-attention: position i sees j <= i
    x_l = a_l + MLP_l(LN(a_l)),  MLP(h) = GELU(h W_1 + b_1) W_2 + b_2,  W_1: C -> 4C
    logits_i = LN(x_L)_i E^T                      (B, T, V): the same E reads tokens in and writes them out
    loss = -(1/T) sum_i log softmax(logits_i)[t_(i+1)]

What changed from the Transformer of 2017:
  * decoder only: no encoder, no cross-attention; one stream of text, masked so it cannot peek ahead;
  * pre-LN: LayerNorm (../../optimization/layernorm) moves to the input of each sublayer, so the
    residual path x_0 -> x_L is a pure sum, and one more LayerNorm precedes the output;
  * positions are a learned table P (block_size, C), not sines; GELU (../../optimization/gelu), in
    its tanh approximation, replaces ReLU;
  * the residual projections (W^O of attention, W_2 of the MLP) start at std 0.02 / sqrt(2 L): the
    2L branches add to the residual stream, and scaling each keeps the sum's variance flat in depth;
  * tied embeddings (the output layer is E^T) and a byte-level BPE vocabulary (tokenizer.py).

Generation samples one token at a time. Position i's keys and values never change once computed,
so a KV cache keeps them: after the prompt, each new token costs one position's work, not T's.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from milestones.core import interop


@dataclass
class GPTConfig:
    """GPT-2 small (124M parameters) by default."""

    vocab_size: int = 50257  # 256 bytes + 50,000 merges + <|endoftext|>
    block_size: int = 1024  # the longest context, the size of the position table
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    embedding_dropout: float = 0.1  # Hugging Face's GPT2Config defaults
    attention_dropout: float = 0.1
    residual_dropout: float = 0.1
    layer_norm_eps: float = 1e-5


class KVCache:
    """Every layer's keys and values for the positions seen so far, allocated on first use for `size` positions."""

    def __init__(self, config: GPTConfig, size: int):
        self.n_layer, self.size = config.n_layer, size
        self.keys = self.values = None  # (L, B, H, size, D) once the first keys arrive
        self.length = 0  # positions stored; GPT.forward advances it after the last layer

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, H, T, D) after the cached positions -> every key and value so far (B, H, length + T, D)."""
        if self.keys is None:
            self.keys = k.new_zeros(self.n_layer, *k.shape[:2], self.size, k.shape[3])
            self.values = torch.zeros_like(self.keys)
        end = self.length + k.shape[2]
        self.keys[layer, :, :, self.length:end] = k
        self.values[layer, :, :, self.length:end] = v
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention over the positions up to each query's own."""

    def __init__(self, config: GPTConfig, layer: int):
        super().__init__()
        assert config.n_embd % config.n_head == 0, "n_embd must be a multiple of n_head"
        self.n_head, self.layer = config.n_head, layer
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd)  # W^Q, W^K, W^V side by side
        self.proj = nn.Linear(config.n_embd, config.n_embd)  # W^O
        self.attention_dropout = config.attention_dropout
        self.residual_dropout = nn.Dropout(config.residual_dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, cache: KVCache | None) -> torch.Tensor:
        """x (B, T, C), mask (T, S) or (B, 1, T, S), True where a query may look (None: plain causal) -> (B, T, C)."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)  # 3 x (B, H, T, D)
        if cache is not None:
            k, v = cache.append(self.layer, k, v)  # (B, H, S, D), S = cached + T
        # softmax(q k^T / sqrt(D) + mask) v, the fused kernel proven equal to our attention in test_transformer.py
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None,
                                           dropout_p=self.attention_dropout if self.training else 0.0)
        return self.residual_dropout(self.proj(y.transpose(1, 2).reshape(B, T, C)))  # heads side by side again


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.up = nn.Linear(config.n_embd, 4 * config.n_embd)  # W_1
        self.down = nn.Linear(4 * config.n_embd, config.n_embd)  # W_2
        self.dropout = nn.Dropout(config.residual_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # GPT-2's tanh form of GELU; F.gelu(approximate="tanh") is proven equal to ours in test_gelu.py
        return self.dropout(self.down(F.gelu(self.up(x), approximate="tanh")))


class Block(nn.Module):
    """One pre-LN layer: x + Attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, config: GPTConfig, layer: int):
        super().__init__()
        self.attention_norm = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.attention = CausalSelfAttention(config, layer)
        self.mlp_norm = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, cache: KVCache | None) -> torch.Tensor:
        x = x + self.attention(self.attention_norm(x), mask, cache)
        return x + self.mlp(self.mlp_norm(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.n_embd)  # E
        self.position_embedding = nn.Embedding(config.block_size, config.n_embd)  # P
        self.embedding_dropout = nn.Dropout(config.embedding_dropout)
        self.blocks = nn.ModuleList(Block(config, layer) for layer in range(config.n_layer))
        self.final_norm = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.token_embedding.weight  # tied: logits = h E^T
        self.apply(self._init_weights)
        for block in self.blocks:  # the 2L branches that add into the residual stream
            for projection in (block.attention.proj, block.mlp.down):
                nn.init.normal_(projection.weight, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor, attention_mask: torch.Tensor | None = None,
                cache: KVCache | None = None) -> torch.Tensor:
        """idx (B, T) token ids -> logits (B, T, V) of the token after each position.

        attention_mask (B, cached + T), 1 for tokens and 0 for padding, batches prompts of different
        lengths padded on the left: no token attends to padding, and tokens are numbered from the
        first real one, so each prompt's logits are those it gets alone. `cache` holds the keys and
        values of earlier positions; this call appends T more.
        """
        B, T = idx.shape
        past = cache.length if cache is not None else 0
        if past + T > self.config.block_size:
            raise ValueError(f"{past + T} positions, but the model has only {self.config.block_size}")
        query = torch.arange(past, past + T, device=idx.device)  # each new token's index in the sequence
        if attention_mask is None:
            positions = query  # (T,)
            mask = None if past == 0 else torch.arange(past + T, device=idx.device) <= query[:, None]  # (T, S)
        else:
            real = attention_mask.bool()  # (B, S)
            positions = (real.long().cumsum(-1) - 1).clamp(min=0)[:, past:]  # (B, T), padding at 0
            key = torch.arange(past + T, device=idx.device)
            mask = (key <= query[:, None]) & real[:, None, :]  # (B, T, S): causal, and never a pad key
            mask = (mask | (key == query[:, None]))[:, None]  # a pad query sees itself, so no row is empty
        x = self.embedding_dropout(self.token_embedding(idx) + self.position_embedding(positions))  # (B, T, C)
        for block in self.blocks:
            x = block(x, mask, cache)
        if cache is not None:
            cache.length += T
        return self.lm_head(self.final_norm(x))  # (B, T, V)

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, greedy: bool = False, use_cache: bool = True,
                 attention_mask: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
        """Continue the prompts idx (B, T), yielding each new token (B,) as soon as it is chosen.

        Each token is drawn from softmax(logits / temperature), restricted to the top_k likeliest tokens
        and to the smallest set of them whose probability reaches top_p; greedy takes the likeliest.
        With use_cache the prompt runs once and each step feeds one token; without, each step reruns
        the whole sequence. Past block_size tokens both slide a window over the last block_size. Call
        `eval()` first: dropout stays on in training mode.
        """
        size = self.config.block_size
        cache = KVCache(self.config, min(idx.shape[1] + max_new_tokens, size)) if use_cache else None
        tokens, mask, new = idx, attention_mask, idx  # `new`: what the cache has not seen yet
        for _ in range(max_new_tokens):
            if cache is not None and cache.length + new.shape[1] > cache.size:
                cache = None  # the window is full and must slide: positions shift, so cached keys are stale
            if cache is None:
                logits = self(tokens[:, -size:], None if mask is None else mask[:, -size:])
            else:
                logits = self(new, mask, cache)
            token = sample_next(logits[:, -1], temperature, top_k, top_p, greedy, generator)  # (B,)
            yield token
            new = token[:, None]
            tokens = torch.cat([tokens, new], dim=1)
            if mask is not None:
                mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)

    def num_parameters(self) -> int:
        """Every parameter once (the tied E counts once)."""
        return sum(p.numel() for p in self.parameters())

    def estimate_flops_per_token(self, context: int | None = None) -> int:
        """Training FLOPs per token (forward and backward) at a context of T positions: 6N + 12 L H Q T.

        N counts the weights that multiply (every parameter but the position table, a lookup; E counts,
        as the output layer). A multiply-add is 2 FLOPs, so the forward pass costs 2N per token and the
        backward twice that (gradients for the activations and for the weights): 6N. Attention adds its
        own products, q k^T and a v, each 2 Q T per head per layer in the forward pass: 4 L H Q T, and
        3x with the backward, 12 L H Q T (the causal mask's saved half is not subtracted).
        """
        c = self.config
        N = self.num_parameters() - self.position_embedding.weight.numel()
        return 6 * N + 12 * c.n_layer * c.n_head * (c.n_embd // c.n_head) * (context or c.block_size)

    # ------------------------------------------------------------------ interop with Hugging Face
    @classmethod
    def from_hf(cls, model_or_path) -> GPT:
        """Our GPT with the weights of a Hugging Face GPT2LMHeadModel (an instance, or a save_pretrained folder)."""
        hf = interop.hf_model("GPT2LMHeadModel", model_or_path)
        c = hf.config
        if (c.activation_function not in ("gelu_new", "gelu_pytorch_tanh") or c.n_inner not in (None, 4 * c.n_embd)
                or not c.scale_attn_weights or c.scale_attn_by_inverse_layer_idx or not c.tie_word_embeddings):
            raise ValueError("only GPT-2's own architecture converts: tanh GELU, 4x MLP, 1/sqrt(D) scores, tied E")
        config = GPTConfig(vocab_size=c.vocab_size, block_size=c.n_positions, n_layer=c.n_layer, n_head=c.n_head,
                           n_embd=c.n_embd, embedding_dropout=c.embd_pdrop, attention_dropout=c.attn_pdrop,
                           residual_dropout=c.resid_pdrop, layer_norm_eps=c.layer_norm_epsilon)
        weight = hf.get_parameter("transformer.wte.weight")
        model = cls(config).to(device=weight.device, dtype=weight.dtype)
        interop.copy_weights(model, hf, hf_names(config.n_layer), into_ours=True, transposed=_conv1d)
        return model.train(hf.training)

    def to_hf(self):
        """A Hugging Face GPT2LMHeadModel holding our weights."""
        transformers = interop.transformers()
        c = self.config
        hf_config = transformers.GPT2Config(
            vocab_size=c.vocab_size, n_positions=c.block_size, n_layer=c.n_layer, n_head=c.n_head, n_embd=c.n_embd,
            n_inner=None, activation_function="gelu_new", embd_pdrop=c.embedding_dropout,
            attn_pdrop=c.attention_dropout, resid_pdrop=c.residual_dropout, layer_norm_epsilon=c.layer_norm_eps,
            tie_word_embeddings=True, bos_token_id=c.vocab_size - 1, eos_token_id=c.vocab_size - 1)  # <|endoftext|>
        weight = self.token_embedding.weight
        hf = transformers.GPT2LMHeadModel(hf_config).to(device=weight.device, dtype=weight.dtype)
        interop.copy_weights(self, hf, hf_names(c.n_layer), into_ours=False, transposed=_conv1d)
        return hf.train(self.training)


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                greedy: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
    """The next token (B,) from its logits (B, V)."""
    if greedy or temperature == 0:
        return logits.argmax(-1)
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32)) / temperature  # no bf16 softmax
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, -math.inf)
    if top_p is not None:
        ranked, order = logits.sort(dim=-1, descending=True)
        probs = ranked.softmax(-1)
        above = probs.cumsum(-1) - probs  # the probability of the tokens ranked above each one
        ranked = ranked.masked_fill(above >= top_p, -math.inf)  # the likeliest token always stays
        logits = logits.scatter(-1, order, ranked)
    return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(-1)


def hf_names(n_layer: int) -> dict[str, str]:
    """Our parameter name -> Hugging Face GPT2LMHeadModel's (both tie lm_head.weight to the token embedding)."""
    names = {"token_embedding.weight": "transformer.wte.weight", "position_embedding.weight": "transformer.wpe.weight",
             "final_norm.weight": "transformer.ln_f.weight", "final_norm.bias": "transformer.ln_f.bias"}
    per_block = {"attention_norm": "ln_1", "attention.qkv": "attn.c_attn", "attention.proj": "attn.c_proj",
                 "mlp_norm": "ln_2", "mlp.up": "mlp.c_fc", "mlp.down": "mlp.c_proj"}
    for layer in range(n_layer):
        for ours, theirs in per_block.items():
            for kind in ("weight", "bias"):
                names[f"blocks.{layer}.{ours}.{kind}"] = f"transformer.h.{layer}.{theirs}.{kind}"
    return names


def _conv1d(hf_name: str) -> bool:
    """HF's Conv1D stores a linear layer's weight as (in, out), the transpose of nn.Linear's."""
    return hf_name.endswith(".weight") and (".attn.c_" in hf_name or ".mlp.c_" in hf_name)
