"""The variational autoencoder (Kingma & Welling, 2013): a decoder that is a generative model, an
encoder that is its approximate posterior, both trained on one bound by plain stochastic gradients.

A latent-variable model draws a code z ~ p(z) = N(0, I) and then the data x ~ p_theta(x | z), where
p_theta is a neural network, the *decoder*. Its likelihood p(x) = integral p(x | z) p(z) dz has no
closed form and neither has the posterior p(z | x). An *encoder* network q_phi(z | x) = N(mu(x),
diag sigma^2(x)) stands in for the posterior, and the evidence lower bound (ELBO)

    log p(x) >= L(x) = E_{q(z|x)}[ log p(x | z) ] - KL( q(z | x) || p(z) )

is maximised in theta and phi together. For two diagonal Gaussians the KL is exact (`gaussian_kl`);
the first term, the reconstruction, needs a Monte Carlo estimate. Its gradient in theta is easy (the
average of grad log p(x | z) over sampled z); its gradient in phi is the problem, since phi shapes
the distribution the samples come from.

The paper's answer is the *reparameterization*: draw eps ~ N(0, I) and set z = mu + sigma * eps, a
deterministic, differentiable function of phi. Then

    grad_phi E_q[ f(z) ] = E_eps[ grad_phi f(mu + sigma * eps) ]

and ordinary backpropagation through the sample gives a low-variance estimate (`elbo`; the AEVB
estimator, one sample per data point as in the paper). The older alternative is the score-function
(REINFORCE) estimator, E_q[ f(z) grad_phi log q(z | x) ], which needs only samples of z and so
works for any q, but whose variance is large: `score_function_surrogate` builds it, for comparison.

The networks are the paper's: one hidden layer of tanh units each (Appendix C). The decoder's
likelihood is Bernoulli (pixel intensities in [0, 1] as the probabilities' targets, the paper's choice
for MNIST) or Gaussian with a learned mean and log-variance per pixel (its choice for Frey faces).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

LOG_2PI = math.log(2 * math.pi)


@dataclass
class VAEConfig:
    pixels: int = 64  # the data's dimension (8 x 8 digits, flattened)
    hidden: int = 200  # tanh units in the encoder's and in the decoder's one hidden layer
    latent: int = 2  # the code's dimension
    likelihood: str = "bernoulli"  # or "gaussian"


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL( N(mean, diag exp(logvar)) || N(0, I) ) per row, (N, J) -> (N,): the paper's Appendix B,

        -KL = 1/2 sum_j ( 1 + log sigma_j^2 - mu_j^2 - sigma_j^2 )."""
    return -0.5 * (1 + logvar - mean.square() - logvar.exp()).sum(-1)


def gaussian_log_density(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mean, diag exp(logvar)) per row, summed over the last dimension."""
    return -0.5 * (LOG_2PI + logvar + (z - mean).square() / logvar.exp()).sum(-1)


def reparameterize(mean: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
    """z = mean + sigma * eps, eps ~ N(0, I): a sample of q whose gradient flows back to mean and logvar."""
    eps = torch.randn_like(mean) if eps is None else eps
    return mean + (0.5 * logvar).exp() * eps


class VAE(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        if cfg.likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', got {cfg.likelihood!r}")
        self.cfg = cfg
        self.enc_hidden = nn.Linear(cfg.pixels, cfg.hidden)
        self.enc_out = nn.Linear(cfg.hidden, 2 * cfg.latent)  # mean and log-variance
        self.dec_hidden = nn.Linear(cfg.latent, cfg.hidden)
        outputs = cfg.pixels * (2 if cfg.likelihood == "gaussian" else 1)
        self.dec_out = nn.Linear(cfg.hidden, outputs)  # Bernoulli logits, or Gaussian mean and log-variance

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | x): the mean and log-variance, each (N, latent), of flat data x (N, pixels)."""
        mean, logvar = self.enc_out(torch.tanh(self.enc_hidden(x))).chunk(2, dim=-1)
        return mean, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's parameters for p(x | z): logits (N, pixels), or mean and log-variance (N, 2 pixels)."""
        return self.dec_out(torch.tanh(self.dec_hidden(z)))

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x | z) per row (N,)."""
        out = self.decode(z)
        if self.cfg.likelihood == "bernoulli":
            # sum_i x_i log p_i + (1 - x_i) log(1 - p_i), p = sigmoid(logits)
            return -F.binary_cross_entropy_with_logits(out, x, reduction="none").sum(-1)
        mean, logvar = out.chunk(2, dim=-1)
        return gaussian_log_density(x, torch.sigmoid(mean), logvar)  # means in [0, 1], like the pixels

    def mean_image(self, z: torch.Tensor) -> torch.Tensor:
        """E[x | z], (N, pixels): what the decoder draws for each code (the pictures of Figure 4)."""
        out = self.decode(z)
        return torch.sigmoid(out if self.cfg.likelihood == "bernoulli" else out.chunk(2, dim=-1)[0])

    def elbo(self, x: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
        """The ELBO per row (N,), estimated with one reparameterized sample: its gradient is AEVB's."""
        mean, logvar = self.encode(x)
        z = reparameterize(mean, logvar, eps)
        return self.log_likelihood(x, z) - gaussian_kl(mean, logvar)

    def score_function_surrogate(self, x: torch.Tensor, eps: torch.Tensor | None = None):
        """(surrogate, elbo) per row: the surrogate's gradient is the score-function estimator of the ELBO's.

        z is sampled but detached, so nothing flows back through it. In the decoder the gradient is
        grad_theta log p(x | z), as in AEVB; in the encoder the reconstruction term's gradient is
        log p(x | z) * grad_phi log q(z | x), and the KL's is exact, as in AEVB: the two estimators
        differ only in how they reach the encoder through the sampled reconstruction term."""
        mean, logvar = self.encode(x)
        z = reparameterize(mean, logvar, eps).detach()
        log_px = self.log_likelihood(x, z)
        log_q = gaussian_log_density(z, mean, logvar)
        kl = gaussian_kl(mean, logvar)
        surrogate = log_px + log_px.detach() * log_q - kl
        return surrogate, (log_px - kl).detach()

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws of E[x | z], z ~ p(z) = N(0, I)."""
        device = self.dec_hidden.weight.device
        z = torch.randn(n, self.cfg.latent, generator=generator).to(device)
        return self.mean_image(z)
