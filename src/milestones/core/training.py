"""The supervised classification loop that many papers share, written once on top of `Run.fit`.

Minibatches are drawn with replacement from the global RNG (so checkpoint/resume stays exact), an
optional `augment` transforms each batch, the loss is cross-entropy, and held-out accuracy is
measured at every log point with the model in eval mode.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from milestones.core.run import FitLog, Run


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Fraction of `x` classified as `y`, in eval mode (dropout off, batch norm on running stats)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = sum((model(x[i:i + batch_size].to(device)).argmax(1).cpu() == y[i:i + batch_size]).sum().item()
                  for i in range(0, len(x), batch_size))
    model.train(was_training)
    return correct / len(x)


def fit_classifier(ctx: Run, name: str, model: nn.Module, optimizer: torch.optim.Optimizer,
                   x: torch.Tensor, y: torch.Tensor, steps: int, batch_size: int,
                   x_test: torch.Tensor | None = None, y_test: torch.Tensor | None = None,
                   augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
                   schedule: torch.optim.lr_scheduler.LRScheduler | None = None,
                   log_every: int | None = None, stop_on_nonfinite: bool = True) -> FitLog:
    """Train `model` (already on ctx.device) for `steps` minibatch steps; the log holds "loss",
    "train_accuracy" (of the batch) and, with a test set, "test_accuracy". A learning-rate
    `schedule` is stepped after every optimizer step and checkpointed with it."""
    net = ctx.wrap(model)

    def step(i: int) -> dict:
        index = torch.randint(len(x), (batch_size,))  # the global batch; each process takes its shard
        xb, yb = ctx.shard(x[index]), ctx.shard(y[index])
        if augment is not None:
            xb = augment(xb)
        xb, yb = xb.to(ctx.device), yb.to(ctx.device)
        with ctx.autocast():
            logits = net(xb)
            loss = F.cross_entropy(logits.float(), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if schedule is not None:
            schedule.step()
        return {"loss": loss.detach(), "train_accuracy": (logits.argmax(1) == yb).float().mean()}

    evaluate = (lambda: {"test_accuracy": accuracy(model, x_test, y_test)}) if x_test is not None else None
    state = {"model": model, "optimizer": optimizer} | ({"schedule": schedule} if schedule is not None else {})
    return ctx.fit(name, steps, step, state, log_every=log_every, stop_on_nonfinite=stop_on_nonfinite,
                   evaluate=evaluate)
