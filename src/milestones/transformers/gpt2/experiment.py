"""GPT-2's claims in miniature: a bigger language model is a better one, on held-out text and on a
task it was never trained for.

GPT-2 trained four sizes (117M to 1,542M parameters) on the same text and found that held-out
perplexity fell steadily with size (Table 3, Figure 4), and so did the zero-shot scores: on LAMBADA
(predict a passage's last word, which needs the passage) accuracy rose from 45.99% to 63.24% and the
target word's perplexity fell from 35.13 to 8.63 (Table 3).

Here a family of GPTs (model.py) of growing width learns Shakespeare (or the user's `--set data=PATH`)
with byte-level BPE (tokenizer.py), every size on the same batches for the same number of steps, each
at its own learning rate (the best of a sweep made while writing this, as the paper tuned each size's
rate on held-out text; notes.md gives the sweep). Size is counted as Kaplan et al. (2020) count it:
the non-embedding parameters N (the token and position tables are lookups, not compute). Then:

1. held-out loss (cross-entropy per token on 5% of the corpus, never trained on) falls with every
   step up in size, and steadily: a least-squares line loss = a + b log10(N) explains at least
   MIN_R2 of its variance across the sizes (a flat or zig-zag family fails it);
2. control: every size beats a count-based bigram model of the same tokens (the best of a few
   smoothing strengths, scored on the same held-out windows), so the family has learned more than
   which token follows which;
3. zero-shot, the cloze of data.py, LAMBADA in miniature: the last word of a held-out passage, a word
   that already occurred in it. The largest model predicts it exactly (greedy, every token the first
   choice) more often than the smallest, by more than MIN_Z standard errors of the paired difference;
   and it reads the passage to do so: with the passage replaced by another one (the last KEPT_TOKENS
   tokens kept), its accuracy falls by more than MIN_Z standard errors. The log-likelihood the passage
   adds to the target words is reported beside it.

The base model (base.py, the GPT pretrained once for every later paper) is scored beside the family:
its held-out nats per character, the share of real words in its samples, its cloze scores, and its
curve and samples, copied into the run for the book.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass

import numpy as np
import torch

from milestones.core import Result, Run, check, experiment, plots
from milestones.core.errors import UserError
from milestones.core.training import train
from milestones.transformers.gpt2 import base
from milestones.transformers.gpt2.base import (
    KEPT_TOKENS,
    adamw,
    cloze_scores,
    held_out_loss,
    next_token_loss,
    paired_z,
    warmup_cosine,
)
from milestones.transformers.gpt2.data import Corpus, cloze, shakespeare_corpus, text_file_corpus
from milestones.transformers.gpt2.model import GPT, GPTConfig

# "Steadily": with four sizes, losses that were noise around a flat line would give R^2 >= 0.9 about one
# time in twenty (R^2 of four random points is Beta(1/2, 1) distributed); a zig-zag fails it too.
MIN_R2 = 0.9
MIN_Z = 3.0  # "clearly": a paired difference of more than three standard errors
LARGEST_SHAKESPEARE_VOCAB = 16384  # more BPE tokens than this need more text than Shakespeare's 5 MB

CLAIM = (f"Held-out language-modelling loss falls with every step up in model size, steadily in log non-embedding "
         f"parameters (a line in log10 N explains at least MIN_R2 = {MIN_R2} of its variance), every size beating a "
         f"count-based bigram; and a zero-shot LAMBADA-style cloze improves with size: the largest model predicts "
         f"more passages' last words exactly than the smallest, and reads the passage to do so (both by more than "
         f"MIN_Z = {MIN_Z} standard errors) (the paper's Table 3 and Figure 4).")


@dataclass
class Config:
    data: str = ""  # a UTF-8 text file to learn instead of Shakespeare (tokenized once, into the cache)
    vocab_size: int = 257  # BPE tokens, <|endoftext|> included: 257 is bytes alone, no merges (GPT-2: 50,257)
    context: int = 64  # tokens per training window (GPT-2: 1,024)
    batch_size: int = 8  # windows per step, over all processes
    steps: int = 2000  # optimizer steps, the same for every size
    layers: tuple[int, ...] = (2, 2, 2, 2)  # the family: layers, width and learning rate of each size
    widths: tuple[int, ...] = (16, 24, 40, 64)
    learning_rates: tuple[float, ...] = (2e-2, 1e-2, 1e-2, 1e-2)
    head_size: int = 16  # channels per attention head (GPT-2: 64)
    warmup: float = 0.05  # the share of the steps over which the learning rate rises linearly, then cosine decay
    weight_decay: float = 0.1
    dropout: float = 0.0
    held_out_windows: int = 512  # windows of the held-out text scored for the loss
    cloze_passages: int = 500
    base_model: str = "base"  # the pretrained variant scored beside the family (base.py); "" for none
    compile: bool = False  # torch.compile each model (for a GPU; compiling costs more than it saves here)


SCALES = {
    "smoke": Config(steps=4, layers=(2, 2), widths=(16, 32), learning_rates=(1e-2, 1e-2), context=32, batch_size=4,
                    held_out_windows=8, cloze_passages=16, base_model="small"),
    "quick": Config(),
    # full: GPT-2 small (124M) and three smaller models with GPT-2's tokenizer size and context, for GPUs
    # under torchrun, on a large corpus the user provides (--set data=PATH); not tuned.
    "full": Config(vocab_size=50257, context=1024, batch_size=64, steps=20000, layers=(4, 6, 8, 12),
                   widths=(256, 384, 512, 768), learning_rates=(1e-3, 8e-4, 7e-4, 6e-4), head_size=64, dropout=0.1,
                   held_out_windows=2048, cloze_passages=2000, base_model="", compile=True),
}


def model_config(cfg: Config, size: int, vocab_size: int) -> GPTConfig:
    width = cfg.widths[size]
    return GPTConfig(vocab_size=vocab_size, block_size=cfg.context, n_layer=cfg.layers[size],
                     n_head=max(1, width // cfg.head_size), n_embd=width, embedding_dropout=cfg.dropout,
                     attention_dropout=cfg.dropout, residual_dropout=cfg.dropout)


def load_corpus(cfg: Config) -> Corpus:
    if cfg.data:
        return text_file_corpus(cfg.data, cfg.vocab_size)
    if cfg.vocab_size > LARGEST_SHAKESPEARE_VOCAB:  # the full scale's 50,257: hours of pure-Python BPE on 5 MB
        raise UserError(f"a vocabulary of {cfg.vocab_size:,} tokens needs a large corpus: pass --set data=PATH "
                        "(a UTF-8 text file of a few GB), or a smaller --set vocab_size")
    return shakespeare_corpus(cfg.vocab_size)


def non_embedding_parameters(model: GPT) -> int:
    """Kaplan et al.'s N: every parameter but the token and position tables."""
    return model.num_parameters() - model.token_embedding.weight.numel() - model.position_embedding.weight.numel()


