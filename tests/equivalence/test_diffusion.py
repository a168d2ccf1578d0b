"""The diffusion model's closed forms against references: q(x_t | x_0) against the forward chain iterated
step by step (the Gaussians composed exactly, and a Monte Carlo run of the chain); the posterior
q(x_{t-1} | x_t, x_0) against Gaussian conditioning computed numerically from the joint covariance of
(x_{t-1}, x_t); the KL terms against torch.distributions.kl_divergence; the bound against the same sum
written out with torch.distributions on a tiny chain (T = 3), values and gradients.

Tolerances: the exact comparisons run in float64 and agree to rounding (1e-10); the Monte Carlo one uses
200,000 chains per coordinate, whose standard errors are below 0.003 of the compared means and variances
(all of order 1 or smaller), and allows 0.015 (5 standard errors)."""

import torch
from torch.distributions import Independent, Normal, kl_divergence
from torch.testing import assert_close

from milestones.core.data import swiss_roll
from milestones.generative.diffusion.model import Diffusion, DiffusionConfig, gaussian_kl

EXACT = dict(rtol=1e-10, atol=1e-10)


def model(steps: int = 40, seed: int = 0) -> Diffusion:
    torch.manual_seed(seed)
    m = Diffusion(DiffusionConfig(steps=steps, hidden=16, layers=2)).double()
    m.alpha_bar = torch.cumprod(1 - m.beta, 0)  # in float64 from the (float32-rounded) betas: exact to rounding
    for p in m.kernel.head.parameters():  # the heads start at zero; give the reverse kernel some shape
        torch.nn.init.normal_(p, std=0.3)
    return m


def steps_of(t: int, n: int) -> torch.Tensor:
    return torch.full((n,), t, dtype=torch.long)


def test_marginal_equals_the_forward_steps_composed():
    """x_t = a_t x_0 + sqrt(v_t) e with a_t = sqrt(1 - beta_t) a_{t-1}, v_t = (1 - beta_t) v_{t-1} + beta_t."""
    m = model()
    x0 = torch.randn(5, 2, dtype=torch.float64)
    a, v = torch.ones((), dtype=torch.float64), torch.zeros((), dtype=torch.float64)
    for t in range(1, m.cfg.steps + 1):
        beta = m.beta[t]
        a, v = (1 - beta).sqrt() * a, (1 - beta) * v + beta
        mean, var = m.marginal(x0, steps_of(t, 5))
        assert_close(mean, a * x0, **EXACT)
        assert_close(var, v.expand_as(x0), **EXACT)
    assert m.alpha_bar[-1] < 0.02  # the chain ends near N(0, I)


def test_marginal_matches_a_monte_carlo_run_of_the_chain():
    m = model()
    g = torch.Generator().manual_seed(1)
    x0 = torch.tensor([[0.8, -1.1]], dtype=torch.float64).expand(200_000, 2)
    x = x0
    for t in range(1, m.cfg.steps + 1):
        x = m.forward_step(x, steps_of(t, len(x)), torch.randn(x.shape, generator=g, dtype=torch.float64))
        if t in (1, 5, 20, 40):
            mean, var = m.marginal(x0[:1], steps_of(t, 1))
            assert_close(x.mean(0), mean[0], rtol=0, atol=0.015)
            assert_close(x.var(0), var[0], rtol=0, atol=0.015)


def test_sample_marginal_is_the_marginal_reparameterized():
    m = model()
    x0, noise = torch.randn(6, 2, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64)
    t = torch.tensor([1, 2, 7, 20, 39, 40])
    mean, var = m.marginal(x0, t)
    assert_close(m.sample_marginal(x0, t, noise), mean + var.sqrt() * noise, **EXACT)


def test_posterior_equals_gaussian_conditioning_of_the_joint():
    """Given x_0, (x_{t-1}, x_t) is jointly Gaussian per coordinate: x_{t-1} ~ N(m, v) from the marginal and
    x_t = c x_{t-1} + sqrt(beta_t) e with c = sqrt(1 - beta_t). Conditioning on x_t with the joint covariance
    S gives mean m + S_12 / S_22 (x_t - c m) and variance S_11 - S_12^2 / S_22 (Schur complement)."""
    m = model()
    g = torch.Generator().manual_seed(2)
    for t in (2, 3, 10, 25, 40):
        x0 = torch.randn(4, 2, generator=g, dtype=torch.float64)
        xt = torch.randn(4, 2, generator=g, dtype=torch.float64)
        prev_mean, prev_var = m.marginal(x0, steps_of(t - 1, 4))
        c, beta = (1 - m.beta[t]).sqrt(), m.beta[t]
        v = prev_var[0, 0]
        joint = torch.stack([torch.stack([v, c * v]), torch.stack([c * v, c * c * v + beta])])  # cov(x_{t-1}, x_t)
        gain = torch.linalg.solve(joint[1:, 1:], joint[1:, :1])[0, 0]  # S_22^-1 S_21
        reference_mean = prev_mean + gain * (xt - c * prev_mean)
        reference_var = joint[0, 0] - joint[0, 1] * gain
        mean, var = m.posterior(x0, xt, steps_of(t, 4))
        assert_close(mean, reference_mean, **EXACT)
        assert_close(var, reference_var.expand_as(x0), **EXACT)
    mean, var = m.posterior(x0, xt, steps_of(1, 4))  # at t = 1 the posterior is the point x_0
    assert_close(mean, x0, **EXACT)
    assert_close(var, torch.zeros_like(var), **EXACT)


