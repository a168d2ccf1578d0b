"""Layer normalization's claims, in miniature.

1. Table 1 of the paper: which transformations of the weights and the data leave the output of a
   normalized layer unchanged. For layer norm and batch norm we apply each of the table's six
   transformations to a random layer h = N(W x) and measure, in float64, how far the output moves;
   every "invariant" cell must move by rounding error only, every "not invariant" cell by a lot.
2. A batch of one: a layer-normalized example's output does not depend on the rest of its batch
   (batch norm's does, and in training mode it refuses a batch of one), so an MLP with layer norm
   trains with minibatches of a single example.
3. Recurrent nets (the paper's Section 3.1 and its experiments): a tanh RNN reading 8x8 digits one
   pixel at a time (64 steps) learns faster with layer normalization of its summed inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from milestones.core import Result, Run, check, experiment, plots
from milestones.core.data import load_digits
from milestones.core.training import fit_classifier
from milestones.optimization.batchnorm.model import BatchNorm
from milestones.optimization.layernorm.model import LayerNorm, RecurrentClassifier

CLAIM = ("Layer normalization has the invariances of the paper's Table 1 (every LayerNorm and BatchNorm cell, "
         "invariant and not invariant, holds numerically), works with a batch of a single example where batch "
         "normalization cannot, and makes a recurrent network train faster (Section 3.1): a tanh RNN reading "
         "digits pixel by pixel reaches 80% test accuracy in fewer steps and with a lower average training loss.")
RNN_TARGET_ACCURACY = 0.8  # the claim's "80% test accuracy"
BATCH_OF_ONE_TARGET = 0.9  # the test accuracy an MLP with layer norm must reach trained one example at a time

# The paper's Table 1: True = invariant. Columns: (name, transformation of (W, x)).
TABLE_1 = {
    "batchnorm": {"weight matrix re-scaling": True, "weight matrix re-centering": False,
                  "weight vector re-scaling": True, "dataset re-scaling": True,
                  "dataset re-centering": True, "single training case re-scaling": False},
    "layernorm": {"weight matrix re-scaling": True, "weight matrix re-centering": True,
                  "weight vector re-scaling": False, "dataset re-scaling": True,
                  "dataset re-centering": False, "single training case re-scaling": True},
}


@dataclass
class Config:
    rnn_hidden: int = 64
    rnn_steps: int = 400
    rnn_lr: float = 3e-3
    rnn_batch_size: int = 64
    batch_of_one_steps: int = 4000  # SGD steps of one example each (3 epochs)
    batch_of_one_lr: float = 0.02
    log_every: int = 25


SCALES = {
    "smoke": Config(rnn_hidden=16, rnn_steps=20, batch_of_one_steps=50, log_every=10),
    "quick": Config(),
    "full": Config(rnn_hidden=128, rnn_steps=3000, batch_of_one_steps=10000, log_every=50),
}


def transformations(generator: torch.Generator) -> dict:
    """Each of Table 1's transformations as a function (W, x) -> (W', x'). W: (H, D), x: (B, D)."""
    def randn(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    def rescale_one_case(w, x):
        x = x.clone()
        x[0] *= 3.7
        return w, x

    return {
        "weight matrix re-scaling": lambda w, x: (2.5 * w, x),
        "weight matrix re-centering": lambda w, x: (w + randn(1, w.shape[1]), x),  # W + 1 gamma^T
        "weight vector re-scaling": lambda w, x: (w * torch.linspace(0.5, 3.0, w.shape[0], dtype=w.dtype)[:, None], x),
        "dataset re-scaling": lambda w, x: (w, 4.0 * x),
        "dataset re-centering": lambda w, x: (w, x + randn(1, x.shape[1])),  # x_n + gamma for every n
        "single training case re-scaling": rescale_one_case,
    }


def invariance_table(seed: int) -> dict[str, dict[str, float]]:
    """max |N(W'x') - N(Wx)| for each normalizer and transformation, in float64 and with eps = 0 so
    that the invariances are exact up to rounding. The pre-activations carry no bias, as in the paper
    (the learned bias comes after the normalization and is the same on both sides)."""
    generator = torch.Generator().manual_seed(seed)
    w = torch.randn(16, 10, generator=generator, dtype=torch.float64)  # (H, D)
    x = torch.randn(32, 10, generator=generator, dtype=torch.float64)  # (B, D)
    normalizers = {"batchnorm": BatchNorm(16, eps=0.0, affine=False).double(),
                   "layernorm": LayerNorm(16, eps=0.0, elementwise_affine=False).double()}
    return {name: {what: (norm(x2 @ w2.T) - norm(x @ w.T)).abs().max().item()
                   for what, transform in transformations(generator).items()
                   for w2, x2 in [transform(w, x)]}
            for name, norm in normalizers.items()}


@experiment(CLAIM, Config, SCALES)
def run(cfg: Config, ctx: Run) -> Result:
    checks, metrics = [], {}

    # 1. Table 1.
    table = invariance_table(seed=ctx.seed)
    for name, row in TABLE_1.items():
        for what, invariant in row.items():
            change = table[name][what]
            metrics[f"table1/{name}/{what}"] = change
            if invariant:
                checks.append(check(f"{name}, {what}: output change", change, "<=", 1e-9, "rounding (invariant)"))
            else:
                checks.append(check(f"{name}, {what}: output change", change, ">=", 1e-2, "clearly (not invariant)"))
    short = ["W scale", "W center", "w_i scale", "x scale", "x center", "x_n scale"]
    plots.heatmap(ctx.artifact("table1_output_change.png"),
                  [[torch.tensor(max(table[name][what], 1e-17)).log10().item() for what in TABLE_1[name]]
                   for name in TABLE_1],
                  "Table 1: log10 of the largest output change", xlabels=short, ylabels=list(TABLE_1))

    # 2. A batch of one. One example's output, computed alone and inside two different batches.
    generator = torch.Generator().manual_seed(ctx.seed + 1)
    example, others = torch.randn(1, 32, generator=generator), torch.randn(2, 7, 32, generator=generator)
    layer_norm, batch_norm = LayerNorm(32), BatchNorm(32)
    alone = layer_norm(example)
    in_batches = [layer_norm(torch.cat([example, o]))[0] for o in others]
    ln_dependence = max((alone[0] - b).abs().max().item() for b in in_batches)
    bn_outputs = [batch_norm(torch.cat([example, o]))[0] for o in others]
    bn_dependence = (bn_outputs[0] - bn_outputs[1]).abs().max().item()
    try:
        batch_norm(example)
        metrics["batchnorm_batch_of_one"] = "accepted"
    except ValueError as error:
        metrics["batchnorm_batch_of_one"] = f"refused: {error}"
    checks += [
        check("layer norm: change in one example's output with the rest of its batch (or none)", ln_dependence,
              "<=", 1e-6, "rounding"),
        check("batch norm: change in one example's output with the rest of its batch", bn_dependence, ">=", 0.1,
              "clearly"),
    ]

    data = load_digits(8)
    ctx.reseed(1)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 100), LayerNorm(100), nn.ReLU(),
                        nn.Linear(100, 100), LayerNorm(100), nn.ReLU(), nn.Linear(100, 10)).to(ctx.device)
    sgd = torch.optim.SGD(mlp.parameters(), lr=cfg.batch_of_one_lr)
    online = fit_classifier(ctx, "mlp-layernorm-batch-of-one", mlp, sgd,
                            data.x_train, data.y_train, cfg.batch_of_one_steps, batch_size=1,
                            x_test=data.x_test, y_test=data.y_test, log_every=cfg.log_every * 4)
    checks.append(check("MLP with layer norm trained on batches of one: test accuracy", online.last("test_accuracy"),
                        ">=", BATCH_OF_ONE_TARGET, "target"))

    # 3. A tanh RNN over the 64 pixels of each digit, with and without layer norm, same seed and batches.
    def pixels(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), 64, 1)  # (N, T=64, 1): one pixel per time step

    logs = {}
    for layer_norm_on in (False, True):
        name = "rnn-layernorm" if layer_norm_on else "rnn-plain"
        ctx.reseed(2)
        rnn = RecurrentClassifier(1, cfg.rnn_hidden, 10, layer_norm=layer_norm_on).to(ctx.device)
        logs[name] = fit_classifier(ctx, name, rnn, torch.optim.Adam(rnn.parameters(), lr=cfg.rnn_lr),
                                    pixels(data.x_train), data.y_train, cfg.rnn_steps, cfg.rnn_batch_size,
                                    x_test=pixels(data.x_test), y_test=data.y_test, log_every=cfg.log_every)

    def steps_to_target(log) -> int:
        steps, accuracy = log.series("test_accuracy")
        return next((s for s, a in zip(steps, accuracy) if a >= RNN_TARGET_ACCURACY), cfg.rnn_steps + 1)

    def mean_loss(log) -> float:
        losses = log.series("loss")[1]
        return sum(losses) / len(losses)

    plain, normed = logs["rnn-plain"], logs["rnn-layernorm"]
    checks += [
        check(f"RNN with layer norm: steps to {RNN_TARGET_ACCURACY:.0%} test accuracy",
              steps_to_target(normed), "<",
              steps_to_target(plain), "without layer norm"),
        check("RNN with layer norm: mean training loss over the run", mean_loss(normed), "<", mean_loss(plain),
              "without layer norm"),
    ]
    plots.curves(ctx.artifact("rnn_test_accuracy.png"),
                 {"tanh RNN": plain.series("test_accuracy"), "tanh RNN + layer norm": normed.series("test_accuracy")},
                 "Pixel-by-pixel digits (64 steps): held-out accuracy", ylabel="test accuracy",
                 hlines={"target": RNN_TARGET_ACCURACY})
    plots.curves(ctx.artifact("rnn_training_loss.png"),
                 {"tanh RNN": plain.series("loss"), "tanh RNN + layer norm": normed.series("loss")},
                 "Pixel-by-pixel digits: training loss (minibatch)", logy=True)
    metrics |= {"layernorm_batch_dependence": ln_dependence, "batchnorm_batch_dependence": bn_dependence,
                "batch_of_one_test_accuracy": online.last("test_accuracy"),
                "rnn_steps_to_target_plain": steps_to_target(plain),
                "rnn_steps_to_target_layernorm": steps_to_target(normed),
                "rnn_mean_loss_plain": mean_loss(plain), "rnn_mean_loss_layernorm": mean_loss(normed),
                "rnn_final_test_accuracy_plain": plain.last("test_accuracy"),
                "rnn_final_test_accuracy_layernorm": normed.last("test_accuracy")}
    return Result(checks=checks, metrics=metrics)
