"""The one training loop every paper uses, written once on top of `Run.fit`.

An experiment supplies the model, its optimizer, a batch function and a loss function; `train` does
the rest: the device, the DistributedDataParallel wrap and each process's shard of the batch under
`torchrun`, bf16 autocast where the device runs it fast, gradient clipping, the learning-rate
schedule, evaluation hooks, logging, checkpoints and exact resume (through `Run.fit`).

    def batch(i):  # the global batch of step i
        index = torch.randint(len(x), (64,))
        return x[index], y[index]

    train(ctx, "lstm", model, optimizer, 1200, batch, loss=lambda net, xb, yb: ((net(xb) - yb) ** 2).mean())

Batches are drawn from the global RNG, so a checkpoint (which saves it) resumes exactly. Every
process draws the same global batch and keeps its own equal slice, so that N processes average the
same gradient as one process with the whole batch. `fit_classifier` is the common case of
cross-entropy on (input, label) pairs.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from milestones.core.run import FitLog, Run

Batch = tuple[torch.Tensor, ...]


@contextlib.contextmanager
def evaluating(model: nn.Module):
    """Run the body in eval mode (dropout off, batch norm on running statistics) and without
    gradients, then restore the model's previous mode."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def train(ctx: Run, name: str, model: nn.Module, optimizer: torch.optim.Optimizer, steps: int,
          batch: Callable[[int], Batch], loss: Callable[..., torch.Tensor | tuple[torch.Tensor, dict]], *,
          clip: float | None = None, schedule: torch.optim.lr_scheduler.LRScheduler | None = None,
          backward: Callable[[torch.Tensor], None] | None = None, data_parallel: bool = True,
          log_every: int | None = None, evaluate: Callable[[], dict] | None = None,
          stop_on_nonfinite: bool = True, stop_when: Callable[[dict], bool] | None = None) -> FitLog:
    """Train `model` for `steps` optimizer steps; returns the log of `Run.fit`.

    - `batch(i)`: the global batch of step i, a tuple of tensors whose first dimension is the batch
      (each process keeps its shard and moves it to the device).
    - `loss(net, *batch)`: the scalar loss, or (loss, {metric: value}); `net` is the model as
      wrapped for this run (under DDP the wrapper, which averages gradients between processes).
      It runs under autocast.
    - `clip`: the largest gradient norm (`nn.utils.clip_grad_norm_`); `schedule`: a learning-rate
      scheduler stepped after every optimizer step and checkpointed with it.
    - `backward(loss)`: fills the parameters' `.grad`; autograd's `loss.backward()` by default. A paper
      that computes its gradients by hand (backprop's delta rule) passes its own.
    - `data_parallel=False`: for an update that does not split across processes (full-batch
      training, hand-written gradients, word2vec's per-row means): every process then trains an
      unwrapped model on the whole batch, and so computes exactly what one process would.
    - `log_every`, `evaluate`, `stop_on_nonfinite`, `stop_when`: as in `Run.fit`.
    """
    net = ctx.wrap(model) if data_parallel else model.to(ctx.device)

    def step(i: int) -> dict:
        inputs = tuple((ctx.shard(t) if data_parallel else t).to(ctx.device) for t in batch(i))
        with ctx.autocast():
            out = loss(net, *inputs)
        value, metrics = out if isinstance(out, tuple) else (out, {})
        optimizer.zero_grad(set_to_none=True)
        if backward is None:
            value.backward()
        else:
            backward(value)
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        if schedule is not None:
            schedule.step()
        return {"loss": value.detach()} | metrics

    state = {"model": model, "optimizer": optimizer} | ({"schedule": schedule} if schedule else {})
    return ctx.fit(name, steps, step, state, log_every=log_every, evaluate=evaluate,
                   stop_on_nonfinite=stop_on_nonfinite, stop_when=stop_when)


def fused_kernel(device: torch.device) -> bool | None:
    """The `fused` argument of torch.optim.Adam and AdamW on `device`: True where PyTorch has the
    one-kernel update over every tensor (CPU and CUDA), which beats its loop over the tensors when a
    model has many small ones (a third of a step for moe and bert on a CPU); None (the default) elsewhere.
    The fused update is the same algorithm, rounded differently in the last bits."""
    return device.type in ("cpu", "cuda") or None


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Fraction of `x` classified as `y`, in eval mode."""
    device = next(model.parameters()).device
    with evaluating(model):
        correct = sum((model(x[i:i + batch_size].to(device)).argmax(1).cpu() == y[i:i + batch_size]).sum().item()
                      for i in range(0, len(x), batch_size))
    return correct / len(x)


def fit_classifier(ctx: Run, name: str, model: nn.Module, optimizer: torch.optim.Optimizer,
                   x: torch.Tensor, y: torch.Tensor, steps: int, batch_size: int,
                   x_test: torch.Tensor | None = None, y_test: torch.Tensor | None = None,
                   augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
                   schedule: torch.optim.lr_scheduler.LRScheduler | None = None,
                   log_every: int | None = None, stop_on_nonfinite: bool = True,
                   stop_when: Callable[[dict], bool] | None = None) -> FitLog:
    """Cross-entropy on minibatches drawn with replacement from (x, y), optionally augmented; the
    log holds "loss", "train_accuracy" (of the batch) and, with a test set, "test_accuracy"."""

    def draw(i: int) -> Batch:
        index = torch.randint(len(x), (batch_size,))
        return (x[index] if augment is None else augment(x[index])), y[index]

    def classify(net: nn.Module, xb: torch.Tensor, yb: torch.Tensor):
        logits = net(xb)
        return F.cross_entropy(logits.float(), yb), {"train_accuracy": (logits.argmax(1) == yb).float().mean()}

    evaluate = (lambda: {"test_accuracy": accuracy(model, x_test, y_test)}) if x_test is not None else None
    return train(ctx, name, model, optimizer, steps, draw, classify, schedule=schedule, log_every=log_every,
                 evaluate=evaluate, stop_on_nonfinite=stop_on_nonfinite, stop_when=stop_when)


def best_learning_rate(learning_rates: Sequence[float], trial: Callable[[float], dict], score: str = "loss") -> dict:
    """Run `trial(lr)` (one training run, returning a record of what it measured) for every learning
    rate of the grid; return the record whose `score` is lowest (a final loss, the steps to a target),
    with "lr" added. A diverged run (a non-finite score) counts as infinite; a tie goes to the earlier rate."""
    best = None
    for lr in learning_rates:
        record = trial(lr)
        value = record[score] if math.isfinite(record[score]) else math.inf
        if best is None or value < best[score]:
            best = record | {score: value, "lr": lr}
    return best
