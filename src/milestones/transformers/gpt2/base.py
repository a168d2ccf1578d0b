"""The base model: a GPT-2 pretrained on the works of Shakespeare, built once per machine and shared.

Every paper after GPT-2 that starts from a language model (LoRA, RLHF, InstructGPT, DPO, GRPO, the
modern stack's comparisons) starts from this one, so its claims are measured on a model that writes
recognisable text, not on noise. gpt2 owns the recipe; the shared cache (milestones.core.cache) keeps
the result, keyed by the recipe and the code that trains it:

    pretrained("base")    the model, its tokenizer and its quality record   (about 5 minutes, once)
    pretrained("small")   the same recipe shrunk, for the smoke scale of later papers  (seconds)

The recipe is GPT-2's architecture unchanged (model.py) at the size that learns most per CPU second
here, chosen by measurement (notes.md, "The base model"): a 4,096-token byte-level BPE (3.1
characters a token on Shakespeare, against 1 for characters: each step reads three times the text),
a context of 256 tokens (about 780 characters, a few speeches), 4 layers of width 128 for 1,500 steps
(6.1M tokens, 3.9 passes over the training text; the held-out loss still falls at the end, so no
dropout), AdamW with a short warm-up and a cosine decay, and bf16 autocast where the CPU multiplies
bf16 matrices in AMX tiles (2.5-3x faster than fp32 there; fp32 elsewhere).

Quality is measured, not eyeballed, and written into the entry's `quality.json`:
- held-out loss in nats per character (the loss per token times tokens per character: a number that
  does not depend on the tokenizer), and its curve against training wall time (`curve.png`);
- samples at `milestones generate`'s default temperature 0.8 (`samples.txt`), and the share of their
  words (letters only, lower-cased) that occur in the training text, beside the same share for the
  held-out text itself (the ceiling: real text also holds words the training text lacks). The samples
  continue passages of held-out text, as a reader's prompt would be continued; the share for new
  documents (the model's own choice of where to start: a title page and a cast list, often) is kept too;
- the zero-shot cloze of data.py on passages of its full context, with the control that replaces each
  passage but its last KEPT_TOKENS tokens (gpt2's experiment reports it beside its family).
The entry folder is laid out as a run folder (model.json, tokenizer.json, checkpoints/), so
`milestones generate` reads it as it reads a run.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import regex
import torch
import torch.nn.functional as F

from milestones.core import cache, plots
from milestones.core.run import Run, cpu_has_amx, keep_freed_memory
from milestones.core.training import evaluating, fused_kernel, train
from milestones.transformers.gpt2 import data
from milestones.transformers.gpt2 import model as gpt_model
from milestones.transformers.gpt2 import tokenizer as bpe
from milestones.transformers.gpt2.data import Cloze, Corpus, cloze, shakespeare_corpus
from milestones.transformers.gpt2.model import GPT, GPTConfig
from milestones.transformers.gpt2.tokenizer import BPETokenizer


@dataclass(frozen=True)
class Recipe:
    vocab_size: int  # BPE tokens, <|endoftext|> included
    context: int  # tokens per training window, and the model's longest context
    n_layer: int
    n_embd: int
    batch_size: int  # windows per step
    steps: int
    learning_rate: float  # the peak, after warm-up
    head_size: int = 64  # channels per attention head (GPT-2's)
    warmup: float = 0.05  # share of the steps over which the learning rate rises
    weight_decay: float = 0.1
    curve_points: int = 12  # held-out evaluations along the way (on curve_windows windows each)
    curve_windows: int = 48
    held_out_windows: int = 320  # the final held-out score: about every held-out token once
    samples: int = 32  # samples of sample_tokens tokens for the word share (continuing held-out text; new documents)
    sample_tokens: int = 200
    cloze_passages: int = 500  # the zero-shot cloze of data.py, on passages of the full context


RECIPES = {
    "base": Recipe(vocab_size=4096, context=256, n_layer=4, n_embd=128, batch_size=16, steps=1500,
                   learning_rate=3e-3),
    "small": Recipe(vocab_size=512, context=64, n_layer=2, n_embd=64, batch_size=16, steps=150,
                    learning_rate=3e-3, head_size=32, curve_points=3, curve_windows=16, held_out_windows=32,
                    samples=4, sample_tokens=50),
}
SAMPLE_TEMPERATURE = 0.8  # `milestones generate`'s default
SHOWN_PROMPTS = ("ROMEO.\n", "KING HENRY.\n", "HAMLET.\n", "")  # the samples written to samples.txt
KEPT_TOKENS = 8  # the cloze control keeps the last tokens before the target word (its immediate context)


def model_config(recipe: Recipe, vocab_size: int) -> GPTConfig:
    return GPTConfig(vocab_size=vocab_size, block_size=recipe.context, n_layer=recipe.n_layer,
                     n_head=max(1, recipe.n_embd // recipe.head_size), n_embd=recipe.n_embd,
                     embedding_dropout=0.0, attention_dropout=0.0, residual_dropout=0.0)


def next_token_loss(net, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of every position's next token (the logits in fp32 under bf16 autocast)."""
    return F.cross_entropy(net(x).float().flatten(0, 1), y.flatten())


