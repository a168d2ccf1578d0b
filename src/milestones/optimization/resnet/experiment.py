"""The degradation problem and its cure (the paper's Figures 1 and 6), in miniature.

CIFAR-style nets (6n+2 layers, 3x3 convolutions, batch norm, option-A shortcuts) on the 8x8
digits with random shifts of up to 3 pixels (augmentation makes the training set hard to
memorize, so training error stays measurable; with shifts of up to 2 pixels an 8-layer plain net
fitted it about as well as any, and the residual net's lead over the shallow plain net was within
noise), trained as in the paper: SGD with momentum 0.9, weight decay 1e-4, learning rate 0.1
divided by 10 late in training. We train a shallower plain net, a deeper plain net and the deeper
net with residual shortcuts, all from the same seed and minibatches, and compare their training
error over the last stretch of training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from milestones.core import Result, Run, check, experiment, plots
from milestones.core.data import load_digits, random_shifts
from milestones.core.training import accuracy, fit_classifier
from milestones.optimization.resnet.model import CifarResNet

CLAIM = ("Degradation and its cure (Figures 1 and 6): a deeper plain net has higher training error than a "
         "shallower plain net, while the residual version of the deeper net has lower training error than both.")


@dataclass
class Config:
    shallow_n: int = 2  # 6n+2 = 14 layers
    deep_n: int = 5  # 6n+2 = 32 layers
    width: int = 8  # channels of the first stage (the paper's 16, halved for the CPU); then 2x, 4x
    steps: int = 600
    batch_size: int = 64
    lr: float = 0.1
    lr_drop_at: float = 0.75  # fraction of training after which lr is divided by 10
    momentum: float = 0.9
    weight_decay: float = 1e-4
    max_shift: int = 3  # pixels; hard enough that the 32-layer residual net's extra capacity shows
    final_window: int = 100  # training error is averaged over these last steps
    log_every: int = 1  # every step: the final window averages all its minibatches


SCALES = {
    "smoke": Config(shallow_n=1, deep_n=2, width=4, steps=20, final_window=10, log_every=5),
    "quick": Config(),
    "full": Config(shallow_n=3, deep_n=9, width=16, steps=8000, final_window=1000, log_every=50),
}


@experiment(CLAIM, Config, SCALES)
def run(cfg: Config, ctx: Run) -> Result:
    data = load_digits(8)
    nets = {f"plain-{6 * cfg.shallow_n + 2}": (cfg.shallow_n, False),
            f"plain-{6 * cfg.deep_n + 2}": (cfg.deep_n, False),
            f"resnet-{6 * cfg.deep_n + 2}": (cfg.deep_n, True)}
    logs, test_accuracy = {}, {}
    for name, (n, residual) in nets.items():
        ctx.reseed(0)  # the same initial RNG state: the same minibatches and shifts for every net
        model = CifarResNet(n, residual, in_channels=1, widths=(cfg.width, 2 * cfg.width, 4 * cfg.width)).to(ctx.device)
        optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, [int(cfg.lr_drop_at * cfg.steps)], gamma=0.1)
        logs[name] = fit_classifier(ctx, name, model, optimizer, data.x_train, data.y_train, cfg.steps,
                                    cfg.batch_size, augment=lambda x: random_shifts(x, cfg.max_shift),
                                    schedule=schedule, log_every=cfg.log_every)
        test_accuracy[name] = accuracy(model, data.x_test, data.y_test)

    error_curves = {}  # name -> (steps, minibatch training error)
    for name in nets:
        steps, accuracies = logs[name].series("train_accuracy")
        error_curves[name] = (steps, [1 - a for a in accuracies])
    errors = {}  # name -> mean minibatch training error over the last `final_window` steps
    for name, (steps, curve) in error_curves.items():
        recent = [e for s, e in zip(steps, curve) if s > cfg.steps - cfg.final_window]
        errors[name] = sum(recent) / len(recent)
    shallow, deep, residual = nets
    plots.curves(ctx.artifact("training_error.png"), error_curves,
                 "Training error (minibatches, shifted digits)", ylabel="training error")
    plots.bars(ctx.artifact("final_training_error.png"), errors,
               f"Training error, mean of the last {cfg.final_window} steps", ylabel="training error")
    return Result(
        checks=[
            check(f"{deep} training error", errors[deep], ">", errors[shallow], f"{shallow} (degradation)"),
            check(f"{residual} training error", errors[residual], "<", errors[shallow], shallow),
            check(f"{residual} training error", errors[residual], "<", errors[deep], deep),
        ],
        metrics={"final_training_error": errors, "test_accuracy": test_accuracy,
                 "parameters": {name: sum(p.numel() for p in CifarResNet(n, r, in_channels=1, widths=(
                     cfg.width, 2 * cfg.width, 4 * cfg.width)).parameters()) for name, (n, r) in nets.items()}},
    )
