"""Sequence to sequence learning's two practical claims in miniature.

The data: long sentences (20 to 30 words at quick scale) of a toy language whose target side has
Markov structure (milestones.core.data.markov_translation): a grammar allows 4 of the 16 words after
each target word, and the source is the target's word-by-word translation with adjacent pairs
swapped. Each target word so depends on its aligned source word and on the target word before it:
an early error throws the next words off, and a good start pays off, as in real text.

1. The reversal trick (the paper's Section 3.3). Two identical 2-layer LSTM encoder-decoders are
   trained from the same initial weights on the same batches with the same budget; one reads each
   source sentence backwards. We compare their held-out loss (cross-entropy per target word,
   teacher-forced) and held-out word accuracy (greedy decoding), and plot the held-out loss during
   training and the accuracy at each position of the sentence.

2. Beam search (Table 1 reports beam sizes 1, 2 and 12). On the reversed model's held-out
   sentences, a beam of 4 is compared with greedy decoding by word accuracy against the reference;
   the model's log-likelihood of each output is reported too, as a control (a beam that holds the
   greedy path almost always scores at least as high, whether or not its output is better).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from milestones.core import Result, Run, check, experiment, plots
from milestones.core.data import markov_translation
from milestones.core.training import evaluating
from milestones.sequences.encoder_decoder.translation import held_out_loss, held_out_sentences, train_translator
from milestones.sequences.seq2seq.model import Seq2Seq

CLAIM = ("A deep LSTM encoder-decoder reaches a lower loss and translates better in the same training "
         "budget when it reads the source sentence reversed (the paper's Section 3.3), and beam search "
         "translates better than greedy decoding (Table 1's beam sizes).")

# Fixed before the first run of this protocol. The paper's reversal lowered test perplexity from 5.8
# to 4.7, i.e. the loss per word from ln 5.8 = 1.76 to ln 4.7 = 1.55 nats, 12% lower; we ask for a
# held-out loss at least 5% lower, less than half of that relative gain.
REVERSAL_LOSS_GAIN = 0.05
# Word accuracy is a mean over 1,200 held-out sentences at quick scale (200 of each length); a sentence's accuracy
# lies in [0, 1], so its standard deviation is at most 0.5 and the mean's standard error at most
# 0.5 / sqrt(1200) = 0.014 (the sentence is the unit: its words are not independent). We ask for
# a gain of 0.03, over two of these worst-case standard errors.
REVERSAL_ACCURACY_GAIN = 0.03
# Beam search must raise word accuracy by more than twice the standard error of the paired,
# per-sentence difference: a gain that small sentence-by-sentence noise would not give.
BEAM_STANDARD_ERRORS = 2.0


@dataclass
class Config:
    vocab: int = 16  # words in each language
    branching: int = 4  # target words allowed after each target word
    min_length: int = 20
    max_length: int = 30
    embed_size: int = 32
    hidden_size: int = 64
    num_layers: int = 2  # the paper used 4
    steps: int = 500  # for each model
    batch_size: int = 64
    lr: float = 3e-3
    clip: float = 1.0  # the paper clipped the gradient norm at 5
    eval_sentences: int = 200  # held-out sentences per length
    eval_every: int = 2  # held-out lengths min_length, min_length + eval_every, ...
    curve_points: int = 10  # held-out loss measurements during training
    beam_size: int = 4


SCALES = {
    "smoke": Config(min_length=4, max_length=6, hidden_size=16, steps=10, eval_sentences=10, curve_points=2,
                    beam_size=2),
    "quick": Config(),
    "full": Config(hidden_size=256, num_layers=4, steps=20000, eval_sentences=1000, curve_points=40, beam_size=12),
}


def held_out(cfg: Config, data, lengths: list[int], device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The held-out sentences of each length, the same ones held_out_loss scores."""
    return [tuple(t.to(device) for t in held_out_sentences(cfg, length, data)) for length in lengths]


def decode(model: Seq2Seq, sentences, beam_size: int = 1) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Greedy (beam_size 1) or beam decoding of held-out sentences: for each length, which words are
    right, (N, length) bool, and the model's log-likelihood of its output, (N,)."""
    right, scores = [], []
    with evaluating(model):
        for source, target in sentences:
            if beam_size == 1:
                words = model.translate(source, target.shape[1])
                score = model.log_likelihood(source, words)
            else:
                beams, beam_scores = model.beam_search(source, target.shape[1], beam_size)
                words, score = beams[:, 0], beam_scores[:, 0]
            right.append(words == target)
            scores.append(score)
    return right, scores


def word_accuracy(right: list[torch.Tensor]) -> torch.Tensor:
    """Each sentence's fraction of right words, all lengths together: (sentences,)."""
    return torch.cat([r.float().mean(1) for r in right])


def accuracy_by_position(right: list[torch.Tensor]) -> list[float]:
    """Word accuracy at each target position, over the held-out sentences long enough to have it."""
    longest = max(r.shape[1] for r in right)
    return [torch.cat([r[:, t].float() for r in right if r.shape[1] > t]).mean().item() for t in range(longest)]


