"""Improved denoising diffusion probabilistic models (Nichol & Dhariwal, 2021).

Three changes to DDPM (../ddpm), each small, each aimed at a weakness of the original:

1. **The cosine schedule.** DDPM's linear betas drive abar_t to nearly zero well before t = T on small
   images: the last part of the chain is pure noise and teaches the network nothing. The paper defines
   abar directly,

       abar_t = f(t) / f(0),    f(t) = cos^2( (t / T + s) / (1 + s) * pi / 2 ),    s = 0.008,

   so that it falls like a cosine, slowly at both ends, and sets beta_t = 1 - abar_t / abar_{t-1},
   clipped at 0.999 so that the last step stays finite (`cosine_betas`).

2. **Learned variances.** DDPM fixed sigma_t^2 to beta_t or beta~_t; the paper lets the network choose
   between them, per pixel, with a second output v:

       log sigma_t^2 = frac log beta_t + (1 - frac) log beta~_t,     frac = (v + 1) / 2

   (its eq. 15 writes v for frac; the released code, and diffusers' "learned_range", map the raw output
   as here). The variance has no gradient from L_simple, so it is trained by the *hybrid* loss

       L_hybrid = L_simple + lambda L_vlb,    lambda = 0.001,

   in which L_vlb, the variational bound, sees the mean only through a stop-gradient: the mean is still
   learned by L_simple, the variance by the bound.

3. **Strided sampling.** A model trained on T steps can sample with any increasing subsequence S of
   them: keep abar at the steps of S, and recompute the betas of the shorter chain from the kept
   abar's, beta_{S_i} = 1 - abar_{S_i} / abar_{S_{i-1}} (and beta~ from those). With learned variances
   the network's frac interpolates within the new, wider range; with fixed variances the sampler has
   to pick one end, and loses more when the steps are few (the paper's Figure 8).

`ImprovedDDPM` subclasses `DDPM` and reuses its closed forms (`add_noise`, `posterior`, `predict_x0`)
and its network. Indexing as in DDPM: t = 1 .. T, buffers of T + 1 entries. A respaced model (`respaced`)
has K steps of its own, numbered 1 .. K, and `timesteps` maps each to the training step the network was
taught it as.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from milestones.generative.ddpm.model import DDPM, DDPMConfig, DenoisingUNet, linear_betas

SCHEDULES = ("linear", "cosine")


@dataclass
class ImprovedDDPMConfig(DDPMConfig):
    schedule: str = "cosine"  # or DDPM's "linear" (beta_first .. beta_last)
    learn_variance: bool = True  # the network's second output chooses sigma_t^2 (else DDPM's `variance`)
    hybrid_weight: float = 0.001  # lambda of L_hybrid


def cosine_betas(steps: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """beta_1 .. beta_T of the cosine schedule (float64): 1 - abar_t / abar_{t-1}, clipped at max_beta."""
    f = torch.cos((torch.arange(steps + 1, dtype=torch.float64) / steps + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]  # abar_0 = 1 .. abar_T
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=max_beta)


def spaced_steps(steps: int, kept: int) -> torch.Tensor:
    """`kept` training steps out of 1 .. T, evenly spaced from 1 to T (rounded), increasing (diffusers'
    "linspace" spacing). At least two, so that the chain starts at T and ends at 1."""
    if not 2 <= kept <= steps:
        raise ValueError(f"can keep 2 .. {steps} steps, not {kept}")
    return torch.linspace(0, steps - 1, kept, dtype=torch.float64).round().long() + 1


def respaced_betas(alpha_bar: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """The betas of the shorter chain through the steps `kept` (increasing, in 1 .. T) of a chain whose
    abar_0 .. abar_T is `alpha_bar`: beta_i = 1 - abar_{kept_i} / abar_{kept_{i-1}}, abar before the first = 1.
    Their cumulative products of (1 - beta) are the kept abar's themselves."""
    kept_bar = alpha_bar.double()[kept]
    previous = torch.cat([torch.ones(1, dtype=torch.float64), kept_bar[:-1]])
    return 1 - kept_bar / previous


