"""The VAE's pieces against references: the analytic Gaussian KL against torch.distributions and a Monte
Carlo estimate; the ELBO against the same bound written with torch.distributions (Bernoulli and Gaussian
decoders, the same noise); the reparameterized gradient of E[z^2] under N(mu, sigma^2) against its
closed form; the score-function surrogate's gradient against the estimator written out by hand.

Tolerances: the exact comparisons run in float64 and agree to rounding (1e-12); the Monte Carlo ones
use 400,000 draws, whose standard errors are below 0.3% of the quantities compared, and allow 2%."""

import math

import torch
from torch.distributions import Bernoulli, Normal, kl_divergence
from torch.testing import assert_close

from milestones.generative.vae.model import VAE, VAEConfig, gaussian_kl, gaussian_log_density, reparameterize

EXACT = dict(rtol=1e-12, atol=1e-12)


def test_gaussian_kl_equals_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(7, 5, generator=g, dtype=torch.float64)
    logvar = torch.randn(7, 5, generator=g, dtype=torch.float64)
    mean.requires_grad_(), logvar.requires_grad_()
    ours = gaussian_kl(mean, logvar)
    reference = kl_divergence(Normal(mean, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(-1)
    assert_close(ours, reference, **EXACT)
    grads = torch.autograd.grad(ours.sum(), (mean, logvar))
    assert_close(grads, torch.autograd.grad(reference.sum(), (mean, logvar)), **EXACT)


def test_gaussian_kl_equals_its_monte_carlo_estimate():
    mean = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    logvar = torch.tensor([[0.3, -0.7, 1.1]], dtype=torch.float64)
    z = reparameterize(mean.expand(400_000, 3), logvar.expand(400_000, 3),
                       torch.randn(400_000, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    zeros = torch.zeros_like(mean)
    estimate = (gaussian_log_density(z, mean, logvar) - gaussian_log_density(z, zeros, zeros)).mean()
    assert_close(estimate, gaussian_kl(mean, logvar)[0], rtol=0.02, atol=0.0)


def test_log_density_equals_torch_distributions():
    g = torch.Generator().manual_seed(2)
    z, mean, logvar = (torch.randn(4, 6, generator=g, dtype=torch.float64) for _ in range(3))
    assert_close(gaussian_log_density(z, mean, logvar), Normal(mean, (0.5 * logvar).exp()).log_prob(z).sum(-1), **EXACT)


def test_elbo_equals_the_bound_written_with_torch_distributions():
    for likelihood in ("bernoulli", "gaussian"):
        torch.manual_seed(3)
        model = VAE(VAEConfig(pixels=12, hidden=9, latent=3, likelihood=likelihood)).double()
        x = torch.rand(5, 12, dtype=torch.float64)
        eps = torch.randn(5, 3, dtype=torch.float64)
        mean, logvar = model.encode(x)
        z = mean + (0.5 * logvar).exp() * eps
        out = model.decode(z)
        if likelihood == "bernoulli":
            # with a fractional target Bernoulli.log_prob is still x log p + (1 - x) log(1 - p) (unvalidated)
            log_px = Bernoulli(logits=out, validate_args=False).log_prob(x).sum(-1)
        else:
            mu, log_var = out.chunk(2, dim=-1)
            log_px = Normal(torch.sigmoid(mu), (0.5 * log_var).exp()).log_prob(x).sum(-1)
        reference = log_px - kl_divergence(Normal(mean, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(-1)
        ours = model.elbo(x, eps)
        assert_close(ours, reference, **EXACT)
        ours_grads = torch.autograd.grad(ours.sum(), list(model.parameters()), retain_graph=True)
        assert_close(ours_grads, torch.autograd.grad(reference.sum(), list(model.parameters())), **EXACT)


def test_reparameterized_gradient_matches_the_closed_form():
    # E[z^2] under N(mu, sigma^2) is mu^2 + sigma^2: d/dmu = 2 mu, d/dlogvar = sigma^2 (sigma^2 = exp(logvar))
    mu = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    logvar = torch.tensor(-0.4, dtype=torch.float64, requires_grad=True)
    eps = torch.randn(400_000, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    estimate = reparameterize(mu, logvar, eps).square().mean()
    d_mu, d_logvar = torch.autograd.grad(estimate, (mu, logvar))
    assert_close(d_mu, 2 * mu.detach(), rtol=0.02, atol=0.0)
    assert_close(d_logvar, logvar.detach().exp(), rtol=0.02, atol=0.0)
    # with the noise held fixed the estimate is an ordinary function of (mu, logvar): each draw's
    # gradient is exactly 2 z dz/dmu = 2 z and 2 z dz/dlogvar = z * sigma * eps
    z = mu.detach() + math.exp(-0.2) * eps
    assert_close(d_mu, (2 * z).mean(), **EXACT)
    assert_close(d_logvar, (z * math.exp(-0.2) * eps).mean(), **EXACT)


def test_score_function_estimator_is_unbiased_but_noisier():
    # grad E[z^2] by the score function: z^2 d/dtheta log N(z; mu, sigma^2), the same closed form in expectation
    mu = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    logvar = torch.tensor(-0.4, dtype=torch.float64, requires_grad=True)
    eps = torch.randn(400_000, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    z = reparameterize(mu, logvar, eps).detach()
    per_draw = z.square() * gaussian_log_density(z[:, None], mu.expand(1), logvar.expand(1))
    d_mu, d_logvar = torch.autograd.grad(per_draw.mean(), (mu, logvar))
    assert_close(d_mu, 2 * mu.detach(), rtol=0.02, atol=0.0)
    assert_close(d_logvar, logvar.detach().exp(), rtol=0.03, atol=0.0)
    sigma = math.exp(-0.2)
    score_mu = z.square() * (z - 0.7) / sigma**2  # written out: d/dmu log N = (z - mu) / sigma^2
    reparam_mu = 2 * z
    assert score_mu.var() > 3 * reparam_mu.var()


def test_score_function_surrogate_gradient_is_the_written_out_estimator():
    torch.manual_seed(6)
    model = VAE(VAEConfig(pixels=10, hidden=7, latent=2)).double()
    x = torch.rand(4, 10, dtype=torch.float64)
    eps = torch.randn(4, 2, dtype=torch.float64)
    surrogate, elbo = model.score_function_surrogate(x, eps)
    assert_close(elbo, model.elbo(x, eps).detach(), **EXACT)  # the same bound, estimated with the same sample
    encoder = [*model.enc_hidden.parameters(), *model.enc_out.parameters()]
    ours = torch.autograd.grad(surrogate.sum(), encoder)
    # by hand: sum_n [ f(z_n) grad log q(z_n | x_n) - grad KL_n ], z_n held fixed
    mean, logvar = model.encode(x)
    z = (mean + (0.5 * logvar).exp() * eps).detach()
    with torch.no_grad():
        f = model.log_likelihood(x, z)
    written = (f * Normal(mean, (0.5 * logvar).exp()).log_prob(z).sum(-1)
               - kl_divergence(Normal(mean, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(-1)).sum()
    assert_close(ours, torch.autograd.grad(written, encoder), **EXACT)
    decoder = [*model.dec_hidden.parameters(), *model.dec_out.parameters()]
    assert_close(torch.autograd.grad(surrogate.sum(), decoder), torch.autograd.grad(model.elbo(x, eps).sum(), decoder),
                 **EXACT)  # the decoder's gradient is AEVB's in both


def test_sample_and_mean_image_are_probabilities():
    torch.manual_seed(7)
    model = VAE(VAEConfig(hidden=8, latent=2, likelihood="gaussian"))
    images = model.sample(6, torch.Generator().manual_seed(0))
    assert images.shape == (6, 64) and images.min() >= 0 and images.max() <= 1
