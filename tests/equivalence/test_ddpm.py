"""DDPM's schedule, closed forms and sampler step against diffusers' DDPMScheduler, the reference
implementation practitioners sample with.

Our t runs over 1 .. T (the paper's), diffusers' timestep k over 0 .. T - 1: k = t - 1. Every comparison
feeds both the same betas, the same x_0, x_t, noise and network output. diffusers keeps its schedule in
float32; the tests give it our float64 betas and recompute its cumulative products in float64, so the
two agree to rounding (EXACT). A separate test checks that the linear betas themselves equal diffusers'
float32 ones to float32 rounding.

Controls: the same comparisons with t off by one (diffusers' k = t, or k = t - 2) must fail, so the tests
would catch an indexing slip between the two conventions; and the network-free `step` must also match
the paper's Algorithm 2 written out by hand."""

import pytest
import torch
from torch.testing import assert_close

from milestones.generative.ddpm.model import DDPM, DDPMConfig, linear_betas

diffusers = pytest.importorskip("diffusers")

EXACT = dict(rtol=1e-10, atol=1e-10)
T = 100
CFG = DDPMConfig(widths=(8, 16), heads=2, steps=T, beta_first=1e-3, beta_last=0.2)


def ours(variance: str = "beta", prediction: str = "epsilon") -> DDPM:
    torch.manual_seed(0)
    m = DDPM(DDPMConfig(**{**CFG.__dict__, "variance": variance, "prediction": prediction}))
    m.set_schedule(linear_betas(T, CFG.beta_first, CFG.beta_last), dtype=torch.float64)
    return m.double()


def reference(variance: str = "fixed_large", clip: bool = False, prediction: str = "epsilon"):
    s = diffusers.DDPMScheduler(num_train_timesteps=T, beta_start=CFG.beta_first, beta_end=CFG.beta_last,
                                beta_schedule="linear", variance_type=variance, clip_sample=clip,
                                prediction_type=prediction)
    s.betas = linear_betas(T, CFG.beta_first, CFG.beta_last)  # float64, the same numbers as ours
    s.alphas = 1 - s.betas
    s.alphas_cumprod = torch.cumprod(s.alphas, 0)
    s.one = torch.tensor(1.0, dtype=torch.float64)
    return s


def images(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_linear_betas_equal_diffusers_float32_schedule():
    s = diffusers.DDPMScheduler(num_train_timesteps=T, beta_start=CFG.beta_first, beta_end=CFG.beta_last)
    m = DDPM(CFG)
    assert_close(m.beta[1:], s.betas, rtol=1e-6, atol=1e-8)
    assert_close(m.alpha_bar[1:], s.alphas_cumprod, rtol=1e-5, atol=1e-7)
    assert m.beta[0] == 0 and m.alpha_bar[0] == 1


def test_add_noise_equals_diffusers():
    m, s = ours(), reference()
    x0, noise = images(6, 1), images(6, 2)
    t = torch.tensor([1, 2, 17, 50, 99, 100])
    assert_close(m.add_noise(x0, t, noise), s.add_noise(x0, noise, t - 1), **EXACT)
    with pytest.raises(AssertionError):  # control: diffusers' k = t is one step noisier
        assert_close(m.add_noise(x0, t, noise), s.add_noise(x0, noise, (t).clamp(max=T - 1)), **EXACT)


@pytest.mark.parametrize("t", [2, 3, 40, 100])
def test_posterior_mean_and_variance_equal_diffusers(t):
    """diffusers' step with prediction_type="sample" takes x_0 itself and returns the posterior mean
    (with no noise drawn, its variance term is read from `_get_variance`)."""
    m, s = ours(), reference("fixed_small", prediction="sample")
    x0, xt = images(4, 3), images(4, 4)
    mean, var = m.posterior(x0, xt, torch.full((4,), t))
    s_out = s.step(x0, t - 1, xt, generator=torch.Generator().manual_seed(0)).prev_sample
    z = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0), dtype=x0.dtype)
    small = s._get_variance(t - 1, variance_type="fixed_small")
    assert_close(var, small.expand_as(var), **EXACT)
    assert_close(mean + small.sqrt() * z, s_out, **EXACT)
    with pytest.raises(AssertionError):  # control: the posterior one step later
        assert_close(var, s._get_variance(t - 2, variance_type="fixed_small").expand_as(var), **EXACT)