class ImprovedDDPM(DDPM):
    def __init__(self, cfg: ImprovedDDPMConfig):
        if cfg.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {cfg.schedule!r}")
        super().__init__(cfg)
        if cfg.schedule == "cosine":
            self.set_schedule(cosine_betas(cfg.steps))
        if cfg.learn_variance:  # two outputs per pixel: eps and v
            self.net = DenoisingUNet(cfg.channels, cfg.widths, cfg.steps, cfg.heads, 2 * cfg.channels)
        self.register_buffer("timesteps", torch.arange(cfg.steps + 1))  # the training step of each step

    def betas(self) -> torch.Tensor:
        """beta_1 .. beta_T of the configured schedule (float64), before any respacing."""
        if self.cfg.schedule == "cosine":
            return cosine_betas(self.cfg.steps)
        return linear_betas(self.cfg.steps, self.cfg.beta_first, self.cfg.beta_last)

    def respaced(self, kept: int) -> ImprovedDDPM:
        """A sampler of `kept` steps (`spaced_steps`, `respaced_betas`) that shares this model's network.
        Respace the trained model, not a respaced one."""
        steps = spaced_steps(self.cfg.steps, kept)
        alpha_bar = torch.cumprod(torch.cat([torch.ones(1, dtype=torch.float64), 1 - self.betas()]), 0)
        sampler = ImprovedDDPM(replace(self.cfg, steps=kept))
        sampler.net = self.net  # told the original steps through `timesteps`
        sampler.set_schedule(respaced_betas(alpha_bar, steps), self.beta.dtype)
        sampler.timesteps = torch.cat([torch.zeros(1, dtype=torch.long), steps])
        return sampler.to(self.beta.device)

    # ------------------------------------------------------------------------- the learned variance
    def split(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The network's output -> (eps, v), v None when the variances are fixed."""
        return out.chunk(2, dim=1) if self.cfg.learn_variance else (out, None)

    def log_variance(self, t: torch.Tensor, v: torch.Tensor | None) -> torch.Tensor:
        """log sigma_t^2: frac log beta_t + (1 - frac) log beta~_t, frac = (v + 1) / 2; DDPM's fixed
        choice when v is None. beta~_1 = 0, so step 1 uses beta~_2 as its lower end (the released code's
        clipping; the sampler adds no noise at step 1)."""
        if v is None:
            return self.variance(t).log()
        lower = self.posterior_var.clone()
        lower[1] = self.posterior_var[2]
        frac = (v + 1) / 2
        return frac * self._at(self.beta, t).log() + (1 - frac) * self._at(lower, t).log()

    # ------------------------------------------------------------------------- sampling
    def step(self, out: torch.Tensor, xt: torch.Tensor, t: int, noise: torch.Tensor,
             clip: bool = False) -> torch.Tensor:
        """One ancestral step from the network's output (eps, or eps and v stacked on the channels)."""
        eps, v = self.split(out)
        steps = torch.full((len(xt),), t, device=xt.device)
        x0 = self.predict_x0(xt, steps, eps)
        mean = self.posterior(x0.clamp(-1, 1) if clip else x0, xt, steps)[0]
        return mean + (0.5 * self.log_variance(steps, v)).exp() * noise if t > 1 else mean

    def network_step(self, t: torch.Tensor) -> torch.Tensor:
        """The training step the network was taught as this model's step t (DDPM's `sample` asks)."""
        return self.timesteps[t]

    # ------------------------------------------------------------------------- the hybrid loss
    def vlb_terms(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor,
                  v: torch.Tensor | None) -> torch.Tensor:
        """The bound's step-t term in bits per dimension (B,): KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))
        for t >= 2, -log p(x_0 | x_1) for t = 1 (a continuous Gaussian decoder, as in ../ddpm)."""
        mean_p = self.posterior(self.predict_x0(xt, t, eps), xt, t)[0]
        log_var_p = self.log_variance(t, v).expand_as(x0)
        mean_q, var_q = self.posterior(x0, xt, t)
        first = (t == 1).view(-1, 1, 1, 1)
        var_q = torch.where(first, torch.ones_like(var_q), var_q)  # keeps log(var_q) finite; unused at t = 1
        kl = 0.5 * (log_var_p - var_q.log() + (var_q + (mean_q - mean_p) ** 2) / log_var_p.exp() - 1)
        nll = 0.5 * (math.log(2 * math.pi) + log_var_p + (x0 - mean_p) ** 2 / log_var_p.exp())
        return torch.where(first, nll, kl).flatten(1).mean(1) / math.log(2)

    def hybrid_loss(self, x0: torch.Tensor) -> torch.Tensor:
        """L_simple + lambda T E_t[L_vlb term], the mean reaching the bound only through a stop-gradient.
        With fixed variances the bound has nothing left to train, and this is L_simple."""
        t, noise, xt = self.draw(x0)
        eps, v = self.split(self.net(xt, t))
        simple = F.mse_loss(eps, noise)
        if v is None:
            return simple
        vlb = self.vlb_terms(x0, xt, t, eps.detach(), v)
        return simple + self.cfg.hybrid_weight * self.cfg.steps * vlb.mean()
