"""Denoising diffusion probabilistic models (Ho, Jain & Abbeel, 2020).

The model is the diffusion model of Sohl-Dickstein et al. (../diffusion): a fixed forward chain that
adds Gaussian noise over T steps,

    q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I),     q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)

with abar_t = prod_{s <= t} (1 - beta_s), and a learned reverse chain p(x_{t-1} | x_t) = N(mu_theta(x_t, t),
sigma_t^2 I) that undoes it one step at a time. This paper changed three things, and they made it work
on images:

1. The reverse variances are *fixed*, sigma_t^2 = beta_t (or the posterior's beta~_t), not learned.
2. The mean is parameterised through the noise. Writing x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, the
   posterior mean of q(x_{t-1} | x_t, x_0) becomes

       mu~_t = 1 / sqrt(alpha_t) * ( x_t - beta_t / sqrt(1 - abar_t) * eps ),      alpha_t = 1 - beta_t,

   so a network eps_theta(x_t, t) that *predicts the noise* gives mu_theta by the same formula (eq. 11).
   The bound's KL term for step t is then a weighted squared error in eps (eq. 12),

       L_{t-1} = beta_t^2 / (2 sigma_t^2 alpha_t (1 - abar_t)) * || eps - eps_theta(x_t, t) ||^2 + const,

   which is denoising score matching at noise level t.
3. The weights are dropped: L_simple = E_{t, x_0, eps} || eps - eps_theta(x_t, t) ||^2 (eq. 14). Relative
   to the bound it turns down the small-t terms (easy denoising of faint noise) and lets the network
   spend itself on the hard, noisy ones. It is not a bound any more; it gives better samples (Table 2).

Sampling is ancestral (Algorithm 2): x_T ~ N(0, I), then x_{t-1} = mu_theta(x_t, t) + sigma_t z for
t = T .. 1, with no noise added at the last step.

The network is the U-Net of ../../foundations/unet, told the step t through the Transformer's sinusoidal
encoding (../../transformers/transformer) and given one self-attention layer at its lowest resolution,
and, as in the paper's PixelCNN++-style U-Net, residual blocks with group normalisation in place of the
2015 U-Net's plain double convolutions (`DenoisingUNet`).

Indexing: t runs over 1 .. T as in the paper. The schedule buffers have T + 1 entries, entry t for step
t and entry 0 for "no noise" (beta_0 = 0, abar_0 = 1). diffusers' DDPMScheduler counts 0 .. T - 1: its
timestep k is our t = k + 1 (tests/equivalence/test_ddpm.py checks exactly this).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from milestones.foundations.unet.model import UNet, center_crop
from milestones.transformers.transformer.model import MultiHeadAttention, sinusoidal_positions

PREDICTIONS = ("epsilon", "mu")  # what the network outputs: the noise, or the reverse mean itself
VARIANCES = ("beta", "posterior")  # sigma_t^2 = beta_t, or the posterior variance beta~_t


@dataclass
class DDPMConfig:
    channels: int = 1  # image channels
    size: int = 8  # image side (sampling draws size x size images)
    widths: tuple[int, ...] = (32, 64)  # U-Net channels per level (8 x 8 -> 4 x 4 with two levels)
    heads: int = 4  # self-attention heads at the lowest resolution
    steps: int = 100  # T
    beta_first: float = 1e-3  # beta_1 and beta_T of the linear schedule; the paper's 1e-4 .. 0.02
    beta_last: float = 0.2  # for T = 1000, scaled by 1000 / T here so that abar_T is about as small
    prediction: str = "epsilon"
    variance: str = "beta"


def linear_betas(steps: int, first: float, last: float) -> torch.Tensor:
    """beta_1 .. beta_T evenly spaced from `first` to `last` (float64), the paper's schedule."""
    return torch.linspace(first, last, steps, dtype=torch.float64)


