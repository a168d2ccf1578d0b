"""The encoder-decoder's claim in miniature: a GRU encoder-decoder learns to translate a toy
language, and its translations get worse as sentences get longer, because the whole source must
pass through one fixed-size vector.

The toy language (milestones.core.data.translation) maps every word through a fixed dictionary
and swaps adjacent word pairs. Each training step draws a fresh batch of sentences of one random
length in [min_length, max_length]; held-out sentences of each length come from seeds training
never uses. Quality is the fraction of target words that greedy decoding gets right, position by
position, measured separately for each sentence length.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from milestones.core import Result, Run, check, experiment, plots
from milestones.core.data import toy_translation
from milestones.core.run import FitLog
from milestones.sequences.encoder_decoder.model import EncoderDecoder

CLAIM = ("An RNN encoder-decoder with gated recurrent units learns to translate (here a toy language: "
         "a word dictionary plus local reordering), and its quality falls as sentences grow longer "
         "because the whole source must pass through one fixed-length vector (the weakness the paper's "
         "conclusion names, measured as the RNNencdec curves of Bahdanau et al.'s Figure 2).")

HELD_OUT_SEED = 10**6  # held-out sentences of length L use seed HELD_OUT_SEED + L; training seeds are < 2**31


@dataclass
class Config:
    vocab: int = 16  # words in the toy language
    min_length: int = 4
    max_length: int = 24
    embed_size: int = 32
    hidden_size: int = 128
    steps: int = 2000
    batch_size: int = 64
    lr: float = 3e-3
    clip: float = 1.0  # gradient-norm clipping, as in the paper's successors; keeps early RNN training stable
    eval_sentences: int = 200  # held-out sentences per length
    eval_every: int = 4  # evaluate lengths min_length, min_length + eval_every, ...


SCALES = {
    "smoke": Config(max_length=8, hidden_size=32, steps=20, eval_sentences=20),
    "quick": Config(),
    "full": Config(max_length=40, hidden_size=256, steps=20000, eval_sentences=1000, eval_every=2),
}


def fast_gru(input_size: int, hidden_size: int) -> nn.Module:
    # nn.GRU is proven equal to our GRU in tests/equivalence/test_encoder_decoder.py; it is fused, so faster.
    return nn.GRU(input_size, hidden_size, batch_first=True)


def train_translator(ctx: Run, name: str, model: nn.Module, cfg) -> FitLog:
    """Teacher-forced cross-entropy on fresh toy sentences; `cfg` needs the training fields of Config."""
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)

    def step(i: int) -> dict:
        length = int(torch.randint(cfg.min_length, cfg.max_length + 1, ()))
        source, target = toy_translation(cfg.batch_size, length, cfg.vocab, seed=int(torch.randint(2**31, ())))
        logits = model(source.to(ctx.device), target.to(ctx.device))  # (B, T, V)
        loss = F.cross_entropy(logits.flatten(0, 1), target.to(ctx.device).flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        optimizer.step()
        return {"loss": loss.detach(), "length": length}

    return ctx.fit(name, cfg.steps, step, {"model": model, "optimizer": optimizer})


def accuracy_by_length(model: nn.Module, cfg, lengths: list[int], device) -> list[float]:
    """Fraction of target words greedy decoding gets right, for held-out sentences of each length."""
    model.eval()
    accuracies = []
    for length in lengths:
        source, target = toy_translation(cfg.eval_sentences, length, cfg.vocab, seed=HELD_OUT_SEED + length)
        guess = model.translate(source.to(device), length).cpu()
        accuracies.append((guess == target).float().mean().item())
    model.train()
    return accuracies


@experiment(CLAIM, Config, SCALES)
def run(cfg: Config, ctx: Run) -> Result:
    ctx.reseed(0)
    model = EncoderDecoder(cfg.vocab, cfg.vocab + 1, bos=cfg.vocab, embed_size=cfg.embed_size,
                           hidden_size=cfg.hidden_size, recurrent_layer=fast_gru).to(ctx.device)
    train_translator(ctx, "encoder-decoder", model, cfg)

    lengths = list(range(cfg.min_length, cfg.max_length + 1, cfg.eval_every))
    accuracy = accuracy_by_length(model, cfg, lengths, ctx.device)
    plots.curves(ctx.artifact("accuracy_by_length.png"), {"GRU encoder-decoder": (lengths, accuracy)},
                 "Fixed-vector encoder-decoder: quality against sentence length",
                 xlabel="sentence length (words)", ylabel="word accuracy (greedy decoding)")

    short, long = accuracy[0], accuracy[-1]
    return Result(
        checks=[
            check(f"word accuracy on {lengths[0]}-word sentences", short, ">=", 0.9, "learned the mapping"),
            check(f"drop in accuracy from {lengths[0]} to {lengths[-1]} words", short - long, ">=", 0.1,
                  "a clear fall with length"),
        ],
        metrics={"lengths": lengths, "accuracy_by_length": accuracy, "short_accuracy": short,
                 "long_accuracy": long},
    )
