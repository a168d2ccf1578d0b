"""Pre-training on the toy language's unlabelled stories, once per recipe and seed, kept in the shared cache.

Two objectives, the same network (BertForPreTraining), the same text, steps and optimizer:

  * "mlm": BERT's. Inputs [CLS] A [SEP] B [SEP]: A is a span starting at a sentence start, B is the
    span that follows it half of the time and a random span otherwise; masked language modelling
    with the 80/10/10 rule on every word, plus next-sentence prediction from [CLS].
  * "ltr": the paper's Table 5 baseline "LTR & No NSP", an OpenAI-GPT-like model: the same network
    with a causal mask (position i sees positions 0..i only), trained to predict the next word.

The optimizer is the paper's, shrunk: Adam with weight decay 0.01, a linear warm-up over the first
10% of the steps, then a linear decay to zero; gradients clipped at norm 1. `adamw` builds it with
PyTorch's fused kernel: at this size the plain AdamW's loop over 46 small tensors took about a third
of a pre-training step on one CPU thread (torch.profiler: 17.6 ms a step, 4.3 ms fused). The
encoder's weights go into the cache (milestones.core.cache), so every run with the same recipe and
seed reuses them.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from milestones.core import Run, cache, checkpoint
from milestones.core.training import fused_kernel, train
from milestones.transformers.bert import language as toy
from milestones.transformers.bert import model as bert_model
from milestones.transformers.bert.model import Bert, BertConfig, BertForPreTraining, mask_tokens

OBJECTIVES = ("mlm", "ltr")
ENCODER_FILE = "encoder.safetensors"


def linear_warmup_decay(steps: int, warmup: float = 0.1):
    """The learning-rate multiplier of step i: up linearly over the warm-up, then down linearly to zero."""
    rise = max(1, round(warmup * steps))
    return lambda i: min((i + 1) / rise, max(0.0, (steps - i) / max(1, steps - rise)))


def adamw(parameters, lr: float, device: torch.device) -> torch.optim.AdamW:
    """Adam with decoupled weight decay 0.01 (torch.optim.AdamW, proven equal to our Adam in
    tests/equivalence/test_adam.py), fused into one kernel over every tensor on a CPU or a GPU."""
    return torch.optim.AdamW(parameters, lr=lr, weight_decay=0.01, fused=fused_kernel(device))


def pretrained_encoder(recipe: dict, device: str = "cpu", quiet: bool = True) -> Bert:
    """The encoder pre-trained by `recipe` (built on first use, then read from the cache).

    recipe: objective ("mlm" or "ltr"), seed, the model (nouns, verbs_per_frame, length, hidden,
    layers, heads, intermediate, dropout) and the training (sentences, steps, batch, lr).
    """
    if recipe["objective"] not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, not {recipe['objective']!r}")

    def build(folder: Path, recipe: dict) -> None:
        model = pretrain(Run(folder / "run", seed=recipe["seed"], device=device, quiet=quiet), recipe)
        checkpoint.save(folder / ENCODER_FILE, {"encoder": model.bert.state_dict()})

    folder = cache.cached(f"bert-toy-{recipe['objective']}", recipe, (toy, bert_model, sys.modules[__name__]), build)
    encoder = Bert(model_config(recipe))
    encoder.load_state_dict(checkpoint.load(folder / ENCODER_FILE)["encoder"])
    return encoder


def model_config(recipe: dict) -> BertConfig:
    vocab = len(toy.toy_language(recipe["nouns"], recipe["verbs_per_frame"]))
    return BertConfig(vocab_size=vocab, max_positions=recipe["length"], hidden=recipe["hidden"],
                      layers=recipe["layers"], heads=recipe["heads"], intermediate=recipe["intermediate"],
                      dropout=recipe["dropout"])


def pretrain(ctx: Run, recipe: dict) -> BertForPreTraining:
    language = toy.toy_language(recipe["nouns"], recipe["verbs_per_frame"])
    text = unlabelled_story(recipe["nouns"], recipe["verbs_per_frame"], recipe["sentences"],
                            3 * recipe["seed"])  # the labelled texts use 3s+1, 3s+2
    length, batch_size = recipe["length"], recipe["batch"]
    model = BertForPreTraining(model_config(recipe))
    optimizer = adamw(model.parameters(), recipe["lr"], ctx.device)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_warmup_decay(recipe["steps"]))
    if recipe["objective"] == "mlm":
        batch, loss = masked_batches(text, language, length, batch_size), masked_loss
    else:
        starts = toy.window_starts(text, length)
        batch = lambda i: toy.windows(text, starts[torch.randint(len(starts), (batch_size,))], length)[:1]  # noqa: E731
        loss = next_word_loss
    train(ctx, f"pretrain-{recipe['objective']}", model, optimizer, recipe["steps"], batch, loss, clip=1.0,
          schedule=schedule, data_parallel=False)
    return model


@functools.lru_cache(maxsize=2)
def unlabelled_story(nouns: int, verbs_per_frame: int, sentences: int, seed: int) -> toy.Story:
    """The story a pre-training reads, drawn once per process: both of BERT's objectives for a seed, and
    RoBERTa's MLM-only encoder, read the same 60,000 sentences, about a second of Python loop each.
    The callers only index it, never write to it."""
    return toy.story(toy.toy_language(nouns, verbs_per_frame), sentences, seed=seed)


def masked_batches(text: toy.Story, language: toy.Language, length: int, batch_size: int):
    """The batch function of BERT's pre-training: (masked ids, segments, MLM targets, is-next) per step."""
    half = (length - 3) // 2  # [CLS] A [SEP] B [SEP]
    starts = toy.window_starts(text, 2 * half + 1)
    every_start = torch.arange(len(text.ids) - half)

    def batch(i: int):
        first = starts[torch.randint(len(starts), (batch_size,))]
        is_next = torch.rand(batch_size) < 0.5
        second = torch.where(is_next, first + half, every_start[torch.randint(len(every_start), (batch_size,))])
        a, b = (text.ids[s[:, None] + torch.arange(half)] for s in (first, second))
        column = lambda token: torch.full((batch_size, 1), token)  # noqa: E731
        ids = torch.cat([column(toy.CLS), a, column(toy.SEP), b, column(toy.SEP)], 1)
        segments = torch.cat([torch.zeros(batch_size, half + 2), torch.ones(batch_size, half + 1)], 1).long()
        corrupted, targets = mask_tokens(ids, ids >= len(toy.SPECIALS), toy.MASK, len(language))
        return corrupted, segments, targets, is_next

    return batch


def masked_loss(model: BertForPreTraining, ids, segments, targets, is_next):
    return model.loss(ids, segments, None, targets, is_next)


def next_word_loss(model: BertForPreTraining, ids):
    hidden, _ = model.bert(ids, causal=True)
    return F.cross_entropy(model.mlm_logits(hidden[:, :-1]).flatten(0, 1), ids[:, 1:].flatten())