class ResidualBlock(nn.Module):
    """The paper's unit of work (a wide-ResNet block, ../../optimization/resnet, as in PixelCNN++), told the step:

        h = conv3x3(silu(GN(x))) + W_l e,     out = shortcut(x) + conv3x3(silu(GN(h)))

    GN is group normalisation, e the step's embedding; the shortcut is a 1 x 1 convolution when the
    channels change, else the identity."""

    def __init__(self, c_in: int, c_out: int, embed: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(min(8, c_in), c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(embed, c_out)
        self.norm2, self.conv2 = nn.GroupNorm(min(8, c_out), c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """x (B, c_in, H, W), e (B, embed) -> (B, c_out, H, W)."""
        h = self.conv1(F.silu(self.norm1(x))) + self.time(e)[:, :, None, None]
        return self.shortcut(x) + self.conv2(F.silu(self.norm2(h)))


class DenoisingUNet(UNet):
    """unet's U (levels of `widths` channels, max-pooling down, up-convolution and the concatenated skip
    up, a 1 x 1 head), with the paper's changes:

    - the step t enters as the sinusoidal encoding PE(t) (the Transformer's positions, with t in the
      place of a position), through a two-layer MLP: e = W_2 silu(W_1 PE(t));
    - every double convolution becomes a `ResidualBlock` that adds its own projection of e, so every
      level, down and up, knows the noise level; a 3 x 3 stem lifts the image to widths[0] channels;
    - at the lowest resolution the h x w positions attend to one another (pre-norm, residual):
      x <- x + MHA(GN(x)), so that a pixel of the coarse picture takes in the whole digit at once;
    - the head reads silu(GN(x)).
    With `widths` (16, 32) on 8 x 8 digits: levels at 8 x 8 and 4 x 4, attention over 16 positions."""

    def __init__(self, channels: int, widths: tuple[int, ...], steps: int, heads: int, out_channels: int):
        super().__init__(channels, out_channels, widths, padding=True, skip=True)
        embed = 4 * widths[0]
        self.register_buffer("positions", sinusoidal_positions(steps + 1, widths[0]))  # (T + 1, w_0)
        self.time = nn.Sequential(nn.Linear(widths[0], embed), nn.SiLU(), nn.Linear(embed, embed))
        self.stem = nn.Conv2d(channels, widths[0], 3, padding=1)
        pairs = zip((widths[0], *widths), widths)  # (w_0, w_0), (w_0, w_1), ...
        self.down = nn.ModuleList(ResidualBlock(c_in, c_out, embed) for c_in, c_out in pairs)
        for up, c_out in zip(self.up, widths[-2::-1]):
            up.conv = ResidualBlock(2 * c_out, c_out, embed)  # after the up-convolution and the concatenation
        self.attention_norm = nn.GroupNorm(min(8, widths[-1]), widths[-1])
        self.attention = MultiHeadAttention(widths[-1], heads)
        self.head_norm = nn.GroupNorm(min(8, widths[0]), widths[0])

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W), steps t (B,) in 1 .. T -> (B, out_channels, H, W)."""
        e = self.time(self.positions[t])  # (B, E)
        x = self.stem(x)
        across = []
        for level, block in enumerate(self.down):
            if level:
                x = F.max_pool2d(x, 2)  # (B, C, H/2, W/2)
            x = block(x, e)
            across.append(x)
        x = across.pop()  # the bottom of the U: (B, w_L, h, w)
        tokens = self.attention_norm(x).flatten(2).transpose(1, 2)  # (B, h w, w_L)
        x = x + self.attention(tokens, tokens, tokens).transpose(1, 2).reshape(x.shape)
        for up in self.up:  # unet's Up, its double convolution now a residual block that takes e
            below = up.up(x)  # (B, C_out, 2h, 2w)
            x = up.conv(torch.cat([center_crop(across.pop(), *below.shape[-2:]), below], dim=1), e)
        return self.head(F.silu(self.head_norm(x)))


class DDPM(nn.Module):
    """The schedule and its closed forms, the network, the two losses of Table 2, and the sampler."""

    def __init__(self, cfg: DDPMConfig):
        super().__init__()
        if cfg.prediction not in PREDICTIONS or cfg.variance not in VARIANCES:
            raise ValueError(f"prediction must be one of {PREDICTIONS} and variance one of {VARIANCES}")
        self.cfg = cfg
        self.set_schedule(linear_betas(cfg.steps, cfg.beta_first, cfg.beta_last))
        self.net = DenoisingUNet(cfg.channels, cfg.widths, cfg.steps, cfg.heads, cfg.channels)

    def set_schedule(self, betas: torch.Tensor, dtype: torch.dtype = torch.float32) -> None:
        """Buffers from beta_1 .. beta_T (computed in float64, stored in `dtype`): beta, abar, and the
        posterior variance beta~_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t, each indexed 0 .. T."""
        beta = torch.cat([torch.zeros(1, dtype=torch.float64), betas.double()])
        alpha_bar = torch.cumprod(1 - beta, 0)
        posterior_var = torch.zeros_like(beta)
        posterior_var[1:] = (1 - alpha_bar[:-1]) / (1 - alpha_bar[1:]) * beta[1:]  # beta~_1 = 0
        for name, value in (("beta", beta), ("alpha_bar", alpha_bar), ("posterior_var", posterior_var)):
            self.register_buffer(name, value.to(dtype))

    def _at(self, buffer: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """buffer[t] shaped (B, 1, 1, 1), to broadcast over a batch of images."""
        return buffer[t].view(-1, 1, 1, 1)

    # ------------------------------------------------------------------------- the forward chain
    def add_noise(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t ~ q(x_t | x_0) in one jump (eq. 4): sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps."""
        alpha_bar = self._at(self.alpha_bar, t)
        return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise

    def posterior(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of q(x_{t-1} | x_t, x_0) (eqs. 6-7), for t >= 1:

            mu~_t   = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x_0 + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) x_t
            beta~_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t."""
        beta, alpha_bar, alpha_bar_prev = self._at(self.beta, t), self._at(self.alpha_bar, t), \
            self._at(self.alpha_bar, t - 1)
        mean = (alpha_bar_prev.sqrt() * beta * x0 + (1 - beta).sqrt() * (1 - alpha_bar_prev) * xt) / (1 - alpha_bar)
        return mean, self._at(self.posterior_var, t).expand_as(x0)

    def predict_x0(self, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t): eq. 4 solved for x_0."""
        alpha_bar = self._at(self.alpha_bar, t)
        return (xt - (1 - alpha_bar).sqrt() * eps) / alpha_bar.sqrt()

    def mean_from_epsilon(self, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """mu = 1 / sqrt(alpha_t) (x_t - beta_t / sqrt(1 - abar_t) eps) (eq. 11): the posterior mean with
        `predict_x0` put in for x_0, simplified."""
        beta, alpha_bar = self._at(self.beta, t), self._at(self.alpha_bar, t)
        return (xt - beta / (1 - alpha_bar).sqrt() * eps) / (1 - beta).sqrt()

    def variance(self, t: torch.Tensor) -> torch.Tensor:
        """sigma_t^2, (B, 1, 1, 1): beta_t or beta~_t. At t = 1 both use beta~_2, as the paper's code does
        (beta~_1 is 0, and the decoder p(x_0 | x_1) needs a width; the sampler adds no noise there)."""
        table = (self.beta if self.cfg.variance == "beta" else self.posterior_var).clone()
        table[1] = self.posterior_var[2]
        return self._at(table, t)

    # ------------------------------------------------------------------------- the reverse chain
    def reverse_mean(self, xt: torch.Tensor, t: torch.Tensor, clip: bool = False) -> torch.Tensor:
        """mu_theta(x_t, t). With `clip`, the x_0 the network implies is clipped to the data's range [-1, 1]
        and the mean recomputed from it as the posterior mean (the paper's sampler does this)."""
        out = self.net(xt, t)
        if not clip:
            return self.mean_from_epsilon(xt, t, out) if self.cfg.prediction == "epsilon" else out
        return self.posterior(self.implied_x0(xt, t, out).clamp(-1, 1), xt, t)[0]

    def implied_x0(self, xt: torch.Tensor, t: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """The x_0 that the network's output stands for: from eps by eq. 4, from a mean mu by solving
        mu = c_0 x_0 + c_t x_t (the posterior mean's coefficients) for x_0."""
        if self.cfg.prediction == "epsilon":
            return self.predict_x0(xt, t, out)
        ones = torch.ones_like(xt)
        c_t = self.posterior(torch.zeros_like(xt), ones, t)[0]  # the coefficient of x_t
        c_0 = self.posterior(ones, torch.zeros_like(xt), t)[0]  # of x_0
        return (out - c_t * xt) / c_0

    def step(self, out: torch.Tensor, xt: torch.Tensor, t: int, noise: torch.Tensor,
             clip: bool = False) -> torch.Tensor:
        """One step of Algorithm 2 from the network's output `out` at x_t: x_{t-1} = mu + sigma_t z, z = `noise`,
        with no noise at t = 1. Through the posterior mean of the implied x_0, clipped if `clip`."""
        steps = torch.full((len(xt),), t, device=xt.device)
        x0 = self.implied_x0(xt, steps, out)
        mean = self.posterior(x0.clamp(-1, 1) if clip else x0, xt, steps)[0]
        return mean + self.variance(steps).sqrt() * noise if t > 1 else mean

    def network_step(self, t: torch.Tensor) -> torch.Tensor:
        """The step the network is told at sampling step t: t itself (a respaced sampler maps it back)."""
        return t

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, clip: bool = False, trajectory: bool = False):
        """Ancestral sampling from x_T ~ N(0, I). Returns x_0 (n, C, H, W), or with `trajectory` the chain
        (T + 1, n, C, H, W), entry t holding x_t."""
        device, dtype = self.beta.device, self.beta.dtype
        shape = (n, self.cfg.channels, self.cfg.size, self.cfg.size)
        x = torch.randn(shape, generator=generator, dtype=dtype).to(device)
        chain = [x]
        for t in range(self.cfg.steps, 0, -1):
            out = self.net(x, self.network_step(torch.full((n,), t, device=device)))
            x = self.step(out, x, t, torch.randn(shape, generator=generator, dtype=dtype).to(device), clip)
            chain.append(x)
        return torch.stack(chain[::-1]) if trajectory else x

    # ------------------------------------------------------------------------- the losses of Table 2
    def draw(self, x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A step t ~ U{1 .. T} and noise eps ~ N(0, I) per image, and x_t."""
        t = torch.randint(1, self.cfg.steps + 1, (len(x0),), device=x0.device)
        noise = torch.randn_like(x0)
        return t, noise, self.add_noise(x0, t, noise)

    def simple_loss(self, x0: torch.Tensor) -> torch.Tensor:
        """L_simple (eq. 14): the mean squared error between eps and eps_theta(x_t, t), t uniform."""
        if self.cfg.prediction != "epsilon":
            raise ValueError("L_simple is the epsilon-prediction loss")
        t, noise, xt = self.draw(x0)
        return F.mse_loss(self.net(xt, t), noise)

    def bound_terms(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The negative bound's term for step t, in nats per image (B,), for either parameterisation:

            t >= 2:  KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))
                   = 1 / (2 sigma_t^2) || mu~_t - mu_theta ||^2 + D/2 (r - 1 - log r),   r = beta~_t / sigma_t^2
            t = 1:   -log N(x_0; mu_theta(x_1, 1), sigma_1^2 I)   (a continuous Gaussian decoder; the paper's
                     decoder is discretised over the 256 pixel levels: our pixels are continuous in [0, 1])."""
        xt = self.add_noise(x0, t, noise)
        mean_q = self.posterior(x0, xt, t)[0]
        mean_p = self.reverse_mean(xt, t)
        var_p = self.variance(t)
        squared = (mean_q - mean_p).square().flatten(1).sum(1) / (2 * var_p.flatten())
        dims = x0[0].numel()
        ratio = (self._at(self.posterior_var, t) / var_p).flatten()
        first = t == 1
        ratio = torch.where(first, torch.ones_like(ratio), ratio)  # keeps the log finite at t = 1; unused there
        kl_const = 0.5 * dims * (ratio - 1 - ratio.log())
        decoder_const = 0.5 * dims * (torch.log(2 * torch.pi * var_p.flatten()))
        return squared + torch.where(first, decoder_const, kl_const)

    def bound_loss(self, x0: torch.Tensor) -> torch.Tensor:
        """An unbiased estimate of the mean negative bound per image less its constant prior term
        L_T = KL(q(x_T | x_0) || N(0, I)): T times the term of one uniform step per image."""
        t, noise, _ = self.draw(x0)
        return (self.cfg.steps * self.bound_terms(x0, t, noise)).mean()
