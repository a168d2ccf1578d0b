"""GPT-3's claim in miniature: a language model learns a new task from examples in its context, with
no gradient step, and a larger model learns more from the same examples.

GPT-3's Figure 1.2 plots accuracy on a task against K, the number of its examples written into the
prompt: zero-shot (K = 0) is poor for every size, accuracy rises with K, and it rises far more steeply
for the 175B model than for the 13B and 1.3B ones; the figures of Section 3 repeat the picture task by
task. The paper calls this in-context learning: the examples are read, not trained on.

Here every training sequence poses a task of its own: a random mapping f from A input symbols to M
output symbols (a random letter substitution), drawn afresh for each sequence, shown as K + 1 pairs

    x_1 f(x_1) x_2 f(x_2) ... x_K f(x_K) x_(K+1)  ->  f(x_(K+1))

and the GPTs of model.py (GPT-3's alternating dense and banded attention) learn to predict every
answer f(x_j) from the j - 1 pairs before it, so one sequence trains every K from 0 to K_max at once.
At test, on fresh mappings never trained on, the answer after k examples is right only if the model
reads them: with k = 0 nothing says what f is and accuracy is at chance, 1 / M. A perfect reader is
right whenever x_(k+1) occurred among the k examples and at chance otherwise, the ceiling

    ceiling(k) = s_k + (1 - s_k) / M,    s_k = 1 - (1 - 1/A)^k,  the chance the query was shown.

A family of sizes (three at quick scale, widths 8, 16 and 32; all two layers, the least that can copy
from context: a first layer that marks each answer with the input before it, and a second that finds
the marked input equal to the query and copies its answer) trains on the same number of sequences,
each size at its own tuned learning rate, from GPT-2's initialisation rescaled to its width
(`scale_initial_weights`). Then:

1. the largest model's accuracy after K_max examples exceeds its zero-shot accuracy by at least
   MIN_FEW_SHOT_GAIN (the examples teach the task in context);
2. the largest model gains more from k = 0 to k = K_max than the smallest one (Figure 1.2's steeper
   curve for the larger model).

A control checks that zero-shot accuracy is at chance, as it must be for mappings never seen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from milestones.core import Result, Run, check, experiment, plots
from milestones.core.training import evaluating, train
from milestones.transformers.gpt2.base import warmup_cosine  # GPT-2's schedule, unchanged
from milestones.transformers.gpt3.model import GPT3, GPT3Config

MIN_FEW_SHOT_GAIN = 0.3  # accuracy after K_max examples minus zero-shot accuracy, for the largest model
CHANCE_TOLERANCE = 0.05  # the control: zero-shot accuracy within this of 1 / M

CLAIM = (f"Shown k examples of a task it has never seen (a fresh random symbol mapping) in its context, a GPT's "
         f"accuracy on a query rises from chance at zero-shot to few-shot: for the largest model by at least "
         f"MIN_FEW_SHOT_GAIN = {MIN_FEW_SHOT_GAIN} from k = 0 to the largest k, and by more than for the "
         f"smallest model (the paper's Figure 1.2 and the in-context learning curves of Section 3).")


@dataclass
class Config:
    inputs: int = 8  # A: input symbols of a task
    outputs: int = 8  # M: output symbols; zero-shot chance is 1 / M
    examples: int = 12  # K_max: examples before the last query of a sequence
    batch_size: int = 32  # sequences (tasks) per step
    steps: int = 600  # optimizer steps, the same for every size
    layers: tuple[int, ...] = (2, 2, 2)  # the sizes: layers, width and learning rate of each
    widths: tuple[int, ...] = (8, 16, 32)
    learning_rates: tuple[float, ...] = (8e-3, 4e-3, 2e-3)
    head_size: int = 16  # channels per attention head (a narrower model has one head of its width)
    band: int = 4  # w of the banded layers (GPT-3's alternating dense and banded attention)
    fan_in_init: bool = True  # initial weights scaled by sqrt(768 / width) (see `scale_initial_weights`)
    warmup: float = 0.1  # the share of the steps of linear warm-up, then a cosine decay to a tenth
    weight_decay: float = 0.1
    test_tasks: int = 2000  # fresh mappings scored at every k


SCALES = {
    "smoke": Config(steps=4, batch_size=8, examples=6, widths=(8, 16, 16), test_tasks=64),
    "quick": Config(),
    # full: more symbols and examples, deeper and wider models, a longer run; not tuned
    "full": Config(inputs=26, outputs=26, examples=48, batch_size=128, steps=5000, layers=(2, 4, 8),
                   widths=(64, 128, 256), learning_rates=(3e-3, 2e-3, 1e-3), head_size=32, band=8, test_tasks=10000),
}
GPT2_WIDTH = 768  # the width at which GPT-2's initial standard deviation 0.02 was chosen


def random_mappings(cfg: Config, count: int, generator: torch.Generator | None = None,
                    exclude: set[tuple[int, ...]] = frozenset()) -> torch.Tensor:
    """`count` random tasks f: {0..A-1} -> {0..M-1}, one row (f(0), ..., f(A-1)) each, none of them in `exclude`."""
    mapping = torch.randint(cfg.outputs, (count, cfg.inputs), generator=generator)
    while seen := [row for row, f in enumerate(mapping.tolist()) if tuple(f) in exclude]:
        mapping[seen] = torch.randint(cfg.outputs, (len(seen), cfg.inputs), generator=generator)
    return mapping


def tasks(cfg: Config, mapping: torch.Tensor, generator: torch.Generator | None = None):
    """One sequence per task (row of `mapping`): tokens (count, 2K + 1), inputs 0..A-1 and outputs A..A+M-1,
    interleaved x_1 f(x_1) ... x_K f(x_K) x_(K+1); answers (count, K + 1), the token of each f(x_j)."""
    x = torch.randint(cfg.inputs, (len(mapping), cfg.examples + 1), generator=generator)
    answers = cfg.inputs + mapping.gather(1, x)  # (count, K + 1)
    tokens = torch.stack([x, answers], dim=2).flatten(1)[:, :-1]  # x_1 y_1 ... x_(K+1): the last answer is hidden
    return tokens, answers


def scale_initial_weights(model: GPT3, width: int) -> None:
    """GPT-2's initial standard deviation, 0.02 (0.02 / sqrt(2L) for the residual projections), was chosen for
    width 768; a matrix's inputs then sum to a signal of std 0.02 sqrt(768) = 0.55. Keep that at any width C:
    multiply every weight matrix and embedding by sqrt(768 / C) (std 0.098 at width 32, 0.196 at width 8)."""
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.mul_(math.sqrt(GPT2_WIDTH / width))


def answer_loss(net, tokens: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of every answer, predicted at the position of its input (even positions)."""
    logits = net(tokens)[:, 0::2].float()  # (B, K + 1, V)
    return F.cross_entropy(logits.flatten(0, 1), answers.flatten())


