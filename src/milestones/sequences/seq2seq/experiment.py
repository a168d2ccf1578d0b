"""Sequence to sequence learning's two practical claims in miniature.

1. The reversal trick (the paper's Section 3.3). Two identical 2-layer LSTM encoder-decoders are
   trained with the same data, initialisation law, optimiser and budget on the toy translation
   task (milestones.core.data.translation: a word dictionary plus adjacent-pair swaps); one reads
   each source sentence backwards. We compare their held-out loss (cross-entropy per target word,
   teacher-forced) and held-out word accuracy (greedy decoding).

2. Beam search (Table 1 reports beam sizes 1, 2 and 12). For held-out sentences, the model's
   log-likelihood of the translation beam search finds is compared with that of the greedy one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from milestones.core import Result, Run, check, experiment, plots
from milestones.core.data import toy_translation
from milestones.core.training import evaluating
from milestones.sequences.encoder_decoder.translation import (
    HELD_OUT_SEED,
    accuracy_by_length,
    held_out_loss,
    train_translator,
)
from milestones.sequences.seq2seq.model import Seq2Seq

CLAIM = ("A deep LSTM encoder-decoder reaches a lower loss and translates better in the same training "
         "budget when it reads the source sentence reversed (the paper's Section 3.3), and beam search "
         "finds translations the model scores as more likely than greedy decoding does (Table 1's beam "
         "sizes).")


@dataclass
class Config:
    vocab: int = 16  # words in the toy language
    min_length: int = 8
    max_length: int = 14
    embed_size: int = 32
    hidden_size: int = 128
    num_layers: int = 2  # the paper used 4
    steps: int = 800  # for each model
    batch_size: int = 64
    lr: float = 3e-3
    clip: float = 1.0  # the paper clipped the gradient norm at 5
    eval_sentences: int = 200  # held-out sentences per length
    eval_every: int = 2
    beam_size: int = 4


SCALES = {
    "smoke": Config(min_length=4, max_length=6, hidden_size=32, steps=10, eval_sentences=10, beam_size=2),
    "quick": Config(),
    "full": Config(min_length=10, max_length=30, hidden_size=256, num_layers=4, steps=20000, eval_sentences=1000),
}


def beam_against_greedy(model: Seq2Seq, cfg: Config, lengths: list[int], device) -> dict:
    """Log-likelihoods log p(y | x) of the greedy and the beam translations of held-out sentences."""
    greedy_scores, beam_scores, greedy_right, beam_right = [], [], [], []
    with evaluating(model):
        for length in lengths:
            source, target = toy_translation(cfg.eval_sentences, length, cfg.vocab, seed=HELD_OUT_SEED + length)
            source, target = source.to(device), target.to(device)
            greedy = model.translate(source, length)
            beams, scores = model.beam_search(source, length, cfg.beam_size)
            greedy_scores.append(model.log_likelihood(source, greedy))
            beam_scores.append(scores[:, 0])
            greedy_right.append((greedy == target).float().mean().item())
            beam_right.append((beams[:, 0] == target).float().mean().item())
    greedy_scores, beam_scores = torch.cat(greedy_scores), torch.cat(beam_scores)
    return {"greedy_log_likelihood": greedy_scores.mean().item(), "beam_log_likelihood": beam_scores.mean().item(),
            "beam_gain": (beam_scores - greedy_scores).mean().item(),
            "fraction_beam_better": (beam_scores > greedy_scores + 1e-6).float().mean().item(),
            "fraction_beam_worse": (beam_scores < greedy_scores - 1e-6).float().mean().item(),
            "greedy_accuracy": sum(greedy_right) / len(greedy_right),
            "beam_accuracy": sum(beam_right) / len(beam_right)}


@experiment(CLAIM, Config, SCALES, expected_failures=("reversal_loss", "reversal_accuracy"))  # see notes.md
def run(cfg: Config, ctx: Run) -> Result:
    lengths = list(range(cfg.min_length, cfg.max_length + 1, cfg.eval_every))
    models, logs, loss, accuracy, early_loss = {}, {}, {}, {}, {}
    for order in ["normal", "reversed"]:
        ctx.reseed(0)  # the same initial weights and the same batches: only the reading order differs
        models[order] = Seq2Seq(cfg.vocab, cfg.vocab + 1, bos=cfg.vocab, embed_size=cfg.embed_size,
                                hidden_size=cfg.hidden_size, num_layers=cfg.num_layers,
                                reverse_source=order == "reversed").to(ctx.device)
        logs[order] = train_translator(ctx, f"seq2seq-{order}", models[order], cfg)
        first_tenth = logs[order].series("loss")[1][:max(1, len(logs[order].history) // 10)]  # early on
        early_loss[order] = sum(first_tenth) / len(first_tenth)
        loss[order] = held_out_loss(models[order], cfg, lengths, ctx.device)
        accuracy[order] = accuracy_by_length(models[order], cfg, lengths, ctx.device)
    mean_accuracy = {order: sum(a) / len(a) for order, a in accuracy.items()}
    plots.curves(ctx.artifact("accuracy_by_length.png"),
                 {f"source {order}": (lengths, accuracy[order]) for order in accuracy},
                 "Reversing the source: word accuracy after the same budget",
                 xlabel="sentence length (words)", ylabel="word accuracy (greedy decoding)")

    plots.curves(ctx.artifact("training_loss.png"), {f"source {o}": logs[o].series("loss") for o in logs},
                 "Reversing the source: training loss", logy=True)

    beam = beam_against_greedy(models["reversed"], cfg, lengths, ctx.device)
    return Result(
        checks=[
            check("held-out loss per word, source reversed", loss["reversed"], "<", loss["normal"],
                  "source in normal order", name="reversal_loss"),
            check("held-out word accuracy, source reversed", mean_accuracy["reversed"], ">",
                  mean_accuracy["normal"], "source in normal order", name="reversal_accuracy"),
            check(f"mean log p(y|x) gain of beam search (K={cfg.beam_size}) over greedy", beam["beam_gain"], ">",
                  0.0, "no gain"),
        ],
        metrics={"lengths": lengths, "held_out_loss": loss, "training_loss_first_tenth": early_loss,
                 "accuracy_by_length": accuracy,
                 "mean_accuracy": mean_accuracy, "beam_size": cfg.beam_size, **beam},
    )