def warmup_cosine(steps: int, warmup: float):
    """The multiplier of the learning rate at step i: linear warm-up, then a cosine down to a tenth."""
    rise = max(1, round(warmup * steps))
    return lambda i: min(1.0, (i + 1) / rise) * (0.1 + 0.45 * (1 + math.cos(math.pi * min(i, steps) / steps)))


def adamw(model: GPT, learning_rate: float, weight_decay: float, device: torch.device) -> torch.optim.AdamW:
    """GPT-2's AdamW (beta2 0.95): matrices and embeddings decay, biases and norms do not."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}],
                             lr=learning_rate, betas=(0.9, 0.95), fused=fused_kernel(device))


def held_out_loss(model: GPT, held_out: tuple[torch.Tensor, torch.Tensor], batch: int = 32) -> float:
    """Mean cross-entropy per token over the held-out windows, in the model's own precision."""
    device = next(model.parameters()).device
    x, y = held_out
    with evaluating(model):
        total = sum(next_token_loss(model, x[i:i + batch].to(device), y[i:i + batch].to(device)).item()
                    * len(x[i:i + batch]) for i in range(0, len(x), batch))
    return total / len(x)


def cloze_outcomes(model: GPT, test: Cloze, inputs: torch.Tensor, batch: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Per passage: -log p(target word | inputs), summed over its tokens, and whether greedy decoding gets
    every token of it right."""
    device = next(model.parameters()).device
    word_nats, exact = [], []
    with evaluating(model):
        for i in range(0, len(inputs), batch):
            logits = model(inputs[i:i + batch].to(device)).float()
            targets, mask = test.targets[i:i + batch].to(device), test.target_mask[i:i + batch].to(device)
            nats = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")  # (P, T)
            word_nats.append((nats * mask).sum(1).cpu())
            exact.append(((logits.argmax(-1) == targets) | ~mask).all(1).float().cpu())
    return torch.cat(word_nats), torch.cat(exact)


def paired_z(differences: torch.Tensor) -> float:
    """The mean of paired differences in standard errors (0 when they are all equal: no evidence either way)."""
    standard_error = differences.std().item() / math.sqrt(len(differences))
    return differences.mean().item() / standard_error if standard_error > 0 else 0.0


def cloze_scores(model: GPT, test: Cloze) -> tuple[dict, torch.Tensor]:
    """The cloze scores of a model, with the passages as they are and replaced (`Cloze.replaced`), and its
    per-passage exact matches (for comparing models on the same passages)."""
    nats, exact = cloze_outcomes(model, test, test.inputs)
    nats_replaced, exact_replaced = cloze_outcomes(model, test, test.replaced(KEPT_TOKENS))
    return {"cloze_perplexity": math.exp(nats.mean().item()), "cloze_accuracy": exact.mean().item(),
            "cloze_perplexity_replaced": math.exp(nats_replaced.mean().item()),
            "cloze_accuracy_replaced": exact_replaced.mean().item(),
            "cloze_passage_accuracy_z": paired_z(exact - exact_replaced),
            # what the passage tells of the word in log-likelihood: a finer measure than exact matches
            "cloze_passage_nats_z": paired_z(nats_replaced - nats)}, exact


def words(text: str) -> list[str]:
    """The words of a text: runs of letters, lower-cased."""
    return regex.findall(r"\p{L}+", text.lower())


def real_word_share(text: str, vocabulary: set[str]) -> float:
    """The share of the text's words that occur in `vocabulary` (the training text's words)."""
    found = words(text)
    return sum(w in vocabulary for w in found) / max(1, len(found))


def continuations(model: GPT, tokenizer: BPETokenizer, prompts: torch.Tensor, tokens: int, seed: int) -> list[str]:
    """The text each row of `prompts` (B, T) continues with, `tokens` tokens drawn at temperature 0.8 as
    `milestones generate` draws them, in one batch."""
    device = next(model.parameters()).device
    generator = torch.Generator(device).manual_seed(seed)
    with evaluating(model):
        new = torch.stack(list(model.generate(prompts.to(device), tokens, temperature=SAMPLE_TEMPERATURE,
                                              generator=generator)), dim=1)  # (B, tokens)
    return [tokenizer.decode(row.tolist()) for row in new]


def sample(model: GPT, tokenizer: BPETokenizer, prompt: str, tokens: int, seed: int, count: int = 1) -> list[str]:
    """`count` continuations of `prompt` (a new document when empty)."""
    ids = tokenizer.encode(prompt) or [tokenizer.end_of_text]
    return continuations(model, tokenizer, torch.tensor([ids] * count), tokens, seed)


def entry(variant: str = "base") -> Path:
    """The cache folder of a pretrained variant, building it first if the cache lacks it."""
    recipe = RECIPES[variant]
    code = [sys.modules[__name__], gpt_model, bpe, data]
    return cache.cached(f"gpt2-{variant}", asdict(recipe) | {"bf16": cpu_has_amx()}, code, _build)


def pretrained(variant: str = "base", device: str | torch.device = "cpu") -> tuple[GPT, BPETokenizer, dict]:
    """The pretrained GPT (eval mode, fp32, on `device`), its tokenizer and its quality record."""
    from milestones.transformers.gpt2.generate import load  # generate.py reads any run folder; this entry is one

    model, tokenizer = load(entry(variant), torch.device(device))
    return model, tokenizer, quality(variant)


def quality(variant: str = "base") -> dict:
    """The quality record of a pretrained variant (quality.json), building it first if the cache lacks it."""
    return json.loads((entry(variant) / "quality.json").read_text())


def _build(folder: Path, config: dict) -> None:
    recipe = Recipe(**{k: v for k, v in config.items() if k != "bf16"})
    corpus = shakespeare_corpus(recipe.vocab_size)
    print(f"Pretraining the Shakespeare GPT ({recipe.n_layer} layers, width {recipe.n_embd}, {recipe.steps} steps): "
          "once per machine, kept in the cache", file=sys.stderr)
    keep_freed_memory()  # the logits of a step (67 MB) reuse the heap: 1.4x faster (core/run.py)
    ctx = Run(folder, cpu_bf16=config["bf16"])
    corpus.tokenizer.save(folder / "tokenizer.json")
    config_of_model = model_config(recipe, len(corpus.tokenizer))
    model = GPT(config_of_model)
    optimizer = adamw(model, recipe.learning_rate, recipe.weight_decay, ctx.device)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(recipe.steps, recipe.warmup))
    per_character = corpus.tokens_per_character()
    probe = corpus.held_out(recipe.context, recipe.curve_windows)
    start, evaluating_s = time.perf_counter(), 0.0

    def evaluate() -> dict:  # a point of the curve; its own time is not training time
        nonlocal evaluating_s
        began = time.perf_counter()
        train_s = began - start - evaluating_s
        with ctx.autocast():
            loss = held_out_loss(model, probe)
        evaluating_s += time.perf_counter() - began
        return {"held_out_nats_per_char": loss * per_character, "train_s": train_s}

    log = train(ctx, "base", model, optimizer, recipe.steps,
                lambda i: corpus.batch(recipe.batch_size, recipe.context), next_token_loss, clip=1.0,
                schedule=schedule, log_every=max(1, recipe.steps // recipe.curve_points), evaluate=evaluate)
    train_s = time.perf_counter() - start - evaluating_s
    ctx.save_trained(config_of_model, "base", tokenizer="tokenizer.json")
    curve = list(zip(log.series("train_s")[1], log.series("held_out_nats_per_char")[1]))
    _measure(folder, ctx, model, corpus, recipe, per_character, train_s, curve)


def _measure(folder: Path, ctx: Run, model: GPT, corpus: Corpus, recipe: Recipe, per_character: float,
             train_s: float, curve: list[tuple[float, float]]) -> None:
    """Write quality.json, curve.png and samples.txt: what the model is worth, in numbers and in text."""
    loss = held_out_loss(model, corpus.held_out(recipe.context, recipe.held_out_windows))  # in fp32, as it is used
    vocabulary = set(words(corpus.text(held_out=False)))
    passages, _ = corpus.held_out(recipe.context // 4, recipe.samples)  # held-out text to continue, mid-play
    continued = continuations(model, corpus.tokenizer, passages, recipe.sample_tokens, seed=0)
    documents = sample(model, corpus.tokenizer, "", recipe.sample_tokens, seed=0, count=recipe.samples)
    shown = [(prompt, sample(model, corpus.tokenizer, prompt, recipe.sample_tokens, seed=1)[0])
             for prompt in SHOWN_PROMPTS]
    quality = {
        "held_out_loss_per_token": loss, "tokens_per_character": per_character,
        "held_out_nats_per_char": loss * per_character,
        "word_share": real_word_share("\n".join(continued), vocabulary),
        "word_share_new_documents": real_word_share("\n".join(documents), vocabulary),
        "held_out_text_word_share": real_word_share(corpus.text(held_out=True), vocabulary),
        "train_s": train_s, "threads": torch.get_num_threads(), "bf16": ctx.use_bf16,
        "parameters": model.num_parameters(), "tokens_seen": recipe.steps * recipe.batch_size * recipe.context,
        "curve": [{"train_s": round(t, 2), "held_out_nats_per_char": round(v, 4)} for t, v in curve],
    } | cloze_scores(model, cloze(corpus, recipe.context, recipe.cloze_passages))[0]
    (folder / "quality.json").write_text(json.dumps(quality, indent=2) + "\n")
    (folder / "samples.txt").write_text("".join(f"--- sample {k} (prompt {prompt!r})\n{prompt}{text}\n\n"
                                                for k, (prompt, text) in enumerate(shown)))
    plots.curves(folder / "curve.png", {"held-out (probe windows)": tuple(map(list, zip(*curve)))},
                 "The base model: held-out loss against training time", xlabel="training wall time (s)",
                 ylabel="nats per character")

