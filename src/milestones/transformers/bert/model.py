"""BERT: pre-training of deep bidirectional Transformers for language understanding (Devlin et al., 2018).

GPT (../gpt2) reads left to right, so the representation of a word knows only what came before it.
BERT is the Transformer's encoder (../transformer), where every word attends to every other, both
sides at once. A bidirectional model cannot be trained to predict the next word (each position
would see the answer), so BERT is trained on two other tasks:

  * masked language modelling (MLM): pick 15% of the positions; of those, replace 80% with [MASK],
    10% with a random token and leave 10% unchanged; predict the original token at each picked
    position. (Always [MASK] would teach the model that real inputs never need predicting, yet
    fine-tuning never shows it a [MASK]; the random 10% keeps every position's representation
    honest, the unchanged 10% ties the prediction to the word actually seen.)
  * next-sentence prediction (NSP): the input is two segments A and B, [CLS] A [SEP] B [SEP]; half
    the time B followed A in the text, half the time it is a random segment; predict which, from
    the [CLS] position.

    x_0 = LN(E_token[t] + E_position[i] + E_segment[s])                   (B, T, H), then dropout
    a_l = LN(x_(l-1) + Drop(MultiHeadAttention(x_(l-1))))                 post-LN, as in the Transformer
    x_l = LN(a_l + Drop(W_2 GELU(W_1 a_l + b_1) + b_2))                    GELU with erf (../../optimization/gelu)
    pooled = tanh(W_p x_L[CLS] + b_p)                                      the sentence vector: NSP, classification
    MLM logits_i = LN(GELU(W_t x_L[i] + b_t)) E_token^T + b_vocab          the output reuses the input embedding

Fine-tuning puts one linear layer on `pooled` (a class per sequence) or on each position (a label
per token) and trains everything on the task's labels. The attention is the Transformer's
`MultiHeadAttention`, unchanged. One detail of Google's code is left out: dropout on the attention
probabilities (we drop only the sublayers' outputs and the embeddings).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from milestones.core import interop
from milestones.transformers.transformer.model import MultiHeadAttention

IGNORE = -100  # the MLM target of a position that was not picked (F.cross_entropy's ignore_index)


@dataclass
class BertConfig:
    """BERT-base by default (110M parameters)."""

    vocab_size: int = 30522  # WordPiece (the [PAD] [UNK] [CLS] [SEP] [MASK] tokens included)
    max_positions: int = 512
    segments: int = 2  # sentence A and sentence B
    hidden: int = 768
    layers: int = 12
    heads: int = 12
    intermediate: int = 3072
    dropout: float = 0.1
    layer_norm_eps: float = 1e-12


class Embeddings(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.token = nn.Embedding(config.vocab_size, config.hidden)
        self.position = nn.Embedding(config.max_positions, config.hidden)
        self.segment = nn.Embedding(config.segments, config.hidden)
        self.norm = nn.LayerNorm(config.hidden, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, ids: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        return self.dropout(self.norm(self.token(ids) + self.position(positions) + self.segment(segments)))


class Layer(nn.Module):
    """One post-LN encoder layer: the Transformer's, with GELU in the feed-forward network."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = MultiHeadAttention(config.hidden, config.heads)
        self.attention_norm = nn.LayerNorm(config.hidden, eps=config.layer_norm_eps)
        self.up = nn.Linear(config.hidden, config.intermediate)  # W_1
        self.down = nn.Linear(config.intermediate, config.hidden)  # W_2
        self.feed_forward_norm = nn.LayerNorm(config.hidden, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, padding: torch.Tensor | None, causal: bool = False) -> torch.Tensor:
        x = self.attention_norm(x + self.dropout(self.attention(x, x, x, key_padding=padding, causal=causal)))
        return self.feed_forward_norm(x + self.dropout(self.down(F.gelu(self.up(x)))))


