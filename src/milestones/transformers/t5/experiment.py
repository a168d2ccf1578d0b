"""T5's claims in miniature: one text-to-text model for several tasks, and span corruption.

1. Text-to-text (Section 2.4, and the multi-task rows of Table 14). Every task is text in, text out,
   told apart only by a prefix written in the input (one token per prefix, one per letter). Three
   toy tasks on strings of letters:

       "sort: c b h a d"     ->  "a b c d h"
       "descend: c b h a d"  ->  "h d c b a"
       "unique: c b b a"     ->  "a b c"     (each letter once, in order)

   (Tasks that copy by position, reverse or shift, learn far too slowly for the budget: T5 knows
   positions only through relative biases; notes.md.)

   One model learns all three at once from a mixture (each batch draws every example's task at
   random), and three single-task models learn one each. The multi-task model gets the same number
   of examples of each task as a single-task model (three times the steps of one of them; the same
   total steps as the three together). Each is scored by exact match of its greedy output on held-out
   strings. Check `multi_task`: the multi-task model's mean exact match is at most MAX_TASK_GAP below
   the single-task models' mean. As a further reading the multi-task model is also scored after only a
   single-task model's steps (each task then gets a third of the examples); that gap is reported.
   At the tuned learning rate `multi_task` holds for five seeds of six and fails for seed 0, the
   test suite's, by 0.022: it is declared as the expected failure (notes.md).

2. Span corruption (Section 3.3.4, Table 7). Two identical models are pre-trained on Shakespeare
   (characters as tokens) for the same steps: one with T5's span corruption (15% of the tokens dropped
   in spans of mean length 3), one with i.i.d. token masking (15% dropped, each its own span, one
   sentinel each, Table 7's i.i.d. row in the sentinel format). Both are then fine-tuned the same way on
   a downstream task, continuing a held-out passage (input: CONTEXT characters; target: the next
   CONTINUATION characters), and scored by held-out cross-entropy per target character. Checks:

   - `span_matches_iid`: span corruption's downstream loss is at most MAX_LOSS_GAP above i.i.d.'s;
   - `span_pretraining_helps`: the span-corrupted model beats the same model fine-tuned from scratch by
     at least MIN_PRETRAINING_GAIN, so the downstream task measures what pre-training taught. The same
     gain for i.i.d. masking is reported, not checked: it is small and changes sign with the seed
     (notes.md);
   - control `shorter_targets`: span corruption's pre-training targets are shorter (it holds by
     construction: fewer spans, fewer sentinels; the point is how much, and what it saves per step,
     both reported with the processor seconds per pre-training step).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import torch

from milestones.core import Result, Run, check, experiment, plots
from milestones.core.training import evaluating, fused_kernel, train
from milestones.transformers.t5 import pretrain
from milestones.transformers.t5.model import EOS, IGNORE, PAD, T5, T5Config

MAX_TASK_GAP = 0.05  # "about as well": mean exact match of the multi-task model >= single-task's - this
MAX_LOSS_GAP = 0.02  # "reaches the quality": span corruption's downstream loss <= i.i.d.'s + this (nats per char)
MIN_PRETRAINING_GAIN = 0.05  # the span-corrupted model's downstream loss is lower than from scratch by at least this

CLAIM = (f"One text-to-text model told tasks apart by a prefix learns several tasks at once about as well as "
         f"single-task models (mean held-out exact match within MAX_TASK_GAP = {MAX_TASK_GAP} of theirs, "
         f"Section 2.4 and Table 14), and span corruption pre-training reaches the downstream quality of i.i.d. "
         f"token masking (held-out loss within MAX_LOSS_GAP = {MAX_LOSS_GAP} nats) with shorter targets "
         f"(Section 3.3.4, Table 7), span corruption beating no pre-training by MIN_PRETRAINING_GAIN = "
         f"{MIN_PRETRAINING_GAIN} nats.")

TASKS = ("sort", "descend", "unique")


@dataclass
class Config:
    # 1. text-to-text
    letters: int = 8  # the alphabet: a, b, c, ...
    min_length: int = 3
    max_length: int = 7
    task_steps: int = 100  # a single-task model's steps; the multi-task model takes 3x
    task_batch: int = 32
    task_lr: float = 0.0015  # the best of 0.001, 0.0015, 0.003, 0.0045 for both kinds of model (notes.md)
    task_d_model: int = 32
    task_heads: int = 4
    task_d_kv: int = 8
    task_d_ff: int = 64
    task_layers: int = 2
    task_test: int = 200  # held-out strings per task
    # 2. span corruption
    pretrain_steps: int = 150  # each objective's; 300 gave the same verdicts at twice the cold build (notes.md)
    pretrain_batch: int = 32
    window: int = 48  # characters per pre-training window
    noise_density: float = 0.15
    pretrain_lr: float = 0.003
    d_model: int = 32
    heads: int = 4
    d_kv: int = 8
    d_ff: int = 128
    layers: int = 2
    context: int = 32  # downstream: characters read
    continuation: int = 8  # downstream: characters to write
    finetune_steps: int = 60
    finetune_batch: int = 32
    finetune_lr: float = 0.003
    finetune_test: int = 500  # held-out passages


SCALES = {
    "smoke": Config(task_steps=4, task_test=8, pretrain_steps=4, finetune_steps=4, finetune_test=16),
    "quick": Config(),
    # full: longer strings, larger models, longer training; not tuned
    "full": Config(letters=16, max_length=12, task_steps=3000, task_d_model=128, task_d_kv=32, task_d_ff=512,
                   task_layers=4, task_test=1000, pretrain_steps=20000, window=128, d_model=128, d_kv=32,
                   d_ff=512, layers=4, context=96, continuation=16, finetune_steps=2000, finetune_test=2000),
}


@contextlib.contextmanager
def one_thread():
    """Every number comes out the same on one thread, and these models are too small to gain from two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def make_optimizer(model: T5, lr: float) -> torch.optim.Optimizer:
    """Adam (fused: one kernel for all tensors) rather than T5's Adafactor: at this size Adafactor's
    relative steps learned slower in our sweep (notes.md)."""
    return torch.optim.Adam(model.parameters(), lr=lr, fused=fused_kernel(next(model.parameters()).device))