def bigram_loss(corpus: Corpus, held_out: tuple[torch.Tensor, torch.Tensor],
                strengths: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0)) -> tuple[float, float]:
    """The held-out loss of a count-based bigram model of the training tokens, p(b | a) = (c(a, b) + s p(b)) /
    (c(a) + s): pair counts smoothed towards the unigram distribution p with strength s, the best s of
    `strengths` on the held-out windows (a baseline gets its own tuning). Returns (loss, s)."""
    vocab = len(corpus.tokenizer)
    counts = torch.zeros(vocab * vocab, dtype=torch.float64)
    for s, e in corpus.blocks(held_out=False):
        ids = torch.from_numpy(corpus.tokens[s:e].astype(np.int64))
        counts += torch.bincount(ids[:-1] * vocab + ids[1:], minlength=vocab * vocab).double()
    counts = counts.view(vocab, vocab)
    unigram = counts.sum(0) / counts.sum()
    x, y = (t.flatten() for t in held_out)
    losses = {s: -torch.log((counts[x, y] + s * unigram[y]) / (counts.sum(1)[x] + s)).mean().item()
              for s in strengths}
    best = min(losses, key=losses.get)
    return losses[best], best


def log_linear_fit(parameters: list[int], losses: list[float]) -> tuple[float, float, float]:
    """Least squares loss = a + b log10(N) -> (a, b, R^2)."""
    x, y = np.log10(parameters), np.asarray(losses)
    b, a = np.polyfit(x, y, 1)
    residual = y - (a + b * x)
    return float(a), float(b), float(1 - residual.var() / y.var())


