"""AlexNet's two training claims in miniature.

1. ReLU against tanh (the paper's Figure 1), with Figure 1's network: a plain four-layer
   convolutional net (`FourLayerNet`: three convolutions and one fully connected layer, no weight
   decay, dropout or LRN), built from the same seed, hence the same weights, with each
   nonlinearity. The task is procedural and slow enough that the better network needs a few hundred
   steps: one coloured shape on a coloured, textured, noisy background (12 x 12, from
   `make_largest_shape`), labelled by kind and colour (18 classes, chance 94% error), with the
   training set's mean image subtracted (the paper's only preprocessing). Both train by SGD with
   momentum 0.9; the error on the whole training set is measured every `eval_every` steps and a run
   stops at 25%. Each nonlinearity takes the learning rate of a grid that gets there in the fewest
   steps, and a control checks that both of those lie inside the grid, not at an edge. The
   speed-up is steps(tanh) / steps(ReLU) at those rates.
2. Data augmentation (section 4.1), on the digits, with the small AlexNet: the same network trained
   on a small subset of the training images, once on the images as they are and once on randomly
   shifted copies (the digits' version of the paper's random crops; flips would change what a digit
   means). Augmentation should narrow the gap between training and test accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from milestones.core import Result, Run, check, experiment, plots
from milestones.core.data import load_digits, make_largest_shape, random_shifts
from milestones.core.data.largest_shape import NUM_CLASSES
from milestones.core.training import accuracy, fit_classifier
from milestones.foundations.alexnet.model import AlexNet, AlexNetConfig, FourLayerNet

CLAIM = ("A convolutional network with ReLUs reaches a target training error several times faster than the "
         "same network with tanh units (Figure 1: a four-layer net on CIFAR-10 reaches 25% six times faster), "
         "and label-preserving data augmentation reduces overfitting, narrowing the gap between training and "
         "test accuracy (section 4.1).")
TARGET_ERROR = 0.25  # Figure 1's target training error
# Figure 1 shows a factor of about six and the text says ReLU nets "learn several times faster". We ask
# for a third of Figure 1's factor: enough to call "several times", lenient toward a miniature whose
# factor may be smaller than the paper's. Fixed before any run of this protocol.
MIN_SPEEDUP = 2.0


@dataclass
class Config:
    # Claim 1 (Figure 1): the four-layer net on the shapes task
    figure1_images: int = 512  # the training set, on which the error is measured
    figure1_size: int = 12  # small for speed; colour alone would leave 2/3 error, so 25% needs the kinds too
    figure1_channels: tuple[int, int, int] = (8, 8, 16)
    figure1_batch_size: int = 32
    eval_every: int = 10  # steps between measurements of the training error
    max_steps: int = 1000  # a run that has not reached the target by then counts as this many steps
    learning_rates: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3)  # each nonlinearity takes its fastest
    momentum: float = 0.9  # the paper's, for both claims
    # Claim 2 (section 4.1): the small AlexNet on a few digits
    image_size: int = 16
    batch_size: int = 64
    weight_decay: float = 5e-4  # the paper's value
    augment_train_images: int = 200  # a small training set, so that the unaugmented net overfits
    augment_steps: int = 300  # enough for both arms to fit all 200 training digits
    augment_lr: float = 0.01
    max_shift: int = 1  # pixels, in each direction


SCALES = {
    "smoke": Config(figure1_images=64, max_steps=20, learning_rates=(0.01, 0.1, 0.3), augment_steps=20),
    "quick": Config(),
    "full": Config(figure1_images=5000, figure1_size=32, figure1_channels=(32, 32, 64), figure1_batch_size=128,
                   max_steps=5000, learning_rates=(0.001, 0.003, 0.01, 0.03, 0.1, 0.3), image_size=32,
                   augment_train_images=400, augment_steps=5000),
}


def small_alexnet(activation: str, in_channels: int = 1, image_size: int = 16, num_classes: int = 10) -> AlexNet:
    # No dropout: augmentation should be measured alone.
    return AlexNet(AlexNetConfig.small(in_channels=in_channels, image_size=image_size, num_classes=num_classes,
                                       activation=activation, dropout=0.0))


def train_to_target(ctx: Run, name: str, model: FourLayerNet, optimizer: torch.optim.Optimizer, x: torch.Tensor,
                    y: torch.Tensor, cfg: Config, limit: float) -> dict:
    """Train, measuring the error on the whole training set every `eval_every` steps, until it
    reaches the target, the run reaches `limit` steps, or the loss diverges. Returns the measured
    curve and the steps to the target (inf if not reached)."""
    # fit_classifier's "test" set is the training set itself: Figure 1 plots the training error
    log = fit_classifier(ctx, name, model, optimizer, x, y, math.ceil(limit / cfg.eval_every) * cfg.eval_every,
                         cfg.figure1_batch_size, x_test=x, y_test=y, log_every=cfg.eval_every, stop_on_nonfinite=False,
                         stop_when=lambda record: 1 - record["test_accuracy"] <= TARGET_ERROR)
    steps, accuracies = log.series("test_accuracy")
    if log.diverged_at is not None:  # the last measurement is of a broken net
        steps, accuracies = steps[:-1], accuracies[:-1]
    return {"steps": steps, "errors": [1 - a for a in accuracies], "to_target": log.stopped_at or math.inf,
            "diverged": log.diverged_at is not None}


def fastest_learning_rate(ctx: Run, activation: str, x: torch.Tensor, y: torch.Tensor, cfg: Config) -> dict:
    """Try every learning rate of the grid from the same initial weights and the same minibatches;
    the winner reaches the target in the fewest steps (a tie goes to the smaller rate). A run is
    stopped once it can no longer win (at the best count so far), which saves time without changing
    the winner; runs that stop short of the target report where they stopped. The middle of the grid
    goes first, since the best rate is likely there and sets the tightest cut for the others."""
    trials, best = {}, math.inf
    middle = (len(cfg.learning_rates) - 1) / 2
    for index in sorted(range(len(cfg.learning_rates)), key=lambda i: abs(i - middle)):
        lr = cfg.learning_rates[index]
        ctx.reseed(1)  # the same initial weights and batches for every run, ReLU or tanh
        model = FourLayerNet(activation, x.shape[1], cfg.figure1_size, NUM_CLASSES, cfg.figure1_channels)
        model = model.to(ctx.device)
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=cfg.momentum)
        trials[lr] = train_to_target(ctx, f"{activation}-lr{lr}", model, optimizer, x, y, cfg,
                                     limit=min(cfg.max_steps, best))
        best = min(best, trials[lr]["to_target"])
    best_lr = next((lr for lr in cfg.learning_rates if trials[lr]["to_target"] == best), cfg.learning_rates[0])
    return {"lr": best_lr, "steps": best, "trials": {lr: trials[lr] for lr in cfg.learning_rates}}


def finite_or_none(steps: float) -> float | None:
    """None (JSON null) for a target never reached."""
    return None if math.isinf(steps) else steps


@experiment(CLAIM, Config, SCALES, expected_failures=("relu_speedup",))  # see notes.md
def run(cfg: Config, ctx: Run) -> Result:
    # Claim 1: steps to 25% training error, ReLU against tanh, each at its best learning rate.
    x1, y1 = make_largest_shape(cfg.figure1_images, size=cfg.figure1_size, shapes=1, seed=0)
    x1 = x1 - x1.mean(0, keepdim=True)  # "subtracting the mean activity over the training set"
    fastest = {activation: fastest_learning_rate(ctx, activation, x1, y1, cfg) for activation in ("relu", "tanh")}
    relu_steps, tanh_steps = fastest["relu"]["steps"], fastest["tanh"]["steps"]
    if math.isinf(relu_steps):
        speedup = 0.0  # ReLU never reached the target: no speed-up to claim
    else:  # a tanh net that never got there counts as the budget (so the ratio is a lower bound)
        speedup = min(tanh_steps, cfg.max_steps) / relu_steps
    edges = (cfg.learning_rates[0], cfg.learning_rates[-1])
    at_edge = sum(fastest[a]["lr"] in edges for a in fastest)
    plots.curves(ctx.artifact("relu_vs_tanh.png"),
                 {f"{a}, lr {f['lr']}": (f["trials"][f["lr"]]["steps"], f["trials"][f["lr"]]["errors"])
                  for a, f in fastest.items()},
                 "Figure 1 in miniature: the four-layer net at each one's best lr", xlabel="SGD step",
                 ylabel="training error", hlines={"target": TARGET_ERROR})

    plots.curves(ctx.artifact("learning_rate_grid.png"),
                 {f"{a}, lr {lr}": (t["steps"], t["errors"])
                  for a, f in fastest.items() for lr, t in f["trials"].items()},
                 "Every run of the lr grid (stopped at 25% or once it cannot win)",
                 xlabel="SGD step", ylabel="training error", hlines={"target": TARGET_ERROR})

    # Claim 2: the train-test gap with and without shifted copies, on a small training set of digits.
    data = load_digits(cfg.image_size)
    x_small, y_small = data.x_train[:cfg.augment_train_images], data.y_train[:cfg.augment_train_images]
    gaps, test_accuracies = {}, {}
    for name, augment in (("plain", None), ("shifted", lambda batch: random_shifts(batch, cfg.max_shift))):
        ctx.reseed(2)
        model = small_alexnet("relu", image_size=cfg.image_size).to(ctx.device)
        optimizer = torch.optim.SGD(model.parameters(), lr=cfg.augment_lr, momentum=cfg.momentum,
                                    weight_decay=cfg.weight_decay)
        fit_classifier(ctx, f"augment-{name}", model, optimizer, x_small, y_small, cfg.augment_steps,
                       cfg.batch_size, augment=augment, log_every=max(1, cfg.augment_steps // 10))
        test_accuracies[name] = accuracy(model, data.x_test, data.y_test)
        gaps[name] = accuracy(model, x_small, y_small) - test_accuracies[name]
    plots.bars(ctx.artifact("augmentation_gap.png"), {"gap, plain": gaps["plain"], "gap, shifted": gaps["shifted"],
                "test acc., plain": test_accuracies["plain"], "test acc., shifted": test_accuracies["shifted"]},
               f"Train-test gap on {cfg.augment_train_images} training digits")

    grid = {a: {str(lr): {"steps_to_target": finite_or_none(t["to_target"]),  # None: stopped short (see last_step)
                          "last_step": t["steps"][-1] if t["steps"] else 0, "diverged": t["diverged"]}
                for lr, t in f["trials"].items()} for a, f in fastest.items()}
    return Result(
        checks=[
            check("SGD steps for tanh / steps for ReLU to reach 25% training error, each at its best lr", speedup,
                  ">=", MIN_SPEEDUP, "MIN_SPEEDUP (Figure 1: about 6)", name="relu_speedup"),
            check("train-test accuracy gap with shifted copies", gaps["shifted"], "<", gaps["plain"],
                  "gap without augmentation"),
            check("nonlinearities whose best learning rate sits at an edge of the grid (an unfair comparison)",
                  at_edge, "<=", 0, "none", name="interior_optima", control=True),
        ],
        metrics={"relu_steps_to_target": finite_or_none(relu_steps), "relu_best_lr": fastest["relu"]["lr"],
                 "tanh_steps_to_target": finite_or_none(tanh_steps), "tanh_best_lr": fastest["tanh"]["lr"],
                 "speedup": speedup, "learning_rate_grid": grid,
                 "gap_plain": gaps["plain"], "gap_shifted": gaps["shifted"],
                 "test_accuracy_plain": test_accuracies["plain"],
                 "test_accuracy_shifted": test_accuracies["shifted"]},
    )
