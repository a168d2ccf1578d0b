"""GPT-2's claims in miniature: a bigger language model is a better one, on held-out text and on a
task it was never trained for.

GPT-2 trained four sizes (117M to 1,542M parameters) on the same text and found that held-out
perplexity fell steadily with size (Table 3, Figure 4), and so did the zero-shot scores: on LAMBADA
(predict a passage's last word, which needs the passage) accuracy rose from 45.99% to 63.24% and the
target word's perplexity fell from 35.13 to 8.63 (Table 3).

Here a family of GPTs (model.py) of growing size learns Shakespeare (or the user's `--set data=PATH`)
with byte-level BPE (tokenizer.py), every size on the same batches for the same number of steps, each
at its own learning rate (the best of a sweep made while writing this, as the paper tuned each size's
rate on held-out text; notes.md gives the sweep). Then:

1. held-out loss (cross-entropy per token on 5% of the corpus, never trained on) falls with
   every step up in size, and about linearly in log(parameters): a least-squares line
   loss = a + b log10(N) explains at least MIN_R2 of its variance across the sizes;
2. the cloze test of data.py, LAMBADA in miniature (the last word of a held-out passage that already
   occurred in it, common words excluded), zero-shot: the perplexity of the target word falls from the
   smallest model to the largest, and the share of target words predicted exactly (greedy, every
   token right) rises.

Parameters N count every weight, the embeddings included, as the paper's Table 2 does.

Beside the family, the run scores the base model (base.py, the GPT pretrained once for every later
paper, built on first use): its held-out nats per character, the share of real words in its samples,
its cloze scores, and its curve and samples, copied into the run for the book.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from milestones.core import Result, Run, check, experiment, plots
from milestones.core.errors import UserError
from milestones.core.training import evaluating, train
from milestones.transformers.gpt2 import base
from milestones.transformers.gpt2.base import adamw, held_out_loss, next_token_loss, warmup_cosine
from milestones.transformers.gpt2.data import Corpus, cloze, shakespeare_corpus, text_file_corpus
from milestones.transformers.gpt2.model import GPT, GPTConfig

MIN_R2 = 0.8  # "about linearly in log parameters": the line explains at least this share of the variance
LARGEST_SHAKESPEARE_VOCAB = 16384  # more BPE tokens than this need more text than Shakespeare's 5 MB

CLAIM = (f"Held-out language-modelling loss falls with every step up in model size, about linearly in log "
         f"parameters (a line in log10 N explains at least MIN_R2 = {MIN_R2} of its variance), and a zero-shot "
         f"LAMBADA-style cloze improves with size: lower perplexity of the passage's last word and more last "
         f"words predicted exactly (the paper's Table 3 and Figure 4).")


@dataclass
class Config:
    data: str = ""  # a UTF-8 text file to learn instead of Shakespeare (tokenized once, into the cache)
    vocab_size: int = 512  # BPE tokens, <|endoftext|> included (GPT-2: 50,257)
    context: int = 64  # tokens per training window (GPT-2: 1,024)
    batch_size: int = 32  # windows per step, over all processes
    steps: int = 300  # optimizer steps, the same for every size
    layers: tuple[int, ...] = (1, 1, 1)  # the family: layers, width and learning rate of each size
    widths: tuple[int, ...] = (4, 8, 16)
    learning_rates: tuple[float, ...] = (8e-2, 1.6e-1, 4e-2)
    head_size: int = 16  # channels per attention head (GPT-2: 64)
    warmup: float = 0.1  # the share of the steps over which the learning rate rises linearly, then cosine decay
    weight_decay: float = 0.1
    dropout: float = 0.0
    held_out_windows: int = 256  # windows of the held-out text scored for the loss
    cloze_passages: int = 400
    base_model: str = "base"  # the pretrained variant scored beside the family (base.py); "" for none
    compile: bool = False  # torch.compile each model (for a GPU; compiling costs more than it saves here)


SCALES = {
    "smoke": Config(steps=4, layers=(1, 1, 1), widths=(8, 16, 32), learning_rates=(1e-2, 1e-2, 1e-2),
                    head_size=8, held_out_windows=8, cloze_passages=8, context=32, batch_size=4, base_model="small"),
    "quick": Config(),
    # full: GPT-2 small (124M) and two smaller models with GPT-2's tokenizer size and context, for GPUs
    # under torchrun, on a corpus the user provides (--set data=PATH); not tuned.
    "full": Config(vocab_size=50257, context=1024, batch_size=64, steps=20000, layers=(4, 8, 12),
                   widths=(256, 512, 768), learning_rates=(1e-3, 8e-4, 6e-4), head_size=64, dropout=0.1,
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


def cloze_scores(model: GPT, test, batch: int = 64) -> dict:
    """The cloze target words' perplexity and exact-match accuracy."""
    device = next(model.parameters()).device
    word_nats, exact = [], []
    with evaluating(model):
        for i in range(0, len(test.inputs), batch):
            logits = model(test.inputs[i:i + batch].to(device)).float()
            targets, mask = test.targets[i:i + batch].to(device), test.target_mask[i:i + batch].to(device)
            nats = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")  # (P, T)
            word_nats.append((nats * mask).sum(1).cpu())  # -log p(word | passage), summed over its tokens
            exact.append(((logits.argmax(-1) == targets) | ~mask).all(1).cpu())
    if not word_nats:  # a text with no cloze passage (data.cloze)
        return {"cloze_perplexity": math.nan, "cloze_accuracy": math.nan}
    return {"cloze_perplexity": math.exp(torch.cat(word_nats).mean().item()),
            "cloze_accuracy": torch.cat(exact).float().mean().item()}


