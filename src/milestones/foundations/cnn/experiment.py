"""The 1989 convnet's claim in miniature: building the geometry of images into the network (local
receptive fields, shared weights) generalizes better with fewer free parameters.

On sklearn's digits resized to 16x16 (the paper's input size), we train the paper's network
(`ZipCodeNet`, 9,760 free parameters) and a fully connected net with one hidden layer and at least
3x as many parameters, with the same optimizer, loss, minibatches and number of steps, several
independent times, and compare
- their test accuracy on the untouched test digits, and
- how much of it they lose when every test digit is moved by one or two pixels (in each of the
  8 compass directions); nothing in training shows them moved digits.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import torch

from milestones.core import Result, Run, check, experiment, plots
from milestones.core.data import load_digits, shift
from milestones.core.training import accuracy, fit_classifier
from milestones.foundations.cnn.model import FullyConnectedNet, ZipCodeNet, free_parameters

CLAIM = ("Constraining a backprop network with local receptive fields and shared weights (the 1989 "
         "paper's Figure 3 architecture) makes it generalize better with fewer free parameters: on "
         "16x16 digits it reaches higher test accuracy than a fully connected net with at least 3x its "
         "parameters, and loses less accuracy when the test digits are shifted by one or two pixels.")


@dataclass
class Config:
    repeats: int = 3  # independent initializations of each net; the checks compare means
    steps: int = 1500  # minibatch steps per net (1500 x 32 is about 36 passes over the 1,348 digits)
    batch_size: int = 32
    lr: float = 0.05
    momentum: float = 0.9
    hidden: int = 128  # the fully connected net's hidden units: 256*128 + 128 + 128*10 + 10 = 34,186
    max_shift: int = 2  # test shifts of 1..max_shift pixels


SCALES = {
    "smoke": Config(repeats=1, steps=30),
    "quick": Config(),
    "full": Config(repeats=10, steps=5000),
}

DIRECTIONS = [(1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1)]


def shifted_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, pixels: int) -> float:
    """Mean accuracy over the 8 copies of the test set moved `pixels` in each compass direction."""
    return statistics.mean(accuracy(model, shift(x, dx * pixels, dy * pixels), y) for dx, dy in DIRECTIONS)


@experiment(CLAIM, Config, SCALES)
def run(cfg: Config, ctx: Run) -> Result:
    digits = load_digits(size=16)
    builders = {"convnet": ZipCodeNet, "fully connected": lambda: FullyConnectedNet([16 * 16, cfg.hidden, 10])}
    distances = range(cfg.max_shift + 1)
    accuracies = {name: {d: [] for d in distances} for name in builders}  # name -> shift -> one per repeat
    parameters, curves = {}, {}
    for k in range(cfg.repeats):
        for name, build in builders.items():
            ctx.reseed(k)
            model = build().to(ctx.device)
            parameters[name] = free_parameters(model)
            optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
            # Only the first repeat's curve is plotted, so only it is evaluated during training.
            test = (digits.x_test, digits.y_test) if k == 0 else (None, None)
            log = fit_classifier(ctx, f"{name.replace(' ', '-')}-{k}", model, optimizer, digits.x_train,
                                 digits.y_train, cfg.steps, cfg.batch_size, *test)
            if k == 0:
                curves[name] = log.series("test_accuracy")
            model.cpu()
            for d in distances:
                acc = shifted_accuracy(model, digits.x_test, digits.y_test, d) if d else \
                    accuracy(model, digits.x_test, digits.y_test)
                accuracies[name][d].append(acc)
            if name == "convnet" and k == 0:
                kernels = model.h1.weight.detach()[:, 0]  # (12, 5, 5): H1's shared feature detectors
                scaled = (kernels - kernels.min()) / (kernels.max() - kernels.min())
                plots.image_grid(ctx.artifact("h1_kernels.png"), scaled, [f"map {i}" for i in range(12)],
                                 ncols=6, title="The 12 shared 5x5 kernels of H1")

    mean = {name: {d: statistics.mean(v) for d, v in by_shift.items()} for name, by_shift in accuracies.items()}
    drop = {name: {d: m[0] - m[d] for d in distances if d} for name, m in mean.items()}
    conv, dense = "convnet", "fully connected"

    plots.curves(ctx.artifact("shift_robustness.png"),
                 {f"{name} ({parameters[name]:,} parameters)": (list(distances), [m[d] for d in distances])
                  for name, m in mean.items()},
                 "Test accuracy on shifted digits", xlabel="shift (pixels)", ylabel="test accuracy")
    plots.curves(ctx.artifact("test_accuracy.png"), curves, "Test accuracy during training (first repeat)",
                 ylabel="test accuracy")
    moves = [(0, 0)] + [(dx * d, dy * d) for d in distances if d for dx, dy in DIRECTIONS[:4]]
    plots.image_grid(ctx.artifact("shifted_digit.png"), torch.cat([shift(digits.x_test[:1], *m) for m in moves]),
                     [f"dx={dx}, dy={dy}" for dx, dy in moves], ncols=len(moves),
                     title="A test digit and some of its shifted copies")

    checks = [
        check("fully connected parameters / convnet parameters", parameters[dense] / parameters[conv], ">=", 3.0,
              "3x", control=True),
        check("convnet test accuracy", mean[conv][0], ">", mean[dense][0], "fully connected test accuracy"),
    ]
    checks += [check(f"convnet accuracy lost to {d}-pixel shifts", drop[conv][d], "<", drop[dense][d],
                     "fully connected net's loss") for d in distances if d]
    metrics = {"parameters": parameters, "repeats": cfg.repeats}
    for name, key in ((conv, "convnet"), (dense, "fully_connected")):
        metrics[f"{key}_test_accuracy"] = mean[name][0]
        metrics[f"{key}_test_accuracy_per_repeat"] = accuracies[name][0]
        metrics |= {f"{key}_shift{d}_accuracy": mean[name][d] for d in distances if d}
    return Result(checks=checks, metrics=metrics)