def accuracy_by_examples(model: GPT3, tokens: torch.Tensor, answers: torch.Tensor, batch: int = 500) -> list[float]:
    """The share of answers right (greedy) after k = 0, 1, ..., K examples, over all sequences."""
    device = next(model.parameters()).device
    right = []
    with evaluating(model):
        for i in range(0, len(tokens), batch):
            logits = model(tokens[i:i + batch].to(device))[:, 0::2]
            right.append((logits.argmax(-1).cpu() == answers[i:i + batch]).float())
    return torch.cat(right).mean(0).tolist()


def ceiling(cfg: Config, k: int) -> float:
    """A perfect in-context learner's accuracy after k examples (module docstring)."""
    shown = 1 - (1 - 1 / cfg.inputs) ** k
    return shown + (1 - shown) / cfg.outputs


@experiment(CLAIM, Config, SCALES)
def run(cfg: Config, ctx: Run) -> Result:
    sizes = len(cfg.widths)
    if sizes < 2 or not len(cfg.layers) == len(cfg.learning_rates) == sizes:
        raise ValueError("layers, widths and learning_rates need one entry per model size, at least two sizes")
    generator = torch.Generator().manual_seed(10_000 + ctx.seed)
    test_mappings = random_mappings(cfg, cfg.test_tasks, generator)
    test = tasks(cfg, test_mappings, generator)
    unseen = set(map(tuple, test_mappings.tolist()))  # training draws only other tasks

    def batch(i: int):
        return tasks(cfg, random_mappings(cfg, cfg.batch_size, exclude=unseen))

    ks = list(range(cfg.examples + 1))
    rows = []
    for size in range(sizes):
        ctx.reseed(size)  # each size starts from its own seed and sees its own stream of tasks
        config = GPT3Config(vocab_size=cfg.inputs + cfg.outputs, block_size=2 * cfg.examples + 1,
                            n_layer=cfg.layers[size], n_embd=cfg.widths[size],
                            n_head=max(1, cfg.widths[size] // cfg.head_size), band=cfg.band,
                            embedding_dropout=0.0, attention_dropout=0.0, residual_dropout=0.0)
        model = GPT3(config)
        if cfg.fan_in_init:
            scale_initial_weights(model, config.n_embd)
        decay = [p for p in model.parameters() if p.dim() >= 2]
        rest = [p for p in model.parameters() if p.dim() < 2]
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                       {"params": rest, "weight_decay": 0.0}],
                                      lr=cfg.learning_rates[size], betas=(0.9, 0.95))
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(cfg.steps, cfg.warmup))
        log = train(ctx, f"gpt-{size}", model, optimizer, cfg.steps, batch,
                    answer_loss, clip=1.0, schedule=schedule)
        accuracy = accuracy_by_examples(model, *test)
        rows.append({"layers": config.n_layer, "width": config.n_embd, "heads": config.n_head,
                     "parameters": model.num_parameters(), "learning_rate": cfg.learning_rates[size],
                     "train_loss": log.last("loss"), "accuracy_by_k": accuracy,
                     "gain": accuracy[-1] - accuracy[0]})

    small, large = rows[0], rows[-1]
    chance = 1 / cfg.outputs
    curves = {f"{r['layers']} x {r['width']} ({r['parameters'] / 1e3:.0f}K parameters)": (ks, r["accuracy_by_k"])
              for r in rows}
    curves["a perfect in-context learner"] = (ks, [ceiling(cfg, k) for k in ks])
    plots.curves(ctx.artifact("in_context.png"), curves, "Accuracy on fresh tasks against examples in context",
                 xlabel="examples in context, k", ylabel="accuracy on the query", hlines={"chance": chance},
                 marker="o")
    K = cfg.examples
    checks = [
        check(f"largest model: accuracy after k = {K} examples minus zero-shot accuracy", large["gain"], ">=",
              MIN_FEW_SHOT_GAIN, "MIN_FEW_SHOT_GAIN", name="few_shot_beats_zero_shot"),
        check(f"largest model's gain from k = 0 to k = {K}", large["gain"], ">", small["gain"],
              "the smallest model's gain", name="larger_gains_more"),
        check("largest distance of a zero-shot accuracy from chance (1 / M)",
              max(abs(r["accuracy_by_k"][0] - chance) for r in rows), "<=", CHANCE_TOLERANCE, "CHANCE_TOLERANCE",
              name="zero_shot_at_chance", control=True),
    ]
    metrics = {"sizes": rows, "chance": chance, "ceiling_by_k": [ceiling(cfg, k) for k in ks],
               "tasks_seen_per_model": cfg.steps * cfg.batch_size, "test_tasks": cfg.test_tasks}
    return Result(checks=checks, metrics=metrics)