def log_linear_fit(parameters: list[int], losses: list[float]) -> tuple[float, float, float]:
    """Least squares loss = a + b log10(N) -> (a, b, R^2)."""
    x, y = np.log10(parameters), np.asarray(losses)
    b, a = np.polyfit(x, y, 1)
    residual = y - (a + b * x)
    return float(a), float(b), float(1 - residual.var() / y.var())


@experiment(CLAIM, Config, SCALES, expected_failures=("cloze_accuracy_rises",))
def run(cfg: Config, ctx: Run) -> Result:
    sizes = len(cfg.widths)
    if sizes < 2 or not len(cfg.layers) == len(cfg.learning_rates) == sizes:
        raise ValueError("layers, widths and learning_rates need one entry per model size, at least two sizes")
    corpus = load_corpus(cfg)
    vocab_size = len(corpus.tokenizer)
    held_out = corpus.held_out(cfg.context, cfg.held_out_windows)
    test = cloze(corpus, cfg.context, cfg.cloze_passages)
    if ctx.is_main:
        corpus.tokenizer.save(ctx.artifact("tokenizer.json"))

    rows, curves = [], {}
    for size in range(sizes):
        ctx.reseed(size)  # each size starts from its own seed, whatever the sizes before it drew
        config = model_config(cfg, size, vocab_size)
        model = GPT(config)
        if cfg.compile:
            model.compile()  # in place: the state dict keeps its names, so checkpoints stay loadable
        optimizer = adamw(model, cfg.learning_rates[size], cfg.weight_decay, ctx.device)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(cfg.steps, cfg.warmup))
        log = train(ctx, f"gpt-{size}", model, optimizer, cfg.steps,
                    lambda i: corpus.batch(cfg.batch_size, cfg.context), next_token_loss, clip=1.0,
                    schedule=schedule)
        row = {"layers": config.n_layer, "width": config.n_embd, "heads": config.n_head,
               "parameters": model.num_parameters(), "learning_rate": cfg.learning_rates[size],
               "train_loss": log.last("loss"), "held_out_loss": held_out_loss(model, held_out, batch=64)} \
            | cloze_scores(model, test)
        rows.append(row)
        curves[f"{config.n_layer} x {config.n_embd} ({row['parameters'] / 1e3:.0f}K)"] = log.series("loss")
    largest = sizes - 1
    # what `milestones generate` loads: the largest model, its weights, its tokenizer
    ctx.save_trained(model_config(cfg, largest, vocab_size), f"gpt-{largest}", tokenizer="tokenizer.json")

    parameters = [r["parameters"] for r in rows]
    losses = [r["held_out_loss"] for r in rows]
    a, b, r2 = log_linear_fit(parameters, losses)
    drops = [losses[i] - losses[i + 1] for i in range(sizes - 1)]
    weakest = int(np.argmin(drops))
    small, large = rows[0], rows[largest]

    plots.curves(ctx.artifact("scaling.png"), {
        "held-out loss": (parameters, losses),
        f"fit: {a:.2f} {b:+.2f} log10 N (R^2 {r2:.2f})": (parameters, [a + b * math.log10(n) for n in parameters])},
        "Held-out loss against model size", xlabel="parameters", ylabel="cross-entropy per token (nats)",
        logx=True, marker="o")
    if test.words:
        perplexities = [r["cloze_perplexity"] for r in rows]
        plots.curves(ctx.artifact("cloze.png"), {"target-word perplexity": (parameters, perplexities)},
                     f"Zero-shot cloze ({len(test.words)} held-out passages)", xlabel="parameters",
                     ylabel="perplexity of the last word", logx=True, logy=True, marker="o")
    plots.curves(ctx.artifact("training.png"), curves, "Training loss, same batches for every size",
                 ylabel="cross-entropy per token (nats)")

    checks = [
        check(f"held-out loss drop from size {weakest + 1} to {weakest + 2} (the smallest of the {sizes - 1} steps up)",
              drops[weakest], ">", 0.0, "no improvement", name="loss_falls_with_size"),
        check("R^2 of the line loss = a + b log10(N)", r2, ">=", MIN_R2, "MIN_R2", name="log_linear"),
        check(f"cloze perplexity of the last word, largest model ({large['parameters']:,} parameters)",
              large["cloze_perplexity"], "<", small["cloze_perplexity"],
              f"the smallest model's ({small['parameters']:,} parameters)", name="cloze_perplexity_falls"),
        check("cloze accuracy (last words predicted exactly), largest model", large["cloze_accuracy"], ">",
              small["cloze_accuracy"], "the smallest model's", name="cloze_accuracy_rises"),
    ]
    metrics = {"sizes": rows, "fit": {"intercept": a, "slope_per_decade": b, "r2": r2},
               "data": corpus.source, "vocab_size": vocab_size,
               "train_tokens": sum(e - s for s, e in corpus.blocks(held_out=False)),
               "tokens_seen_per_model": cfg.steps * cfg.batch_size * cfg.context,
               "cloze_passages": len(test.words), "cloze_words_sample": test.words[:20]}
    if cfg.base_model and not cfg.data:
        metrics["base_model"] = base_model_section(ctx, cfg)
    return Result(checks=checks, metrics=metrics)


def base_model_section(ctx: Run, cfg: Config) -> dict:
    """The base model's quality record and its cloze scores (the same rule, cut with its own tokenizer), with
    its curve and samples copied into the run for the book."""
    model, _, quality = base.pretrained(cfg.base_model, ctx.device)
    folder = base.entry(cfg.base_model)
    if ctx.is_main:
        shutil.copyfile(folder / "curve.png", ctx.artifact("base_model_curve.png"))
        shutil.copyfile(folder / "samples.txt", ctx.artifact("base_model_samples.txt"))
    test = cloze(shakespeare_corpus(model.config.vocab_size), cfg.context, cfg.cloze_passages)
    return {k: v for k, v in quality.items() if k != "curve"} | cloze_scores(model, test)