@experiment(CLAIM, Config, SCALES, expected_failures=("cloze_accuracy_rises", "cloze_uses_the_passage"))
def run(cfg: Config, ctx: Run) -> Result:
    sizes = len(cfg.widths)
    if sizes < 2 or not len(cfg.layers) == len(cfg.learning_rates) == sizes:
        raise ValueError("layers, widths and learning_rates need one entry per model size, at least two sizes")
    corpus = load_corpus(cfg)
    vocab_size = len(corpus.tokenizer)
    held_out = corpus.held_out(cfg.context, cfg.held_out_windows)
    test = cloze(corpus, cfg.context, cfg.cloze_passages)
    if not test.words:
        raise UserError(f"{corpus.source} holds no passage for the zero-shot cloze (a word of 3 letters or more, not "
                        f"among the 100 commonest, that recurs within {cfg.context} tokens of held-out text); "
                        "give a longer or more varied text")
    if ctx.is_main:
        corpus.tokenizer.save(ctx.artifact("tokenizer.json"))
    bigram, strength = bigram_loss(corpus, held_out)

    rows, exact, curves = [], [], {}
    for size in range(sizes):
        ctx.reseed(size)  # each size starts from its own seed, whatever the sizes before it drew
        config = model_config(cfg, size, vocab_size)
        model = GPT(config)
        if cfg.compile:
            model.compile()  # in place: the state dict keeps its names, so checkpoints stay loadable
        optimizer = adamw(model, cfg.learning_rates[size], cfg.weight_decay, ctx.device)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(cfg.steps, cfg.warmup))
        ctx.reseed(sizes)  # every size on the same batches
        log = train(ctx, f"gpt-{size}", model, optimizer, cfg.steps,
                    lambda i: corpus.batch(cfg.batch_size, cfg.context), next_token_loss, clip=1.0,
                    schedule=schedule)
        scores, size_exact = cloze_scores(model, test)
        rows.append({"layers": config.n_layer, "width": config.n_embd, "heads": config.n_head,
                     "non_embedding_parameters": non_embedding_parameters(model),
                     "parameters": model.num_parameters(), "learning_rate": cfg.learning_rates[size],
                     "train_loss": log.last("loss"), "held_out_loss": held_out_loss(model, held_out)} | scores)
        exact.append(size_exact)
        curves[f"{config.n_layer} x {config.n_embd} ({rows[-1]['non_embedding_parameters'] / 1e3:.0f}K)"] = \
            log.series("loss")
    largest = sizes - 1
    # what `milestones generate` loads: the largest model, its weights, its tokenizer
    ctx.save_trained(model_config(cfg, largest, vocab_size), f"gpt-{largest}", tokenizer="tokenizer.json")

    n = [r["non_embedding_parameters"] for r in rows]
    losses = [r["held_out_loss"] for r in rows]
    a, b, r2 = log_linear_fit(n, losses)
    drops = [losses[i] - losses[i + 1] for i in range(sizes - 1)]
    weakest = int(np.argmin(drops))
    large = rows[largest]

    plots.curves(ctx.artifact("scaling.png"), {
        "held-out loss": (n, losses),
        f"fit: {a:.2f} {b:+.3f} log10 N (R^2 {r2:.2f})": (n, [a + b * math.log10(x) for x in n])},
        "Held-out loss against model size", xlabel="non-embedding parameters", ylabel="cross-entropy per token (nats)",
        logx=True, marker="o", hlines={f"count-based bigram ({bigram:.2f})": bigram})
    plots.curves(ctx.artifact("cloze.png"), {
        "the passage": (n, [r["cloze_perplexity"] for r in rows]),
        f"passage replaced (last {KEPT_TOKENS} tokens kept)": (n, [r["cloze_perplexity_replaced"] for r in rows])},
        f"Zero-shot cloze ({len(test.words)} held-out passages)", xlabel="non-embedding parameters",
        ylabel="perplexity of the last word", logx=True, logy=True, marker="o")
    plots.curves(ctx.artifact("training.png"), curves, "Training loss, same batches for every size",
                 ylabel="cross-entropy per token (nats)")

    checks = [
        check(f"held-out loss drop from size {weakest + 1} to {weakest + 2} (the smallest of the {sizes - 1} steps up)",
              drops[weakest], ">", 0.0, "no improvement", name="loss_falls_with_size"),
        check(f"R^2 of the line loss = a + b log10(N) (slope b = {b:+.3f} nats per decade)", r2, ">=", MIN_R2,
              "MIN_R2", name="log_linear"),
        check("held-out loss of the weakest size", max(losses), "<", bigram,
              f"a count-based bigram of the training tokens (smoothing {strength:g})", name="beats_bigram",
              control=True),
        check(f"cloze accuracy of the largest model minus the smallest's ({large['cloze_accuracy']:.1%} - "
              f"{rows[0]['cloze_accuracy']:.1%}), in standard errors", paired_z(exact[largest] - exact[0]), ">", MIN_Z,
              "MIN_Z", name="cloze_accuracy_rises"),
        check(f"the largest model's cloze accuracy with the passage minus with it replaced "
              f"({large['cloze_accuracy']:.1%} - {large['cloze_accuracy_replaced']:.1%}), in standard errors",
              large["cloze_passage_accuracy_z"], ">", MIN_Z, "MIN_Z", name="cloze_uses_the_passage"),
    ]
    metrics = {"sizes": rows, "fit": {"intercept": a, "slope_per_decade": b, "r2": r2},
               "bigram": {"held_out_loss": bigram, "smoothing": strength},
               "data": corpus.source, "vocab_size": vocab_size, "tokens_per_character": corpus.tokens_per_character(),
               "train_tokens": sum(e - s for s, e in corpus.blocks(held_out=False)),
               "tokens_seen_per_model": cfg.steps * cfg.batch_size * cfg.context,
               "cloze_passages": len(test.words), "cloze_words_sample": test.words[:20]}
    if cfg.base_model and not cfg.data:
        metrics["base_model"] = base_model_section(ctx, cfg.base_model)
    return Result(checks=checks, metrics=metrics)


def base_model_section(ctx: Run, variant: str) -> dict:
    """The base model's quality record (its cloze scores included), with its curve and samples copied into
    the run for the book."""
    folder = base.entry(variant)
    if ctx.is_main:
        shutil.copyfile(folder / "curve.png", ctx.artifact("base_model_curve.png"))
        shutil.copyfile(folder / "samples.txt", ctx.artifact("base_model_samples.txt"))
    return {k: v for k, v in base.quality(variant).items() if k != "curve"}
