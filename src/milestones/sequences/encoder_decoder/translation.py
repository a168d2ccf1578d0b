"""Training and scoring a translator on the toy language, shared by the encoder-decoder, attention and
seq2seq experiments, so that the three are trained and measured the same way."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from milestones.core import Run
from milestones.core.data import toy_translation
from milestones.core.run import FitLog
from milestones.core.training import evaluating, train

HELD_OUT_SEED = 10**6  # held-out sentences of length L use seed HELD_OUT_SEED + L; training seeds are < 2**31


def fast_gru(input_size: int, hidden_size: int) -> nn.Module:
    # nn.GRU is proven equal to our GRU in tests/equivalence/test_encoder_decoder.py; it is fused, so faster.
    return nn.GRU(input_size, hidden_size, batch_first=True)


Sentences = Callable[..., tuple[torch.Tensor, torch.Tensor]]  # (n, length, vocab, seed) -> (source, target)


def train_translator(ctx: Run, name: str, model: nn.Module, cfg, decay_fraction: float = 0.0,
                     data: Sentences = toy_translation, evaluate: Callable[[], dict] | None = None,
                     log_every: int | None = None) -> FitLog:
    """Teacher-forced cross-entropy on fresh toy sentences, each batch of one random length;
    `cfg` needs the fields vocab, min_length, max_length, batch_size, lr, clip and steps. Over the
    last `decay_fraction` of the steps the learning rate falls linearly from `cfg.lr` to zero.
    `data` makes the sentences (the toy language by default); `evaluate` and `log_every` go to `train`."""

    def batch(i: int) -> tuple[torch.Tensor, torch.Tensor]:
        length = int(torch.randint(cfg.min_length, cfg.max_length + 1, ()))
        return data(cfg.batch_size, length, cfg.vocab, seed=int(torch.randint(2**31, ())))

    def loss(net: nn.Module, source: torch.Tensor, target: torch.Tensor):
        logits = net(source, target)  # (B, T, V)
        return F.cross_entropy(logits.flatten(0, 1), target.flatten()), {"length": target.shape[1]}

    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    decay_steps = decay_fraction * cfg.steps
    schedule = (torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: min(1.0, (cfg.steps - i) / decay_steps))
                if decay_steps else None)
    return train(ctx, name, model, optimizer, cfg.steps, batch, loss, clip=cfg.clip, schedule=schedule,
                 evaluate=evaluate, log_every=log_every)


def held_out_sentences(cfg, length: int, data: Sentences = toy_translation,
                       count: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The held-out (source, target) sentences of `length` words, cfg.eval_sentences of them (or `count`,
    the first of the same draw): the same at every call, and never among the training batches."""
    return data(count or cfg.eval_sentences, length, cfg.vocab, seed=HELD_OUT_SEED + length)


def held_out_loss(model: nn.Module, cfg, lengths: list[int], device, data: Sentences = toy_translation) -> float:
    """Mean teacher-forced cross-entropy per target word (nats) over held-out sentences of each length."""
    losses = []
    with evaluating(model):
        for length in lengths:
            source, target = held_out_sentences(cfg, length, data)
            logits = model(source.to(device), target.to(device))
            losses.append(F.cross_entropy(logits.flatten(0, 1), target.to(device).flatten()).item())
    return sum(losses) / len(losses)


def accuracy_by_length(model: nn.Module, cfg, lengths: list[int], device) -> list[float]:
    """Fraction of target words greedy decoding gets right, for held-out sentences of each length."""
    accuracies = []
    with evaluating(model):
        for length in lengths:
            source, target = held_out_sentences(cfg, length)
            guess = model.translate(source.to(device), length).cpu()
            accuracies.append((guess == target).float().mean().item())
    return accuracies