# ------------------------------------------------------------------------------ 1. text-to-text
class Letters:
    """The tasks' vocabulary: PAD, EOS, one token per task prefix ("sort:" and so on, as a subword
    vocabulary would have them), then the letters."""

    def __init__(self, cfg: Config):
        self.letters = "abcdefghijklmnopqrstuvwxyz"[:cfg.letters]
        self.ids = {piece: i + 2 for i, piece in enumerate([f"{task}:" for task in TASKS] + list(self.letters))}

    def __len__(self) -> int:
        return len(self.ids) + 2

    def encode(self, pieces: list[str]) -> torch.Tensor:
        return torch.tensor([self.ids[piece] for piece in pieces] + [EOS])


def solve(task: str, word: str) -> str:
    if task == "sort":
        return "".join(sorted(word))
    if task == "descend":
        return "".join(sorted(word, reverse=True))
    return "".join(sorted(set(word)))  # unique: each letter once, in order


def task_examples(cfg: Config, vocab: Letters, tasks: list[str], generator: torch.Generator):
    """One random string per entry of `tasks`, posed as that task: ids, mask, labels (right-padded)."""
    lengths = torch.randint(cfg.min_length, cfg.max_length + 1, (len(tasks),), generator=generator).tolist()
    words = ["".join(vocab.letters[i] for i in torch.randint(cfg.letters, (n,), generator=generator).tolist())
             for n in lengths]
    inputs = [vocab.encode([f"{task}:", *word]) for task, word in zip(tasks, words)]
    targets = [vocab.encode(list(solve(task, word))) for task, word in zip(tasks, words)]
    ids = pretrain.pad(inputs)
    return ids, (ids != PAD).long(), pretrain.pad(targets, IGNORE)


