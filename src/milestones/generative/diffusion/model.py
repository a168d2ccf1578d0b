"""Diffusion probabilistic models (Sohl-Dickstein, Weiss, Maheswaranathan & Ganguli, 2015).

Two Markov chains over T steps. The *forward* chain q destroys the data: each step shrinks a point a
little towards the origin and adds a little Gaussian noise,

    q(x_t | x_{t-1}) = N(x_t; sqrt(1 - beta_t) x_{t-1}, beta_t I),        t = 1 .. T,

with a fixed schedule beta_1 < ... < beta_T, so that after T steps nothing of x_0 is left and x_T is
(nearly) a standard Gaussian. The *reverse* chain p is the generative model: it starts from that
Gaussian and undoes one small step at a time with a learned Gaussian kernel,

    p(x_T) = N(0, I),    p(x_{t-1} | x_t) = N(x_{t-1}; mu_theta(x_t, t), diag sigma^2_theta(x_t, t)).

The paper's observation: when every beta_t is small, the true reverse of a forward step is itself close
to a Gaussian, so a Gaussian kernel can model it well, and the whole chain can be arbitrarily flexible
while every step stays simple. Training maximises a lower bound K on log p(x_0) that is a sum of KL
divergences between Gaussians (`Diffusion.bound_terms`), all in closed form.

Indexing: t runs over 1 .. T as in the math; the buffers below have T + 1 entries so that index t is
step t, with entry 0 standing for "no noise yet" (beta_0 = 0, alpha_bar_0 = 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# log N(x; mean, diag exp(logvar)), summed over the last dimension: the VAE's decoder density, reused
from milestones.generative.vae.model import gaussian_log_density


@dataclass
class DiffusionConfig:
    dim: int = 2  # data dimension D
    steps: int = 40  # T, the number of diffusion steps
    beta_first: float = 1e-3  # beta_1: the first step adds noise of std ~0.03, below the data's own noise
    beta_last: float = 0.5  # beta_T; with a geometric schedule between them, alpha_bar_T ~ 0.018
    hidden: int = 128  # units per hidden layer of the reverse kernel's network
    layers: int = 3  # hidden layers
    time_bumps: int = 8  # K: the step t enters the network as K Gaussian bumps over 1 .. T


def geometric_betas(steps: int, first: float, last: float) -> torch.Tensor:
    """beta_1 .. beta_T in geometric progression from `first` to `last` (float64), so the noise level
    sqrt(1 - alpha_bar_t) grows by a roughly constant factor per step (0.03, 0.15 at t = 10, 0.36 at 20, 0.71
    at 30, 0.99 at 40 with the defaults): the structure fades evenly over the chain instead of being gone
    in the first quarter, as with a linear schedule. The paper learned beta_2 .. beta_T by gradient ascent
    on the bound (beta_1 fixed); we fix the whole schedule (notes.md)."""
    return torch.logspace(math.log10(first), math.log10(last), steps, dtype=torch.float64)


def gaussian_kl(mean_q: torch.Tensor, var_q: torch.Tensor, mean_p: torch.Tensor, var_p: torch.Tensor) -> torch.Tensor:
    """KL(N(mean_q, diag var_q) || N(mean_p, diag var_p)), summed over the last dimension:

        1/2 sum_i [ log(var_p / var_q) + (var_q + (mean_q - mean_p)^2) / var_p - 1 ]."""
    return 0.5 * (var_p.log() - var_q.log() + (var_q + (mean_q - mean_p) ** 2) / var_p - 1).sum(-1)


def time_bumps(steps: int, k: int) -> torch.Tensor:
    """(T + 1, K): row t holds K Gaussian bumps exp(-(t - c_k)^2 / (2 w^2)) with centers c_k evenly spaced over
    1 .. T and width w their spacing. Nearby steps get similar inputs, so what the network learns at one step
    carries over to its neighbours (the paper's "temporal basis functions" play the same part)."""
    t = torch.arange(steps + 1, dtype=torch.float32).unsqueeze(1)
    centers = torch.linspace(1, steps, k)
    width = max((steps - 1) / max(k - 1, 1), 1.0)
    return torch.exp(-0.5 * ((t - centers) / width) ** 2)


class ReverseKernel(nn.Module):
    """The network behind p(x_{t-1} | x_t): an MLP of x_t with the step t (as `time_bumps`, through a linear
    map) added to its first layer, and two heads read from its last hidden layer, in the spirit of the paper's
    own parameterisation (the mean as a correction to the forward step's shrinkage, the variance as a multiple
    of beta_t):

        mu_theta(x_t, t)        = sqrt(1 - beta_t) x_t + sqrt(beta_t) f_mu(x_t, t)
        sigma^2_theta(x_t, t)   = beta_t exp(f_sigma(x_t, t)).

    The heads start at zero, so the untrained kernel is N(sqrt(1 - beta_t) x_t, beta_t I): one more
    forward step, which knows nothing of the data."""

    def __init__(self, cfg: DiffusionConfig):
        super().__init__()
        self.input = nn.Linear(cfg.dim, cfg.hidden)
        self.register_buffer("bumps", time_bumps(cfg.steps, cfg.time_bumps))  # (T + 1, K)
        self.time = nn.Linear(cfg.time_bumps, cfg.hidden, bias=False)
        self.hidden = nn.ModuleList(nn.Linear(cfg.hidden, cfg.hidden) for _ in range(cfg.layers - 1))
        self.head = nn.Linear(cfg.hidden, 2 * cfg.dim)  # f_mu and f_sigma, D each
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(f_mu, f_sigma), each (B, D), for points x (B, D) at steps t (B,)."""
        h = F.relu(self.input(x) + self.time(self.bumps[t]))  # (B, H)
        for layer in self.hidden:
            h = F.relu(layer(h))
        return self.head(h).chunk(2, dim=-1)


class Diffusion(nn.Module):
    """The fixed forward chain q, its closed forms, the learned reverse chain p, the bound and the sampler."""

    def __init__(self, cfg: DiffusionConfig):
        super().__init__()
        self.cfg = cfg
        beta = torch.cat([torch.zeros(1, dtype=torch.float64),
                          geometric_betas(cfg.steps, cfg.beta_first, cfg.beta_last)])  # (T + 1,), beta_0 = 0
        alpha_bar = torch.cumprod(1 - beta, 0)  # alpha_bar_t = prod_{s <= t} (1 - beta_s), alpha_bar_0 = 1
        self.register_buffer("beta", beta.float())
        self.register_buffer("alpha_bar", alpha_bar.float())
        self.kernel = ReverseKernel(cfg)

    def _at(self, buffer: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """buffer[t] shaped (B, 1) to broadcast over the D coordinates of a batch of points."""
        return buffer[t].unsqueeze(-1)

    # ---------------------------------------------------------------------------------- the forward chain
    def forward_step(self, x_prev: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """One draw from q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I), given standard noise."""
        beta = self._at(self.beta, t)
        return (1 - beta).sqrt() * x_prev + beta.sqrt() * noise

    def marginal(self, x0: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I).

        Composing Gaussian steps: if x_{t-1} = a x_0 + sqrt(v) e, then x_t = sqrt(1 - beta_t) a x_0 +
        sqrt((1 - beta_t) v + beta_t) e'. Starting from a = 1, v = 0, the mean coefficient after t steps is
        prod sqrt(1 - beta_s) = sqrt(alpha_bar_t), and v_t = 1 - alpha_bar_t solves v_t = (1 - beta_t)
        v_{t-1} + beta_t (tests/equivalence/test_diffusion.py iterates it)."""
        alpha_bar = self._at(self.alpha_bar, t)
        return alpha_bar.sqrt() * x0, (1 - alpha_bar).expand_as(x0)

    def sample_marginal(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t ~ q(x_t | x_0) in one jump: sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise."""
        mean, var = self.marginal(x0, t)
        return mean + var.sqrt() * noise

    def posterior(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of q(x_{t-1} | x_t, x_0), the forward chain run backwards when x_0 is known.

        By Bayes, q(x_{t-1} | x_t, x_0) is proportional to q(x_t | x_{t-1}) q(x_{t-1} | x_0), a product of
        two Gaussians in x_{t-1}, hence Gaussian with

            variance  beta~_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) * beta_t
            mean      mu~_t   = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) * x_0
                              + sqrt(1 - beta_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) * x_t.

        At t = 1 the variance is 0: x_0 itself."""
        beta, alpha_bar = self._at(self.beta, t), self._at(self.alpha_bar, t)
        alpha_bar_prev = self._at(self.alpha_bar, t - 1)
        mean = (alpha_bar_prev.sqrt() * beta * x0 + (1 - beta).sqrt() * (1 - alpha_bar_prev) * xt) / (1 - alpha_bar)
        var = (1 - alpha_bar_prev) / (1 - alpha_bar) * beta
        return mean, var.expand_as(x0)

    # ---------------------------------------------------------------------------------- the reverse chain
    def reverse(self, xt: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of the learned kernel p(x_{t-1} | x_t) (see `ReverseKernel`)."""
        f_mu, f_sigma = self.kernel(xt, t)
        beta = self._at(self.beta, t)
        return (1 - beta).sqrt() * xt + beta.sqrt() * f_mu, beta * f_sigma.exp()

    # ---------------------------------------------------------------------------------- the bound
    def prior_term(self, x0: torch.Tensor) -> torch.Tensor:
        """KL(q(x_T | x_0) || p(x_T)), (B,): how far the forward chain's end is from the N(0, I) the
        reverse chain starts from. It has no parameters (the schedule is fixed)."""
        t = torch.full((len(x0),), self.cfg.steps, device=x0.device)
        mean, var = self.marginal(x0, t)
        return gaussian_kl(mean, var, torch.zeros_like(mean), torch.ones_like(var))

    def step_term(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The bound's term for step t (B,), from one draw x_t = sample_marginal(x0, t, noise):

            t >= 2:  KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))
            t = 1:   -log p(x_0 | x_1)   (the posterior at t = 1 is the point x_0: the KL becomes a density)."""
        xt = self.sample_marginal(x0, t, noise)
        mean_p, var_p = self.reverse(xt, t)
        mean_q, var_q = self.posterior(x0, xt, t)
        first = t == 1
        var_q = torch.where(first.unsqueeze(-1), torch.ones_like(var_q), var_q)  # keeps log(var_q) finite; unused
        nll = -gaussian_log_density(x0, mean_p, var_p.log())
        return torch.where(first, nll, gaussian_kl(mean_q, var_q, mean_p, var_p))

    def bound_terms(self, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """All the terms of the negative bound, (B, T + 1): column 0 is -log p(x_0 | x_1), column t - 1 for
        t = 2 .. T the KL of step t, column T the prior term. `noise` (T, B, D) gives each step its own x_t.
        Their sum is -K(x_0), with

            log p(x_0) >= K(x_0) = -KL(q(x_T|x_0) || p(x_T)) - sum_{t=2}^T E_q KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t))
                                  + E_q log p(x_0 | x_1),

        which follows from Jensen's inequality on log E_q[p(x_{0:T}) / q(x_{1:T} | x_0)] once q(x_{1:T} | x_0)
        is rewritten backwards with the posteriors (the paper's Appendix B)."""
        steps = [self.step_term(x0, torch.full((len(x0),), t, device=x0.device), noise[t - 1])
                 for t in range(1, self.cfg.steps + 1)]
        return torch.stack([*steps, self.prior_term(x0)], 1)

    def bound(self, x0: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """K(x_0) in nats, (B,), estimated with one draw of x_t per step (summing over every t)."""
        noise = torch.randn(self.cfg.steps, *x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
        return -self.bound_terms(x0, noise).sum(1)

    def loss(self, x0: torch.Tensor) -> torch.Tensor:
        """An unbiased estimate of the mean negative bound -K per point, for training: one step t drawn
        uniformly per point, its term weighted by T (E_t[T term_t] = sum_t term_t), plus the prior term."""
        t = torch.randint(1, self.cfg.steps + 1, (len(x0),), device=x0.device)
        term = self.step_term(x0, t, torch.randn_like(x0))
        return (self.cfg.steps * term + self.prior_term(x0)).mean()

    # ---------------------------------------------------------------------------------- sampling
    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, trajectory: bool = False):
        """Ancestral sampling: x_T ~ N(0, I), then x_{t-1} ~ p(x_{t-1} | x_t) for t = T .. 1. Returns x_0
        (n, D), or with `trajectory` the whole chain (T + 1, n, D), entry t holding x_t."""
        device, dtype = self.beta.device, self.beta.dtype
        x = torch.randn(n, self.cfg.dim, generator=generator, dtype=dtype).to(device)
        chain = [x]
        for t in range(self.cfg.steps, 0, -1):
            mean, var = self.reverse(x, torch.full((n,), t, device=device))
            x = mean + var.sqrt() * torch.randn(n, self.cfg.dim, generator=generator, dtype=dtype).to(device)
            chain.append(x)
        return torch.stack(chain[::-1]) if trajectory else x
