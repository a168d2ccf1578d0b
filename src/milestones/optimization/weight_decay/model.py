"""Weight decay (Krogh & Hertz, 1991) as explicit update rules.

Weight decay pulls every weight towards zero a little at each step. There are two ways to write it,
and they only coincide for plain gradient descent:

1. **An L2 penalty added to the loss** ("coupled" decay). The network minimises

       E(w) + (lambda / 2) |w|^2,

   so the gradient gains a term lambda * w and the update is w <- w - lr * (g + lambda * w). Any
   machinery that transforms gradients (momentum, Adam's per-weight scaling) transforms the decay
   term too. This is what `torch.optim.SGD(weight_decay=lambda)` does.

2. **Decoupled decay.** Shrink the weights directly, then take the usual step on E alone:

       w <- w - lr * lambda * w,   then   w <- w - lr * (step computed from g).

   With no momentum the two are the same update; with momentum (or Adam, see
   [adam](../adam/model.py)) they differ, because the shrinkage no longer passes through the
   momentum buffer.

For the linear model the paper analyses, y = w . x, with the squared error summed over p examples,
E = 1/2 sum_mu (y_mu - w . x_mu)^2, the penalised minimum has a closed form (ridge regression),

       w_lambda = (X^T X + lambda I)^-1 X^T y,

and when the targets come from a teacher u with N(0, tau^2) components plus N(0, sigma^2) noise,
the expected test error is smallest at lambda* = sigma^2 / tau^2 (see notes.md for the derivation).

Proven equal to `torch.optim.SGD` in tests/equivalence/test_weight_decay.py.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


def l2_penalty(parameters: Iterable[torch.Tensor], strength: float) -> torch.Tensor:
    """(lambda / 2) * sum of squared weights: its gradient with respect to each w is lambda * w."""
    return 0.5 * strength * sum((p * p).sum() for p in parameters)


class DecayedSGD(torch.optim.Optimizer):
    """Stochastic gradient descent with momentum and weight decay, coupled or decoupled.

    With momentum mu, the velocity b and weights w follow (b starts at zero):

        coupled:    g' = g + lambda * w;           b <- mu * b + g';   w <- w - lr * b
        decoupled:  w_shrunk = (1 - lr * lambda) w;  b <- mu * b + g;    w <- w_shrunk - lr * b

    The coupled form is `torch.optim.SGD(lr, momentum, weight_decay)` with no dampening and no
    Nesterov term. Every parameter group may carry its own lr, momentum and weight_decay.
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 decoupled: bool = False):
        if lr <= 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"need lr > 0, momentum >= 0, weight_decay >= 0; got {lr}, {momentum}, {weight_decay}")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, decoupled=decoupled))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, mu, decay = group["lr"], group["momentum"], group["weight_decay"]
            for w in group["params"]:
                if w.grad is None:
                    continue
                g = w.grad
                if decay and group["decoupled"]:
                    w.mul_(1 - lr * decay)  # shrink first; the decay never enters the velocity
                elif decay:
                    g = g.add(w, alpha=decay)  # the gradient of the L2 penalty joins the gradient
                if mu:
                    state = self.state[w]
                    velocity = state.get("velocity")
                    velocity = g.clone() if velocity is None else velocity.mul_(mu).add_(g)
                    state["velocity"] = velocity
                    g = velocity
                w.add_(g, alpha=-lr)
        return loss


def ridge_solution(x: torch.Tensor, y: torch.Tensor, strength: float) -> torch.Tensor:
    """The minimiser of 1/2 |y - X w|^2 + (lambda / 2) |w|^2: w = (X^T X + lambda I)^-1 X^T y.

    x: (..., p, N) examples, y: (..., p) targets -> (..., N); leading dimensions are independent problems.
    """
    n = x.shape[-1]
    gram = x.transpose(-1, -2) @ x + strength * torch.eye(n, dtype=x.dtype, device=x.device)  # (..., N, N)
    return torch.linalg.solve(gram, (x.transpose(-1, -2) @ y.unsqueeze(-1))).squeeze(-1)


def optimal_decay(noise_variance: float, teacher_variance: float) -> float:
    """lambda* = sigma^2 / tau^2: the decay that minimises the expected test error of the linear
    student when the teacher's weights have variance tau^2 and the targets noise variance sigma^2."""
    return noise_variance / teacher_variance
