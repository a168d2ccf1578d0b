"""RoBERTa's pre-training on the toy language of BERT's experiments, once per recipe and seed, in the shared cache.

The network is RobertaForMaskedLM (model.py) on the toy vocabulary, whose padding token is id 0
(language.PAD), so positions are counted from 1. Every input is one full window of running text,
[CLS] followed by the next `length - 1` tokens from a sentence start: no second segment, no [SEP] in
the middle, no next-sentence prediction. The loss is masked language modelling with BERT's 80/10/10
rule (../bert/model.py `mask_tokens`) on every word.

The masking is the recipe's `masking`:

  * "dynamic": RoBERTa's. A fresh mask is drawn every time a window is put in a batch.
  * "static": BERT's original data pipeline. Each window of the text is masked `copies` times, once
    and for all, before training (BERT: 10 copies over 40 epochs, so each mask was seen 4 times);
    a batch draws a window and one of its fixed copies.

The optimizer and schedule are BERT's toy ones (../bert/pretraining.py): AdamW with decay 0.01 (fused),
linear warm-up over 10% of the steps then linear decay, gradients clipped at 1. The weights (encoder
and MLM head) go into the cache (milestones.core.cache).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from milestones.core import Run, cache, checkpoint
from milestones.core.training import evaluating, train
from milestones.transformers.bert import language as toy
from milestones.transformers.bert.model import IGNORE, mask_tokens
from milestones.transformers.bert.pretraining import adamw, linear_warmup_decay, unlabelled_story
from milestones.transformers.roberta import model as roberta_model
from milestones.transformers.roberta.model import RobertaConfig, RobertaForMaskedLM

MASKINGS = ("dynamic", "static")
MODEL_FILE = "model.safetensors"


def model_config(recipe: dict) -> RobertaConfig:
    vocab = len(toy.toy_language(recipe["nouns"], recipe["verbs_per_frame"]))
    return RobertaConfig(vocab_size=vocab, max_positions=recipe["length"] + toy.PAD + 1, segments=1,
                         hidden=recipe["hidden"], layers=recipe["layers"], heads=recipe["heads"],
                         intermediate=recipe["intermediate"], dropout=recipe["dropout"], layer_norm_eps=1e-12,
                         pad_id=toy.PAD)


def pretrained(recipe: dict, device: str = "cpu", quiet: bool = True) -> RobertaForMaskedLM:
    """The model pre-trained by `recipe` (built on first use, then read from the cache).

    recipe: masking ("dynamic" or "static"), copies (static masking's fixed masks per window), seed,
    story_seed, the model (nouns, verbs_per_frame, length, hidden, layers, heads, intermediate,
    dropout) and the training (sentences, steps, batch, lr).
    """
    if recipe["masking"] not in MASKINGS:
        raise ValueError(f"masking must be one of {MASKINGS}, not {recipe['masking']!r}")

    def build(folder: Path, recipe: dict) -> None:
        model = pretrain(Run(folder / "run", seed=recipe["seed"], device=device, quiet=quiet), recipe)
        checkpoint.save(folder / MODEL_FILE, {"model": model.state_dict()})

    name = f"roberta-toy-{recipe['masking']}"
    folder = cache.cached(name, recipe, (toy, roberta_model, sys.modules[__name__]), build)
    model = RobertaForMaskedLM(model_config(recipe))
    model.load_state_dict(checkpoint.load(folder / MODEL_FILE)["model"])
    return model


def full_windows(text: toy.Story, length: int) -> torch.Tensor:
    """(n, length) every window of the text that starts at a sentence start: [CLS] + `length - 1` tokens."""
    return toy.windows(text, toy.window_starts(text, length - 1), length)[0]


def fixed_masks(ids: torch.Tensor, copies: int, vocab_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`copies` maskings of every window, drawn once from `seed`: (copies, n, length) corrupted ids and targets."""
    g = torch.Generator().manual_seed(seed)
    masked = [mask_tokens(ids, ids >= len(toy.SPECIALS), toy.MASK, vocab_size, generator=g) for _ in range(copies)]
    return torch.stack([m[0] for m in masked]), torch.stack([m[1] for m in masked])


def pretrain(ctx: Run, recipe: dict) -> RobertaForMaskedLM:
    language = toy.toy_language(recipe["nouns"], recipe["verbs_per_frame"])
    text = unlabelled_story(recipe["nouns"], recipe["verbs_per_frame"], recipe["sentences"], recipe["story_seed"])
    ids = full_windows(text, recipe["length"])
    batch_size = recipe["batch"]
    model = RobertaForMaskedLM(model_config(recipe))
    optimizer = adamw(model.parameters(), recipe["lr"], ctx.device)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_warmup_decay(recipe["steps"]))
    if recipe["masking"] == "static":
        corrupted, targets = fixed_masks(ids, recipe["copies"], len(language), seed=1000 + recipe["seed"])

        def batch(i: int):
            pick, copy = torch.randint(len(ids), (batch_size,)), torch.randint(recipe["copies"], (batch_size,))
            return corrupted[copy, pick], targets[copy, pick]
    else:
        def batch(i: int):
            window = ids[torch.randint(len(ids), (batch_size,))]
            return mask_tokens(window, window >= len(toy.SPECIALS), toy.MASK, len(language))

    train(ctx, f"pretrain-{recipe['masking']}", model, optimizer, recipe["steps"], batch, masked_loss, clip=1.0,
          schedule=schedule, data_parallel=False)
    return model


def masked_loss(model: RobertaForMaskedLM, ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return model.loss(ids, None, targets)


def mlm_loss(model: RobertaForMaskedLM, corrupted: torch.Tensor, targets: torch.Tensor, batch: int = 256) -> float:
    """The mean MLM cross-entropy (nats) over the picked positions of fixed masked windows, in eval mode."""
    total, count = 0.0, 0
    with evaluating(model), torch.no_grad():
        for start in range(0, len(corrupted), batch):
            ids, tgt = corrupted[start:start + batch], targets[start:start + batch]
            picked = (tgt != IGNORE).sum().item()
            total += model.loss(ids, None, tgt).item() * picked
            count += picked
    return total / count