@experiment(CLAIM, Config, SCALES)
def run(cfg: Config, ctx: Run) -> Result:
    data = functools.partial(markov_translation, branching=cfg.branching)
    lengths = list(range(cfg.min_length, cfg.max_length + 1, cfg.eval_every))
    sentences = held_out(cfg, data, lengths, ctx.device)
    models, logs, loss, right, scores = {}, {}, {}, {}, {}
    for order in ["normal", "reversed"]:
        ctx.reseed(0)  # the same initial weights and the same batches: only the reading order differs
        model = models[order] = Seq2Seq(cfg.vocab, cfg.vocab + 1, bos=cfg.vocab, embed_size=cfg.embed_size,
                                        hidden_size=cfg.hidden_size, num_layers=cfg.num_layers,
                                        reverse_source=order == "reversed").to(ctx.device)
        logs[order] = train_translator(
            ctx, f"seq2seq-{order}", model, cfg, data=data, log_every=max(1, cfg.steps // cfg.curve_points),
            evaluate=lambda model=model: {"held_out_loss": held_out_loss(model, cfg, lengths, ctx.device, data)})
        loss[order] = logs[order].last("held_out_loss")  # measured after the last step
        right[order], scores[order] = decode(model, sentences)  # greedy
    accuracy = {order: word_accuracy(r).mean().item() for order, r in right.items()}
    by_position = {order: accuracy_by_position(r) for order, r in right.items()}
    sentence_accuracy = {order: torch.cat([s.all(1) for s in r]).float().mean().item() for order, r in right.items()}

    # A decoder that ignores the source can still learn the grammar: ln(vocab) nats for the first word,
    # ln(branching) for each later one, averaged over the sentence as held_out_loss averages.
    grammar_only = sum((math.log(cfg.vocab) + (n - 1) * math.log(cfg.branching)) / n for n in lengths) / len(lengths)
    plots.curves(ctx.artifact("held_out_loss.png"), {f"source {o}": logs[o].series("held_out_loss") for o in logs},
                 "Reversing the source: held-out loss in training", ylabel="held-out loss per word (nats)",
                 hlines={"the grammar alone, source ignored": grammar_only})
    positions = list(range(1, len(by_position["normal"]) + 1))
    plots.curves(ctx.artifact("accuracy_by_position.png"),
                 {f"source {order}": (positions, by_position[order]) for order in by_position},
                 "Reversing the source: where in the sentence it helps",
                 xlabel="target position (word)", ylabel="word accuracy (greedy decoding)")

    # Beam search against greedy decoding, on the reversed model (the paper's setting), sentence by sentence.
    greedy_right, greedy_scores = right["reversed"], scores["reversed"]
    beam_right, beam_scores = decode(models["reversed"], sentences, cfg.beam_size)
    gain = word_accuracy(beam_right) - word_accuracy(greedy_right)  # (sentences,)
    gain_error = (gain.std() / len(gain) ** 0.5).item()
    likelihood_gain = torch.cat(beam_scores) - torch.cat(greedy_scores)
    beam = {"greedy_accuracy": word_accuracy(greedy_right).mean().item(),
            "beam_accuracy": word_accuracy(beam_right).mean().item(),
            "beam_accuracy_gain": gain.mean().item(), "beam_accuracy_gain_standard_error": gain_error,
            "fraction_beam_more_accurate": (gain > 0).float().mean().item(),
            "fraction_beam_less_accurate": (gain < 0).float().mean().item(),
            "greedy_log_likelihood": torch.cat(greedy_scores).mean().item(),
            "beam_log_likelihood": torch.cat(beam_scores).mean().item(),
            "beam_log_likelihood_gain": likelihood_gain.mean().item(),
            "fraction_beam_more_likely": (likelihood_gain > 1e-6).float().mean().item()}
    return Result(
        checks=[
            check("held-out loss per word, source reversed", loss["reversed"], "<",
                  (1 - REVERSAL_LOSS_GAIN) * loss["normal"], f"{1 - REVERSAL_LOSS_GAIN:g} x normal order's",
                  name="reversal_loss"),
            check("held-out word accuracy (greedy), source reversed", accuracy["reversed"], ">",
                  accuracy["normal"] + REVERSAL_ACCURACY_GAIN, f"normal order's + {REVERSAL_ACCURACY_GAIN:g}",
                  name="reversal_accuracy"),
            check(f"word accuracy gain of beam search (K={cfg.beam_size}) over greedy", beam["beam_accuracy_gain"],
                  ">", BEAM_STANDARD_ERRORS * gain_error, f"{BEAM_STANDARD_ERRORS:g} standard errors",
                  name="beam_accuracy"),
            check(f"mean log p(y|x) gain of beam search (K={cfg.beam_size}) over greedy",
                  beam["beam_log_likelihood_gain"], ">", 0.0, "no gain", name="beam_likelihood", control=True),
        ],
        metrics={"lengths": lengths, "held_out_loss": loss, "grammar_only_loss": grammar_only,
                 "word_accuracy": accuracy, "sentence_accuracy": sentence_accuracy, "accuracy_by_position": by_position,
                 "beam_size": cfg.beam_size, **beam},
    )
