"""RoBERTa: a robustly optimized BERT pre-training approach (Liu et al., 2019).

RoBERTa is BERT (../bert) with the network untouched and the training redone. What changed lives
mostly outside this file: ten times more text, far larger batches, many more steps, whole
stretches of running text as input in place of two segments, a fresh mask every time a sequence is
drawn (dynamic masking), and no next-sentence prediction. In the model that leaves three deltas:

  * no NSP head and, in the masked-LM model, no pooler: nothing is trained on the [CLS] vector;
  * one segment embedding (there is only ever one segment), kept so checkpoints line up with BERT's;
  * GPT-2's byte-level BPE (../gpt2/tokenizer.py) in place of WordPiece, with fairseq's positions:
    the padding token (id 1, `pad_id`) owns position id 1, and a real token's position id is
    pad_id + (how many real tokens up to and including it):

        mask_i = [t_i != pad]          p_i = pad_id + mask_i * sum_(j <= i) mask_j             (B, T)

    so the first real token sits at position 2, padding anywhere in the row (left, right, in the
    middle) does not shift the real tokens' positions, and 512 real tokens need 514 position rows.

    x_0 = LN(E_token[t] + E_position[p] + E_segment[0])                  (B, T, H), then dropout
    x_l = BERT's post-LN layer (attention, then GELU feed-forward)       ../bert/model.py `Layer`
    MLM logits_i = LN(GELU(W_d x_L[i] + b_d)) E_token^T + b_vocab        the decoder is the token embedding

Dynamic masking is BERT's 80/10/10 `mask_tokens`, called on every batch instead of once per
sequence; it is the training loop's business (pretraining.py), not the model's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from milestones.core import interop
from milestones.transformers.bert.model import (
    IGNORE,
    BertConfig,
    Embeddings,
    Layer,
    config_from_hf,
    config_to_hf,
    init_weights,
)


@dataclass
class RobertaConfig(BertConfig):
    """RoBERTa-base by default (125M parameters): BERT-base with GPT-2-style BPE and fairseq positions."""

    vocab_size: int = 50265  # byte-level BPE: 50K merges + the 4 specials <s> <pad> </s> <unk> + <mask>
    max_positions: int = 514  # 512 tokens after the padding offset
    segments: int = 1
    layer_norm_eps: float = 1e-5
    pad_id: int = 1  # <pad>; also the position id of every padding token


def position_ids(ids: torch.Tensor, pad_id: int) -> torch.Tensor:
    """(B, T) token ids -> (B, T) position ids: pad_id at padding, pad_id + 1, pad_id + 2, ... at real tokens."""
    real = (ids != pad_id).long()
    return real.cumsum(1) * real + pad_id


class RobertaEmbeddings(Embeddings):
    """BERT's embeddings (token, position, segment, LayerNorm, dropout), with positions counted past padding.
    The padding rows of the token and position tables get no gradient (nn.Embedding's padding_idx)."""

    def __init__(self, config: RobertaConfig):
        super().__init__(config)
        self.token.padding_idx = self.position.padding_idx = config.pad_id

    def forward(self, ids: torch.Tensor, segments: torch.Tensor, pad_id: int) -> torch.Tensor:
        positions = position_ids(ids, pad_id)
        return self.dropout(self.norm(self.token(ids) + self.position(positions) + self.segment(segments)))


class Roberta(nn.Module):
    """The encoder: token ids -> one vector per position (no pooler: nothing uses [CLS] in pre-training)."""

    def __init__(self, config: RobertaConfig):
        super().__init__()
        self.config = config
        self.embeddings = RobertaEmbeddings(config)
        self.layers = nn.ModuleList(Layer(config) for _ in range(config.layers))
        self.apply(init_weights)

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """ids (B, T); attention_mask (B, T) 1 for tokens, 0 for padding (default: ids != pad_id) -> (B, T, H)."""
        if attention_mask is None:
            attention_mask = (ids != self.config.pad_id).long()
        padding = attention_mask == 0
        x = self.embeddings(ids, torch.zeros_like(ids), self.config.pad_id)
        for layer in self.layers:
            x = layer(x, padding)
        return x


class RobertaForMaskedLM(nn.Module):
    """The encoder and its one pre-training head: MLM logits (B, T, V)."""

    def __init__(self, config: RobertaConfig):
        super().__init__()
        self.config = config
        self.roberta = Roberta(config)
        self.dense = nn.Linear(config.hidden, config.hidden)
        self.norm = nn.LayerNorm(config.hidden, eps=config.layer_norm_eps)
        self.vocab_bias = nn.Parameter(torch.zeros(config.vocab_size))
        init_weights(self.dense)

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.mlm_logits(self.roberta(ids, attention_mask))

    def mlm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Hidden states (..., H) -> vocabulary logits (..., V); the output matrix is the input embedding."""
        h = self.norm(F.gelu(self.dense(hidden)))
        return h @ self.roberta.embeddings.token.weight.T + self.vocab_bias

    def loss(self, ids: torch.Tensor, attention_mask: torch.Tensor | None, mlm_targets: torch.Tensor) -> torch.Tensor:
        """The pre-training loss: MLM cross-entropy over the picked positions, and nothing else (no NSP).
        As in BERT's loss, only the picked positions go through the vocabulary projection."""
        hidden = self.roberta(ids, attention_mask)
        picked = mlm_targets != IGNORE
        logits = self.mlm_logits(hidden[picked])
        at_least_fp32 = torch.promote_types(logits.dtype, torch.float32)
        return F.cross_entropy(logits.to(at_least_fp32), mlm_targets[picked])

    # ------------------------------------------------------------------ interop with Hugging Face
    @classmethod
    def from_hf(cls, model_or_path) -> RobertaForMaskedLM:
        """Ours with the weights of a Hugging Face RobertaForMaskedLM (an instance or a save_pretrained folder)."""
        hf = interop.hf_model("RobertaForMaskedLM", model_or_path)
        c = hf.config
        if c.hidden_act != "gelu" or getattr(c, "position_embedding_type", "absolute") != "absolute":
            raise ValueError("only RoBERTa's own architecture converts: exact GELU, absolute positions")
        config = RobertaConfig(**config_from_hf(c), pad_id=c.pad_token_id)
        weight = hf.get_parameter("roberta.embeddings.word_embeddings.weight")
        model = cls(config).to(device=weight.device, dtype=weight.dtype)
        interop.copy_weights(model, hf, hf_names(config.layers), into_ours=True)
        return model.train(hf.training)

    def to_hf(self):
        """A Hugging Face RobertaForMaskedLM holding our weights (attention dropout 0, which ours lacks)."""
        transformers = interop.transformers()
        c = self.config
        hf_config = transformers.RobertaConfig(**config_to_hf(c), pad_token_id=c.pad_id)
        weight = self.roberta.embeddings.token.weight
        hf = transformers.RobertaForMaskedLM(hf_config).to(device=weight.device, dtype=weight.dtype)
        interop.copy_weights(self, hf, hf_names(c.layers), into_ours=False)
        return hf.train(self.training)


def hf_names(layers: int) -> dict[str, str]:
    """Our parameter name -> Hugging Face RobertaForMaskedLM's (lm_head.decoder is tied to the token embedding)."""
    names = {"roberta.embeddings.token.weight": "roberta.embeddings.word_embeddings.weight",
             "roberta.embeddings.position.weight": "roberta.embeddings.position_embeddings.weight",
             "roberta.embeddings.segment.weight": "roberta.embeddings.token_type_embeddings.weight",
             "roberta.embeddings.norm.weight": "roberta.embeddings.LayerNorm.weight",
             "roberta.embeddings.norm.bias": "roberta.embeddings.LayerNorm.bias",
             "dense.weight": "lm_head.dense.weight", "dense.bias": "lm_head.dense.bias",
             "norm.weight": "lm_head.layer_norm.weight", "norm.bias": "lm_head.layer_norm.bias",
             "vocab_bias": "lm_head.bias"}
    per_layer = {"attention.query": "attention.self.query", "attention.key": "attention.self.key",
                 "attention.value": "attention.self.value", "attention.out": "attention.output.dense",
                 "attention_norm": "attention.output.LayerNorm", "up": "intermediate.dense", "down": "output.dense",
                 "feed_forward_norm": "output.LayerNorm"}
    for layer in range(layers):
        for ours, theirs in per_layer.items():
            for kind in ("weight", "bias"):
                names[f"roberta.layers.{layer}.{ours}.{kind}"] = f"roberta.encoder.layer.{layer}.{theirs}.{kind}"
    return names
