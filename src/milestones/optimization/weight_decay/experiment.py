"""Weight decay's claim in miniature: a linear student learning a noisy linear teacher.

Each trial draws a teacher u (N weights, each N(0, tau^2)), p = 1.25 N random inputs x ~ N(0, I)
and noisy targets y = u . x + N(0, sigma^2). For every decay strength lambda in a log-spaced grid
(and lambda = 0) a student is trained by full-batch gradient descent with momentum, using the
from-scratch `DecayedSGD`, on the mean squared error; weight_decay = lambda / p in those units,
which is the paper's penalised error E + lambda/2 |w|^2 divided by p. Its test error is the exact
expected squared error on a fresh input, E_x[(w . x - u . x)^2] = |w - u|^2, averaged over trials.
The paper's analysis predicts the best decay at lambda* = sigma^2 / tau^2 (see notes.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from milestones.core import Result, Run, check, experiment, plots
from milestones.core.training import train
from milestones.optimization.weight_decay.model import DecayedSGD, optimal_decay, ridge_solution

CLAIM = ("With noisy targets and about as many weights as examples, a linear network trained with a "
         "suitable weight decay generalises better than without, and the best decay lies near "
         "lambda* = sigma^2 / tau^2, the value the paper's analysis of the linear case predicts "
         "(Krogh & Hertz 1991, the analysis of static noise on the targets of a linear network).")


@dataclass
class Config:
    weights: int = 40  # N
    examples: int = 50  # p, about as many as weights
    noise_std: float = 2.0  # sigma
    teacher_std: float = 1.0  # tau
    trials: int = 200  # independent teacher/data draws, trained side by side
    decades: float = 2.0  # the grid runs from lambda* / 10^decades to lambda* * 10^decades ...
    points_per_decade: int = 4  # ... in steps of 10^(1/points_per_decade)
    steps: int = 2000  # full-batch gradient steps: every student ends within 3e-5 of its exact minimum (seeds 0-2)
    momentum: float = 0.9


SCALES = {
    "smoke": Config(trials=10, steps=100, decades=1.0, points_per_decade=2),
    "quick": Config(),
    "full": Config(weights=200, examples=250, trials=1000, steps=10000, points_per_decade=8),
}


@experiment(CLAIM, Config, SCALES)
def run(cfg: Config, ctx: Run) -> Result:
    ctx.reseed(0)
    n, p, trials = cfg.weights, cfg.examples, cfg.trials
    teacher = cfg.teacher_std * torch.randn(trials, n)  # (T, N)
    x = torch.randn(trials, p, n)  # (T, p, N)
    y = torch.einsum("tpn,tn->tp", x, teacher) + cfg.noise_std * torch.randn(trials, p)  # (T, p)
    teacher, x, y = teacher.to(ctx.device), x.to(ctx.device), y.to(ctx.device)

    predicted = optimal_decay(cfg.noise_std ** 2, cfg.teacher_std ** 2)
    steps_out = round(cfg.decades * cfg.points_per_decade)
    decays = [0.0] + [predicted * 10 ** (k / cfg.points_per_decade) for k in range(-steps_out, steps_out + 1)]

    # Gradient descent converges for a step below 2 / (largest curvature); use 1 / curvature.
    curvature = torch.linalg.eigvalsh(x.transpose(1, 2) @ x / p).max().item()  # of the mean squared error
    # one (trials, N) student per decay, in a module so that checkpoints save them
    students = torch.nn.ParameterList(torch.zeros(trials, n, device=ctx.device) for _ in decays)
    optimizer = DecayedSGD([{"params": [w], "weight_decay": lam / p, "lr": 1.0 / (curvature + lam / p)}
                            for w, lam in zip(students, decays)], lr=1.0, momentum=cfg.momentum)

    def summed_loss(students: torch.nn.ParameterList, x: torch.Tensor, y: torch.Tensor):
        # Each trial's loss depends only on its own row of weights, so one summed loss trains all;
        # one product over the stacked students (D, T, N) costs a fifth of one product per student.
        predictions = torch.einsum("tpn,dtn->dtp", x, torch.stack(list(students)))  # (D, T, p)
        loss = (0.5 * (predictions - y).pow(2).mean(2)).sum()
        return loss, {"loss_per_student": loss.detach() / (trials * len(decays))}

    # full-batch gradient descent: all the data at every step, on every process
    train(ctx, "linear-students", students, optimizer, cfg.steps, lambda i: (x, y), summed_loss, data_parallel=False)

    with torch.no_grad():
        test_error = [(w - teacher).pow(2).sum(1).mean().item() for w in students]  # E_x[(w.x - u.x)^2]
        exact = [ridge_solution(x, y, lam) for lam in decays]
        distance = max(((w - e).norm(dim=1) / e.norm(dim=1)).max().item() for w, e in zip(students, exact))

    no_decay, at_predicted = test_error[0], test_error[decays.index(predicted)]
    best = min(range(1, len(decays)), key=lambda k: test_error[k])
    best_decay = decays[best]
    log_ratio = abs(math.log10(best_decay / predicted))
    theory_no_decay = cfg.noise_std ** 2 * n / (p - n - 1) if p > n + 1 else math.inf  # E|w - u|^2 at lambda = 0

    log_decays = [math.log10(lam) for lam in decays[1:]]
    top = max(test_error)
    plots.curves(ctx.artifact("test_error_vs_decay.png"),
                 {"trained students (mean over trials)": (log_decays, test_error[1:]),
                  f"predicted optimum lambda* = {predicted:g}": ([math.log10(predicted)] * 2, [0.0, top])},
                 title=f"Linear student, N={n} weights, p={p} examples, noise sigma={cfg.noise_std:g}",
                 xlabel="log10 weight decay lambda", ylabel="test error E|w - u|^2",
                 hlines={"no decay": no_decay})

    return Result(
        checks=[
            check("test error at the predicted decay lambda*", at_predicted, "<", no_decay, "without decay"),
            check("|log10(best decay on the grid / lambda*)|", log_ratio, "<=", math.log10(2), "a factor of 2"),
            check("largest relative distance of a trained student from the exact penalised minimum",
                  distance, "<=", 1e-3, "converged"),
        ],
        metrics={"predicted_decay": predicted, "best_decay": best_decay, "test_error_no_decay": no_decay,
                 "test_error_no_decay_theory": theory_no_decay, "test_error_at_predicted": at_predicted,
                 "test_error_best": test_error[best], "teacher_norm_squared": cfg.teacher_std ** 2 * n,
                 "decays": decays, "test_errors": test_error, "distance_to_exact_minimum": distance},
    )
