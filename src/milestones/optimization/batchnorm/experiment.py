"""Batch normalization's two headline effects, in miniature on the 8x8 digits.

1. Figure 1 of the paper: the same sigmoid MLP (3 hidden layers of 100 units, as in the paper's
   MNIST experiment), trained by plain SGD at the same learning rate with and without batch norm.
   We count the steps each needs to reach a target held-out accuracy.
2. Section 4.2 (and 3.3): a learning rate at which the plain network fails to train. ReLU units,
   as in the paper's Inception experiments; the plain net's loss either becomes non-finite or its
   units die and it sits at chance, while the batch-normalized net trains normally. A control run
   shows the plain net does train at a modest learning rate, so the learning rate is the cause.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from milestones.core import Result, Run, check, experiment, plots
from milestones.core.data import load_digits
from milestones.core.training import fit_classifier
from milestones.optimization.batchnorm.model import MLP

CLAIM = ("Batch normalization speeds up training and permits much higher learning rates: on digits, a sigmoid "
         "MLP with batch norm reaches the target test accuracy in at least 3x fewer SGD steps than without "
         "it (the paper's Figure 1), and a ReLU MLP with batch norm trains at a learning rate at which the "
         "plain network diverges (Section 4.2).")
TARGET_ACCURACY = 0.9  # the claim's "target test accuracy"


@dataclass
class Config:
    hidden: tuple[int, ...] = (100, 100, 100)  # the paper's MNIST net: 3 fully connected layers of 100
    batch_size: int = 60  # as in the paper
    lr: float = 1.0  # shared by both sigmoid nets (Figure 1 compares at equal learning rate)
    steps: int = 3000
    log_every: int = 25
    lr_modest: float = 0.5  # the plain ReLU net trains here...
    lr_high: float = 2.0  # ...and fails here, where the batch-normalized one still trains
    high_lr_steps: int = 600


SCALES = {
    "smoke": Config(hidden=(32, 32), steps=100, high_lr_steps=50, log_every=10),
    "quick": Config(),
    "full": Config(steps=20000, high_lr_steps=5000, log_every=50),
}


def steps_to_reach(log, target: float, budget: int) -> int:
    """The first logged step whose test accuracy reaches `target` (the budget + 1 if none does)."""
    steps, accuracy = log.series("test_accuracy")
    return next((s for s, a in zip(steps, accuracy) if a >= target), budget + 1)


@experiment(CLAIM, Config, SCALES)
def run(cfg: Config, ctx: Run) -> Result:
    data = load_digits(8)
    sizes = [64, *cfg.hidden, 10]

    def train(name: str, batch_norm: bool, activation, lr: float, steps: int, seed: int):
        ctx.reseed(seed)  # the same seed: both nets draw the same minibatches
        model = MLP(sizes, batch_norm, activation).to(ctx.device)
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        return fit_classifier(ctx, name, model, optimizer, data.x_train, data.y_train, steps, cfg.batch_size,
                              data.x_test, data.y_test, log_every=cfg.log_every, stop_on_nonfinite=False)

    # Figure 1: time to a target accuracy, same learning rate, with and without batch norm.
    plain = train("sigmoid-plain", False, nn.Sigmoid, cfg.lr, cfg.steps, seed=0)
    normed = train("sigmoid-batchnorm", True, nn.Sigmoid, cfg.lr, cfg.steps, seed=0)
    plain_steps = steps_to_reach(plain, TARGET_ACCURACY, cfg.steps)
    normed_steps = steps_to_reach(normed, TARGET_ACCURACY, cfg.steps)
    speedup = plain_steps / normed_steps

    # Section 4.2: a learning rate too high for the plain net.
    control = train("relu-plain-modest-lr", False, nn.ReLU, cfg.lr_modest, cfg.high_lr_steps, seed=1)
    plain_high = train("relu-plain-high-lr", False, nn.ReLU, cfg.lr_high, cfg.high_lr_steps, seed=1)
    normed_high = train("relu-batchnorm-high-lr", True, nn.ReLU, cfg.lr_high, cfg.high_lr_steps, seed=1)
    plain_high_accuracy = plain_high.last("test_accuracy") if plain_high.diverged_at is None else 0.0

    plots.curves(ctx.artifact("figure1_test_accuracy.png"),
                 {"without BN": plain.series("test_accuracy"), "with BN": normed.series("test_accuracy")},
                 f"Sigmoid MLP, SGD lr={cfg.lr}: held-out accuracy", ylabel="test accuracy",
                 hlines={f"target {TARGET_ACCURACY}": TARGET_ACCURACY})
    plots.curves(ctx.artifact("high_lr_loss.png"),
                 {f"without BN, lr={cfg.lr_modest}": control.series("loss"),
                  f"without BN, lr={cfg.lr_high}": plain_high.series("loss"),
                  f"with BN, lr={cfg.lr_high}": normed_high.series("loss")},
                 "ReLU MLP: training loss (minibatch)", logy=True)

    return Result(
        checks=[
            check("steps to target without BN / steps with BN", speedup, ">=", 3.0, "3x fewer with BN"),
            check("final test accuracy with BN", normed.last("test_accuracy"), ">=", plain.last("test_accuracy"),
                  "without BN"),
            check(f"plain ReLU net at lr={cfg.lr_modest}: test accuracy (control)", control.last("test_accuracy"),
                  ">=", TARGET_ACCURACY, "target"),
            check(f"plain ReLU net at lr={cfg.lr_high}: test accuracy", plain_high_accuracy, "<=", 0.2,
                  "near chance (0.1): diverged"),
            check(f"BN ReLU net at lr={cfg.lr_high}: test accuracy", normed_high.last("test_accuracy"), ">=",
                  TARGET_ACCURACY, "target"),
        ],
        metrics={"steps_to_target_plain": plain_steps, "steps_to_target_batchnorm": normed_steps,
                 "speedup": speedup, "final_test_accuracy_plain": plain.last("test_accuracy"),
                 "final_test_accuracy_batchnorm": normed.last("test_accuracy"),
                 "control_test_accuracy": control.last("test_accuracy"),
                 "high_lr_plain_test_accuracy": plain_high_accuracy,
                 "high_lr_plain_final_loss": plain_high.last("loss"),
                 "high_lr_plain_diverged_at": plain_high.diverged_at,
                 "high_lr_batchnorm_test_accuracy": normed_high.last("test_accuracy")},
    )