def diffusers_step(s, out, t, xt, seed):
    """diffusers' step at our t, with its noise drawn from a seeded generator; returns it and that noise."""
    prev = s.step(out, t - 1, xt, generator=torch.Generator().manual_seed(seed)).prev_sample
    z = torch.randn(xt.shape, generator=torch.Generator().manual_seed(seed), dtype=xt.dtype)
    return prev, z


@pytest.mark.parametrize("variance, reference_variance", [("beta", "fixed_large"), ("posterior", "fixed_small")])
@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("t", [1, 2, 50, 100])
def test_epsilon_step_equals_diffusers(variance, reference_variance, clip, t):
    m, s = ours(variance), reference(reference_variance, clip)
    xt, eps = images(5, 5), images(5, 6)
    expected, z = diffusers_step(s, eps, t, xt, seed=7)
    assert_close(m.step(eps, xt, t, z, clip=clip), expected, **EXACT)
    if t > 1:  # control: the same step taken with the schedule of t - 1 differs
        with pytest.raises(AssertionError):
            assert_close(m.step(eps, xt, t - 1, z, clip=clip), expected, **EXACT)


@pytest.mark.parametrize("t", [1, 2, 50, 100])
def test_epsilon_step_is_algorithm_2(t):
    """x_{t-1} = 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - abar_t) eps) + sigma_t z (no z at t = 1), unclipped."""
    m = ours()
    xt, eps, z = images(3, 8), images(3, 9), images(3, 10)
    beta, abar = m.beta[t], m.alpha_bar[t]
    expected = (xt - beta / (1 - abar).sqrt() * eps) / (1 - beta).sqrt() + (beta.sqrt() * z if t > 1 else 0)
    assert_close(m.step(eps, xt, t, z), expected, **EXACT)
    assert_close(m.mean_from_epsilon(xt, torch.full((3,), t), eps), expected - (beta.sqrt() * z if t > 1 else 0),
                 **EXACT)


@pytest.mark.parametrize("t", [1, 2, 50, 100])
def test_mean_prediction_step_implies_the_same_x0(t):
    """A mean-predicting network that outputs the posterior mean of some x_0 steps exactly like an
    x_0-predicting one (diffusers' prediction_type="sample") given that x_0, clipped or not."""
    m, x0, xt = ours(prediction="mu"), images(4, 11), images(4, 12)
    mu = m.posterior(x0, xt, torch.full((4,), t))[0]
    for clip in (False, True):
        expected, z = diffusers_step(reference("fixed_large", clip, prediction="sample"), x0, t, xt, seed=13)
        assert_close(m.step(mu, xt, t, z, clip=clip), expected, **EXACT)


def test_bound_terms_against_torch_distributions():
    """The step-t term of the negative bound equals KL(q || p) from torch.distributions for t >= 2, and
    -log p(x_0 | x_1) for t = 1, with p the reverse kernel of a (random, untrained) network."""
    from torch.distributions import Independent, Normal, kl_divergence

    m, x0 = ours(), images(3, 14)
    for t in (1, 2, 30, 100):
        steps, noise = torch.full((3,), t), images(3, 15 + t)
        xt = m.add_noise(x0, steps, noise)
        with torch.no_grad():
            mean_p = m.reverse_mean(xt, steps)
            got = m.bound_terms(x0, steps, noise)
        p = Independent(Normal(mean_p, m.variance(steps).sqrt().expand_as(x0)), 3)
        if t == 1:
            expected = -p.log_prob(x0)
        else:
            mean_q, var_q = m.posterior(x0, xt, steps)
            expected = kl_divergence(Independent(Normal(mean_q, var_q.sqrt()), 3), p)
        assert_close(got, expected, **EXACT)


def test_sampler_is_seeded_and_ends_in_the_data_range_when_clipped():
    m = ours()
    a = m.sample(3, torch.Generator().manual_seed(0), clip=True, trajectory=True)
    b = m.sample(3, torch.Generator().manual_seed(0), clip=True, trajectory=True)
    assert a.shape == (T + 1, 3, 1, 8, 8)
    assert_close(a, b, rtol=0, atol=0)
    assert a[0].abs().max() <= 1 + 1e-12  # x_0 is a posterior mean of clipped x_0 with no noise: in [-1, 1]
