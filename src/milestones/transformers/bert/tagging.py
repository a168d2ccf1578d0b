"""Word-sense tagging, the labelled task of BERT's experiments (and RoBERTa's): fine-tune an encoder on a
few labelled windows of the toy language (language.py) and score it on windows of a fresh story.

For each noun of a window, which of the four classes it means in its sentence. A window starts at a
sentence start, so its nouns alternate subject, object, subject, ...; `scores` reports the accuracy
over every noun and over subjects and objects apart.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from milestones.core import Run
from milestones.core.training import evaluating, train
from milestones.transformers.bert import language as toy
from milestones.transformers.bert.model import IGNORE
from milestones.transformers.bert.pretraining import adamw, linear_warmup_decay


class Tagger(nn.Module):
    """An encoder and a linear layer from each position's final hidden state to the class of the noun there.
    `causal`: the encoder keeps its left-to-right mask in fine-tuning (the LTR model). The encoder returns
    the hidden states (B, T, H), or a tuple that starts with them (BERT's also returns the pooled vector)."""

    def __init__(self, encoder: nn.Module, classes: int, causal: bool, dropout: float):
        super().__init__()
        self.encoder, self.causal = encoder, causal
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden, classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out = self.encoder(ids, causal=True) if self.causal else self.encoder(ids)
        hidden = out[0] if isinstance(out, tuple) else out
        return self.head(self.dropout(hidden))


def tagging_loss(tagger: Tagger, ids: torch.Tensor, senses: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(tagger(ids).flatten(0, 1), senses.flatten(), ignore_index=IGNORE)


def scores(tagger: Tagger, ids: torch.Tensor, senses: torch.Tensor) -> dict:
    """Sense accuracy over every noun, and over subjects and objects apart (a window starts at a sentence
    start, so its nouns alternate subject, object, subject, ...)."""
    with evaluating(tagger):
        right = tagger(ids).argmax(-1) == senses
    noun = senses != IGNORE
    subject = noun & (noun.cumsum(1) % 2 == 1)
    return {"accuracy": right[noun].float().mean().item(), "subject_accuracy": right[subject].float().mean().item(),
            "object_accuracy": right[noun & ~subject].float().mean().item()}


def fine_tune(ctx: Run, name: str, encoder: nn.Module, causal: bool, train_set, test_set, *, dropout: float,
              steps: int, batch_size: int, lr: float) -> dict:
    """BERT's fine-tuning: a fresh head, every weight trained on the labelled windows (AdamW with decay 0.01,
    linear warm-up and decay, gradients clipped at 1); test scores after."""
    tagger = Tagger(encoder, len(toy.CLASSES), causal, dropout)
    optimizer = adamw(tagger.parameters(), lr, ctx.device)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_warmup_decay(steps))
    ids, senses = train_set

    def batch(i: int):
        pick = torch.randint(len(ids), (batch_size,))
        return ids[pick], senses[pick]

    train(ctx, name, tagger, optimizer, steps, batch, tagging_loss, clip=1.0, schedule=schedule)
    return scores(tagger.cpu(), *test_set)
