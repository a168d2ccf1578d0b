"""LeNet-5's claim in miniature: the 1998 architecture reads digits with high accuracy and does
better than the 1989 zip-code net given the same training.

On sklearn's digits, LeNet-5 sees them at 32x32 (its input size) and the 1989 net (`ZipCodeNet`
from the cnn module) at 16x16 (its own). Both are trained with the same optimizer, minibatch size,
number of steps and loss, from several independent initializations; the checks compare the means.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from milestones.core import Result, Run, check, experiment, plots
from milestones.core.data import load_digits
from milestones.core.training import accuracy, fit_classifier
from milestones.foundations.cnn.model import ZipCodeNet, free_parameters
from milestones.foundations.lenet.model import LeNet5

CLAIM = ("LeNet-5 (the 1998 paper's Figure 2: C1-S2-C3-S4-C5-F6 with Euclidean RBF outputs) reaches at "
         "least 97% test accuracy on handwritten digits and beats the 1989 zip-code net trained with the "
         "same budget.")
TARGET_ACCURACY = 0.97  # the claim's "at least 97%"


@dataclass
class Config:
    repeats: int = 3  # independent initializations of each net; the checks compare means
    steps: int = 1500  # minibatch steps per net (1500 x 32 is about 36 passes over the 1,348 digits)
    batch_size: int = 32
    lr: float = 0.05
    momentum: float = 0.9
    partial_c3: bool = True  # the paper's Table I; false connects C3 to all of S2's maps


SCALES = {
    "smoke": Config(repeats=1, steps=30),
    "quick": Config(),
    "full": Config(repeats=10, steps=5000),
}


@experiment(CLAIM, Config, SCALES)
def run(cfg: Config, ctx: Run) -> Result:
    nets = {  # name -> (builder, digits at the net's own input size)
        "LeNet-5 (1998)": (lambda: LeNet5(partial_c3=cfg.partial_c3), load_digits(size=32)),
        "zip-code net (1989)": (ZipCodeNet, load_digits(size=16)),
    }
    accuracies = {name: [] for name in nets}
    parameters, curves, first = {}, {}, {}  # first: each net from the first repeat
    for k in range(cfg.repeats):
        for name, (build, digits) in nets.items():
            ctx.reseed(k)
            model = build().to(ctx.device)
            parameters[name] = free_parameters(model)
            optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
            # Only the first repeat's curve is plotted, so only it is evaluated during training.
            test = (digits.x_test, digits.y_test) if k == 0 else (None, None)
            log = fit_classifier(ctx, f"{name.split()[0].lower()}-{k}", model, optimizer, digits.x_train,
                                 digits.y_train, cfg.steps, cfg.batch_size, *test, log_every=max(1, cfg.steps // 25))
            accuracies[name].append(accuracy(model, digits.x_test, digits.y_test))
            if k == 0:
                curves[name], first[name] = log.series("test_accuracy"), model

    lenet_name, zip_name = list(nets)
    mean = {name: statistics.mean(values) for name, values in accuracies.items()}

    plots.curves(ctx.artifact("test_accuracy.png"), curves, "Test accuracy during training (first repeat)",
                 ylabel="test accuracy", hlines={f"{TARGET_ACCURACY:.0%}": TARGET_ACCURACY})
    with torch.no_grad():  # what LeNet-5 sees at each stage, for one test digit
        c1, s2, c3, s4, _, _ = first[lenet_name].cpu().eval().features(nets[lenet_name][1].x_test[:1])
    maps = torch.cat([F.interpolate(m[:1, :6], size=28, mode="nearest")[0] for m in (c1, s2, c3, s4)])  # (24, 28, 28)
    plots.image_grid(ctx.artifact("feature_maps.png"), (maps / 1.7159 + 1) / 2,
                     [f"{layer} map {i}" for layer in ("C1", "S2", "C3", "S4") for i in range(6)], ncols=6,
                     title="LeNet-5 feature maps of one test digit (rows: C1, S2, C3, S4)")

    return Result(
        checks=[
            check("LeNet-5 test accuracy", mean[lenet_name], ">=", TARGET_ACCURACY, "target"),
            check("LeNet-5 test accuracy", mean[lenet_name], ">", mean[zip_name], "1989 zip-code net test accuracy"),
        ],
        metrics={"parameters": parameters, "repeats": cfg.repeats,
                 "lenet5_test_accuracy": mean[lenet_name], "zipcode_test_accuracy": mean[zip_name],
                 "lenet5_test_accuracy_per_repeat": accuracies[lenet_name],
                 "zipcode_test_accuracy_per_repeat": accuracies[zip_name]},
    )