class Bert(nn.Module):
    """The encoder: token ids -> one vector per position, and the pooled [CLS] vector."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.layers = nn.ModuleList(Layer(config) for _ in range(config.layers))
        self.pool = nn.Linear(config.hidden, config.hidden)
        self.apply(init_weights)

    def forward(self, ids: torch.Tensor, segments: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, causal: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """ids (B, T); segments (B, T) 0 for sentence A, 1 for B; attention_mask (B, T) 1 for tokens,
        0 for padding (no position attends to padding) -> hidden states (B, T, H), pooled (B, H).

        `causal` hides every later position from each one: the same network as a left-to-right model
        (the baseline of the paper's Table 5, "LTR"), whose position i knows only tokens 0..i.
        """
        segments = torch.zeros_like(ids) if segments is None else segments
        padding = None if attention_mask is None else attention_mask == 0
        x = self.embeddings(ids, segments)
        for layer in self.layers:
            x = layer(x, padding, causal)
        return x, torch.tanh(self.pool(x[:, 0]))  # position 0 holds [CLS]


class BertForPreTraining(nn.Module):
    """The encoder with its two pre-training heads: MLM logits (B, T, V) and NSP logits (B, 2)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = Bert(config)
        self.transform = nn.Linear(config.hidden, config.hidden)
        self.transform_norm = nn.LayerNorm(config.hidden, eps=config.layer_norm_eps)
        self.vocab_bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.next_sentence = nn.Linear(config.hidden, 2)
        init_weights(self.transform)
        init_weights(self.next_sentence)

    def forward(self, ids: torch.Tensor, segments: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, causal: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        hidden, pooled = self.bert(ids, segments, attention_mask, causal)
        return self.mlm_logits(hidden), self.next_sentence(pooled)

    def mlm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Hidden states (..., H) -> vocabulary logits (..., V); the output matrix is the input embedding."""
        h = self.transform_norm(F.gelu(self.transform(hidden)))
        return h @ self.bert.embeddings.token.weight.T + self.vocab_bias

    def loss(self, ids, segments, attention_mask, mlm_targets, is_next) -> torch.Tensor:
        """Pre-training loss: MLM cross-entropy over the picked positions + NSP cross-entropy.

        Only the picked positions (about 15%) go through the vocabulary projection, the largest
        matrix product of a small BERT; the others have no MLM target.
        """
        hidden, pooled = self.bert(ids, segments, attention_mask)
        picked = mlm_targets != IGNORE
        mlm, nsp = self.mlm_logits(hidden[picked]), self.next_sentence(pooled)
        at_least_fp32 = torch.promote_types(mlm.dtype, torch.float32)  # no bf16 softmax under autocast
        return (F.cross_entropy(mlm.to(at_least_fp32), mlm_targets[picked])
                + F.cross_entropy(nsp.to(at_least_fp32), is_next.long()))

    # ------------------------------------------------------------------ interop with Hugging Face
    @classmethod
    def from_hf(cls, model_or_path) -> BertForPreTraining:
        """Ours with the weights of a Hugging Face BertForPreTraining (an instance or a save_pretrained folder)."""
        hf = interop.hf_model("BertForPreTraining", model_or_path)
        c = hf.config
        if c.hidden_act != "gelu" or getattr(c, "position_embedding_type", "absolute") != "absolute":
            raise ValueError("only BERT's own architecture converts: exact GELU, absolute positions")
        config = BertConfig(**config_from_hf(c))
        weight = hf.get_parameter("bert.embeddings.word_embeddings.weight")
        model = cls(config).to(device=weight.device, dtype=weight.dtype)
        interop.copy_weights(model, hf, hf_names(config.layers), into_ours=True)
        return model.train(hf.training)

    def to_hf(self):
        """A Hugging Face BertForPreTraining holding our weights (attention dropout 0, which ours lacks)."""
        transformers = interop.transformers()
        c = self.config
        hf_config = transformers.BertConfig(**config_to_hf(c))
        weight = self.bert.embeddings.token.weight
        hf = transformers.BertForPreTraining(hf_config).to(device=weight.device, dtype=weight.dtype)
        interop.copy_weights(self, hf, hf_names(c.layers), into_ours=False)
        return hf.train(self.training)


def config_from_hf(c) -> dict:
    """Our config's fields from a Hugging Face BertConfig (or RobertaConfig, which has the same names)."""
    return dict(vocab_size=c.vocab_size, max_positions=c.max_position_embeddings, segments=c.type_vocab_size,
                hidden=c.hidden_size, layers=c.num_hidden_layers, heads=c.num_attention_heads,
                intermediate=c.intermediate_size, dropout=c.hidden_dropout_prob, layer_norm_eps=c.layer_norm_eps)


def config_to_hf(c: BertConfig) -> dict:
    """The arguments of a Hugging Face BertConfig (or RobertaConfig) for ours (attention dropout 0: ours has none)."""
    return dict(vocab_size=c.vocab_size, hidden_size=c.hidden, num_hidden_layers=c.layers, num_attention_heads=c.heads,
                intermediate_size=c.intermediate, hidden_act="gelu", hidden_dropout_prob=c.dropout,
                attention_probs_dropout_prob=0.0, max_position_embeddings=c.max_positions, type_vocab_size=c.segments,
                layer_norm_eps=c.layer_norm_eps, tie_word_embeddings=True)


def init_weights(module: nn.Module) -> None:
    """BERT's initialisation: normal(0, 0.02) weights, zero biases; LayerNorm starts as the identity."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


def mask_tokens(ids: torch.Tensor, maskable: torch.Tensor, mask_id: int, vocab_size: int, rate: float = 0.15,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's 80/10/10 rule -> (the corrupted ids, the MLM targets: the original id where picked, else IGNORE).

    `maskable` (B, T) is False where a position may never be picked ([CLS], [SEP], padding). Each
    maskable position is picked with probability `rate`; a picked one becomes [MASK] with
    probability 0.8, a uniformly random token with 0.1, and stays itself with 0.1.
    """
    u = torch.rand(ids.shape, generator=generator, device=ids.device)
    picked = (torch.rand(ids.shape, generator=generator, device=ids.device) < rate) & maskable
    corrupted = torch.where(picked & (u < 0.8), mask_id, ids)
    random_tokens = torch.randint(vocab_size, ids.shape, generator=generator, device=ids.device)
    corrupted = torch.where(picked & (u >= 0.8) & (u < 0.9), random_tokens, corrupted)
    return corrupted, torch.where(picked, ids, IGNORE)


def hf_names(layers: int) -> dict[str, str]:
    """Our parameter name -> Hugging Face BertForPreTraining's (the MLM decoder is tied to the token embedding)."""
    names = {"bert.embeddings.token.weight": "bert.embeddings.word_embeddings.weight",
             "bert.embeddings.position.weight": "bert.embeddings.position_embeddings.weight",
             "bert.embeddings.segment.weight": "bert.embeddings.token_type_embeddings.weight",
             "bert.embeddings.norm.weight": "bert.embeddings.LayerNorm.weight",
             "bert.embeddings.norm.bias": "bert.embeddings.LayerNorm.bias",
             "bert.pool.weight": "bert.pooler.dense.weight", "bert.pool.bias": "bert.pooler.dense.bias",
             "transform.weight": "cls.predictions.transform.dense.weight",
             "transform.bias": "cls.predictions.transform.dense.bias",
             "transform_norm.weight": "cls.predictions.transform.LayerNorm.weight",
             "transform_norm.bias": "cls.predictions.transform.LayerNorm.bias",
             "vocab_bias": "cls.predictions.bias",
             "next_sentence.weight": "cls.seq_relationship.weight", "next_sentence.bias": "cls.seq_relationship.bias"}
    per_layer = {"attention.query": "attention.self.query", "attention.key": "attention.self.key",
                 "attention.value": "attention.self.value", "attention.out": "attention.output.dense",
                 "attention_norm": "attention.output.LayerNorm", "up": "intermediate.dense", "down": "output.dense",
                 "feed_forward_norm": "output.LayerNorm"}
    for layer in range(layers):
        for ours, theirs in per_layer.items():
            for kind in ("weight", "bias"):
                names[f"bert.layers.{layer}.{ours}.{kind}"] = f"bert.encoder.layer.{layer}.{theirs}.{kind}"
    return names
