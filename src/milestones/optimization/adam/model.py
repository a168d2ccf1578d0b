"""Adam (Kingma & Ba, 2014), written as the paper's Algorithm 1, with two later variants as options:
decoupled weight decay (AdamW, Loshchilov & Hutter 2017) and AMSGrad (Reddi, Kale & Kumar 2018).

Algorithm 1, for every parameter theta with gradient g_t at step t = 1, 2, ...:

    m_t = beta1 * m_{t-1} + (1 - beta1) * g_t          # running mean of the gradient (momentum)
    v_t = beta2 * v_{t-1} + (1 - beta2) * g_t^2        # running mean of its square, per weight
    m^_t = m_t / (1 - beta1^t)                         # bias correction: m and v start at zero,
    v^_t = v_t / (1 - beta2^t)                         #   so early averages are too small
    theta_t = theta_{t-1} - alpha * m^_t / (sqrt(v^_t) + eps)

The step is the gradient's recent mean divided by its recent root-mean-square, so its size per
weight is about alpha whatever the gradient's scale: the update is invariant to rescaling the loss,
and weights with rarely large gradients still move.

Why bias correction matters (Section 3 and 6.4): at t = 1, m_1 = (1 - beta1) g and
v_1 = (1 - beta2) g^2, so without correction the first step is alpha (1 - beta1) / sqrt(1 - beta2)
times the sign of g: with beta1 = 0.9 and beta2 = 0.9999 that is 10 alpha instead of alpha, and the
ratio stays far above 1 for the first ~1 / (1 - beta2) steps. `bias_correction=False` gives that
uncorrected variant, for the experiment.

Options:
- `weight_decay` with `decoupled=False` adds lambda * theta to g (the L2 penalty, coupled; as
  torch.optim.Adam); with `decoupled=True` it shrinks theta by (1 - alpha * lambda) before the step
  (as torch.optim.AdamW), so the decay is not divided by sqrt(v^). See
  [weight decay](../weight_decay/notes.md) for the two forms.
- `amsgrad=True` divides by the running maximum of v instead of v itself (bias-corrected as
  torch.optim.Adam does), so a weight's effective step size can only shrink.

Proven equal to torch.optim.Adam / AdamW (also with amsgrad=True) after 100 steps on a real model
in tests/equivalence/test_adam.py; later papers use the fused built-ins and point at that proof.
"""

from __future__ import annotations

import math

import torch


class Adam(torch.optim.Optimizer):
    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, decoupled: bool = False, amsgrad: bool = False,
                 bias_correction: bool = True):
        if lr <= 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"need lr > 0, eps >= 0, weight_decay >= 0 and betas in [0, 1); got "
                             f"{lr}, {eps}, {weight_decay}, {betas}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      decoupled=decoupled, amsgrad=amsgrad, bias_correction=bias_correction))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), eps, decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for theta in group["params"]:
                if theta.grad is None:
                    continue
                g = theta.grad
                state = self.state[theta]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(theta)
                    state["v"] = torch.zeros_like(theta)
                    if group["amsgrad"]:
                        state["v_max"] = torch.zeros_like(theta)
                state["step"] += 1
                t, m, v = state["step"], state["m"], state["v"]

                if decay and group["decoupled"]:
                    theta.mul_(1 - lr * decay)  # AdamW: shrink the weights outside the adaptive step
                elif decay:
                    g = g.add(theta, alpha=decay)  # L2 penalty: its gradient joins g

                m.mul_(beta1).add_(g, alpha=1 - beta1)  # m_t = b1 m + (1 - b1) g
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)  # v_t = b2 v + (1 - b2) g^2
                if group["amsgrad"]:
                    torch.maximum(state["v_max"], v, out=state["v_max"])
                    v = state["v_max"]

                if group["bias_correction"]:
                    m_hat = m / (1 - beta1 ** t)
                    root_v_hat = v.sqrt() / math.sqrt(1 - beta2 ** t)
                else:
                    m_hat, root_v_hat = m, v.sqrt()
                theta.addcdiv_(m_hat, root_v_hat.add_(eps), value=-lr)  # theta -= a m^ / (sqrt(v^) + eps)
        return loss