def test_gaussian_kl_equals_torch_distributions():
    g = torch.Generator().manual_seed(3)
    mq, mp = torch.randn(7, 3, generator=g, dtype=torch.float64), torch.randn(7, 3, generator=g, dtype=torch.float64)
    vq = torch.rand(7, 3, generator=g, dtype=torch.float64) + 0.1
    vp = torch.rand(7, 3, generator=g, dtype=torch.float64) + 0.1
    for tensor in (mq, vq, mp, vp):
        tensor.requires_grad_()
    ours = gaussian_kl(mq, vq, mp, vp)
    reference = kl_divergence(Independent(Normal(mq, vq.sqrt()), 1), Independent(Normal(mp, vp.sqrt()), 1))
    assert_close(ours, reference, **EXACT)
    grads = torch.autograd.grad(ours.sum(), (mq, vq, mp, vp))
    assert_close(grads, torch.autograd.grad(reference.sum(), (mq, vq, mp, vp)), **EXACT)


def test_bound_equals_the_sum_written_out_with_torch_distributions():
    """T = 3: -K = -log p(x_0|x_1) + KL_2 + KL_3 + KL(q(x_3|x_0) || N(0, I)), each x_t from its own noise."""
    m = model(steps=3)
    x0 = swiss_roll(6, seed=4)[0].double()
    noise = torch.randn(3, 6, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    ours = -m.bound_terms(x0, noise).sum(1)

    beta, alpha_bar = m.beta, m.alpha_bar

    def p(t, xt):  # the learned kernel, read from the network directly
        f_mu, f_sigma = m.kernel(xt, steps_of(t, 6))
        return Independent(Normal((1 - beta[t]).sqrt() * xt + beta[t].sqrt() * f_mu,
                                  (beta[t] * f_sigma.exp()).sqrt()), 1)

    def xt_of(t):
        return alpha_bar[t].sqrt() * x0 + (1 - alpha_bar[t]).sqrt() * noise[t - 1]

    minus_k = -p(1, xt_of(1)).log_prob(x0)
    for t in (2, 3):
        xt = xt_of(t)
        # the posterior by Bayes, written in the form of Ho et al. 2020, eq. (7)
        q_mean = (alpha_bar[t - 1].sqrt() * beta[t] * x0
                  + (1 - beta[t]).sqrt() * (1 - alpha_bar[t - 1]) * xt) / (1 - alpha_bar[t])
        q_std = ((1 - alpha_bar[t - 1]) / (1 - alpha_bar[t]) * beta[t]).sqrt().expand_as(x0)
        minus_k = minus_k + kl_divergence(Independent(Normal(q_mean, q_std), 1), p(t, xt))
    end = Independent(Normal(alpha_bar[3].sqrt() * x0, (1 - alpha_bar[3]).sqrt().expand_as(x0)), 1)
    minus_k = minus_k + kl_divergence(end, Independent(Normal(torch.zeros_like(x0), torch.ones_like(x0)), 1))
    assert_close(ours, -minus_k, **EXACT)
    weights = list(m.kernel.parameters())
    assert_close(torch.autograd.grad(ours.sum(), weights), torch.autograd.grad(-minus_k.sum(), weights), **EXACT)


def test_training_loss_is_unbiased_for_the_summed_bound():
    """E_t[T term_t] + prior = sum of all terms: the average of the one-step loss over many draws of t and
    the noise approaches the negative bound summed over every t (5 standard errors)."""
    m = model(steps=5)
    x0 = swiss_roll(1, seed=6)[0].double()
    torch.manual_seed(7)
    with torch.no_grad():
        many = x0.expand(100_000, 2)
        draws = torch.stack([m.loss(many[i:i + 1000]) for i in range(0, len(many), 1000)])
        summed = -m.bound(many[:20_000], torch.Generator().manual_seed(8))
    error = (draws.std() / len(draws) ** 0.5 + summed.std() / len(summed) ** 0.5).item()
    assert abs(draws.mean().item() - summed.mean().item()) < 5 * error


def test_sampler_runs_the_reverse_kernel_from_a_standard_gaussian():
    m = model(steps=4)
    g = torch.Generator().manual_seed(9)
    chain = m.sample(3, g, trajectory=True)
    assert chain.shape == (5, 3, 2)
    g = torch.Generator().manual_seed(9)
    x = torch.randn(3, 2, generator=g, dtype=torch.float64)
    assert_close(chain[4], x, **EXACT)
    for t in range(4, 0, -1):
        mean, var = m.reverse(x, steps_of(t, 3))
        x = mean + var.sqrt() * torch.randn(3, 2, generator=g, dtype=torch.float64)
        assert_close(chain[t - 1], x, **EXACT)


def test_swiss_roll_is_seeded_and_lies_on_the_spiral():
    a, labels = swiss_roll(2000, noise=0.0, seed=3)
    b, _ = swiss_roll(2000, noise=0.0, seed=3)
    assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, swiss_roll(2000, noise=0.0, seed=4)[0])
    u = 10 * a.norm(dim=1)  # without noise a point is u (cos u, sin u) / 10, so its radius gives u back
    assert u.min() >= 1.5 * torch.pi - 1e-4 and u.max() <= 4.5 * torch.pi + 1e-4
    assert_close(a, torch.stack([u * torch.cos(u), u * torch.sin(u)], 1) / 10, rtol=0, atol=1e-4)
    assert torch.bincount(labels).tolist() == torch.bincount(((u / (1.5 * torch.pi) - 1) / 2 * 4).long()).tolist()