def exact_match(model: T5, ids: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor) -> float:
    """The share of examples whose greedy output, up to and with EOS, is the target exactly."""
    device = next(model.parameters()).device
    with evaluating(model):
        out = model.generate(ids.to(device), mask.to(device), max_new_tokens=labels.shape[1]).cpu()
    width = labels.shape[1]
    out = torch.cat([out, torch.full((len(out), width - out.shape[1]), PAD)], dim=1)[:, :width]
    return ((out == labels) | (labels == IGNORE)).all(1).float().mean().item()


def task_model(cfg: Config, vocab_size: int) -> T5:
    return T5(T5Config(vocab_size=vocab_size, d_model=cfg.task_d_model, d_kv=cfg.task_d_kv, d_ff=cfg.task_d_ff,
                       layers=cfg.task_layers, decoder_layers=cfg.task_layers, heads=cfg.task_heads, buckets=16,
                       max_distance=32, dropout=0.0))


def seq2seq_loss(net: T5, ids, mask, labels) -> torch.Tensor:
    """The text-to-text loss (`train` gets data_parallel=False: these models are too small to split)."""
    return net.loss(ids, mask, labels)


def text_to_text(cfg: Config, ctx: Run) -> dict:
    vocab = Letters(cfg)
    test_generator = torch.Generator().manual_seed(1_000 + ctx.seed)
    test = {task: task_examples(cfg, vocab, [task] * cfg.task_test, test_generator) for task in TASKS}

    def fit(name: str, tasks: tuple[str, ...], steps: int, offset: int, scores_at: tuple[int, ...]) -> dict:
        ctx.reseed(offset)
        model = task_model(cfg, len(vocab)).to(ctx.device)
        optimizer = make_optimizer(model, cfg.task_lr)
        generator = torch.Generator().manual_seed(ctx.seed * 7919 + offset)

        def batch(i: int):
            picks = torch.randint(len(tasks), (cfg.task_batch,), generator=generator).tolist()
            return task_examples(cfg, vocab, [tasks[p] for p in picks], generator)

        scores, done = {}, 0
        for at in scores_at:
            train(ctx, f"{name}/step{at:05d}", model, optimizer, at - done, batch, seq2seq_loss,
                  log_every=at - done, data_parallel=False)
            done = at
            scores[at] = {task: exact_match(model, *test[task]) for task in tasks}
        return scores

    single = {task: fit(task, (task,), cfg.task_steps, k, (cfg.task_steps,))[cfg.task_steps][task]
              for k, task in enumerate(TASKS)}
    multi = fit("multi", TASKS, 3 * cfg.task_steps, 10, (cfg.task_steps, 3 * cfg.task_steps))
    mean = {"single": sum(single.values()) / len(TASKS),
            "multi": sum(multi[3 * cfg.task_steps].values()) / len(TASKS),
            "multi_same_total_steps": sum(multi[cfg.task_steps].values()) / len(TASKS)}
    return {"single": single, "multi": multi[3 * cfg.task_steps], "multi_same_total_steps": multi[cfg.task_steps],
            "mean": mean, "vocab_size": len(vocab)}


# ------------------------------------------------------------------------------ 2. span corruption
def continuation_examples(cfg: Config, text: pretrain.Text, count: int, held_out: bool,
                          generator: torch.Generator):
    """Passages cut into CONTEXT characters in and the next CONTINUATION characters (+ EOS) out."""
    windows = text.windows(count, cfg.context + cfg.continuation, held_out, generator)
    ids = torch.cat([windows[:, :cfg.context], torch.full((count, 1), EOS)], dim=1)
    labels = torch.cat([windows[:, cfg.context:], torch.full((count, 1), EOS)], dim=1)
    return ids, torch.ones_like(ids), labels


def held_out_loss(model: T5, examples) -> float:
    device = next(model.parameters()).device
    with evaluating(model):
        return model.loss(*(t.to(device) for t in examples)).item()


def span_corruption(cfg: Config, ctx: Run) -> dict:
    text = pretrain.Text()
    test = continuation_examples(cfg, text, cfg.finetune_test, True, torch.Generator().manual_seed(2_000 + ctx.seed))
    rows = {}
    for objective in ("span", "iid", "scratch"):
        pcfg = pretrain.PretrainConfig(
            objective="span" if objective == "scratch" else objective, seed=ctx.seed, steps=cfg.pretrain_steps,
            batch_size=cfg.pretrain_batch, length=cfg.window, noise_density=cfg.noise_density,
            learning_rate=cfg.pretrain_lr, d_model=cfg.d_model, heads=cfg.heads, d_kv=cfg.d_kv, d_ff=cfg.d_ff,
            layers=cfg.layers)
        if objective == "scratch":
            ctx.reseed(20)
            model, measured = T5(pretrain.model_config(pcfg, text.vocab_size)), {}
        else:
            model, measured = pretrain.pretrained(pcfg, text)
        ctx.reseed(21)  # every model fine-tunes on the same passages
        model = model.to(ctx.device)
        optimizer = make_optimizer(model, cfg.finetune_lr)
        generator = torch.Generator().manual_seed(3_000 + ctx.seed)
        start = time.process_time()
        train(ctx, f"finetune-{objective}", model, optimizer, cfg.finetune_steps,
              lambda i: continuation_examples(cfg, text, cfg.finetune_batch, False, generator), seq2seq_loss,
              data_parallel=False)
        rows[objective] = measured | {"downstream_loss": held_out_loss(model, test),
                                      "finetune_seconds": time.process_time() - start}
    return rows


@experiment(CLAIM, Config, SCALES, expected_failures=("multi_task",))  # seed 0 only; notes.md
def run(cfg: Config, ctx: Run) -> Result:
    with one_thread():
        tasks = text_to_text(cfg, ctx)
        objectives = span_corruption(cfg, ctx)
    mean = tasks["mean"]
    short = {"single": "single", "multi": "multi", "multi_same_total_steps": "multi, 1/3"}
    plots.bars(ctx.artifact("text_to_text.png"),
               {f"{task}\n{label}": tasks[kind][task] for task in TASKS for kind, label in short.items()},
               "Held-out exact match: single-task models, the multi-task model (same examples per task), "
               "and after a third of its steps", ylabel="exact match")
    span, iid, scratch = objectives["span"], objectives["iid"], objectives["scratch"]
    plots.bars(ctx.artifact("span_corruption.png"),
               {"span corruption": span["downstream_loss"], "i.i.d. masking": iid["downstream_loss"],
                "no pre-training": scratch["downstream_loss"]},
               "Continuation after fine-tuning", ylabel="held-out cross-entropy (nats per char)")
    checks = [
        check("mean held-out exact match, multi-task model", mean["multi"], ">=", mean["single"] - MAX_TASK_GAP,
              "single-task models' mean - MAX_TASK_GAP", name="multi_task"),
        check("downstream loss after span corruption pre-training", span["downstream_loss"], "<=",
              iid["downstream_loss"] + MAX_LOSS_GAP, "after i.i.d. masking + MAX_LOSS_GAP", name="span_matches_iid"),
        check("downstream loss from scratch minus after span corruption pre-training",
              scratch["downstream_loss"] - span["downstream_loss"], ">=", MIN_PRETRAINING_GAIN,
              "MIN_PRETRAINING_GAIN", name="span_pretraining_helps"),
        check("mean pre-training target length, span corruption", span["mean_target_length"], "<",
              iid["mean_target_length"], "i.i.d. masking's", name="shorter_targets", control=True),
    ]
    metrics = {"text_to_text": tasks, "objectives": objectives,
               "multi_task_gap": mean["single"] - mean["multi"],
               "multi_task_gap_same_total_steps": mean["single"] - mean["multi_same_total_steps"],
               "pretraining_gain": {"span": scratch["downstream_loss"] - span["downstream_loss"],
                                    "iid": scratch["downstream_loss"] - iid["downstream_loss"]},
               "target_length_ratio": span["mean_target_length"] / iid["mean_target_length"],
               "step_time_ratio": span["seconds_per_step"] / iid["seconds_per_step"]}
    return Result(checks=checks, metrics=metrics)
