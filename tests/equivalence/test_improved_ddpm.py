"""Improved DDPM's cosine schedule, learned variances and strided sampling against diffusers'
DDPMScheduler: the cosine betas equal its "squaredcos_cap_v2" schedule; a step with a learned variance
equals its "learned_range" step; a respaced chain's betas are recomputed from the kept abar's (their
cumulative products give back exactly the kept abar's), and a step of our respaced sampler equals
diffusers' step over the same custom timesteps (which recomputes each step's beta from the two abar's
it joins), for learned and for both fixed variances.

Our steps run over 1 .. T, diffusers' over 0 .. T - 1 (k = t - 1). The schedules are compared in float32
(diffusers' dtype); every step in float64, diffusers given our float64 abar's, to rounding (EXACT).
Controls: the same step one training step off must fail."""

import pytest
import torch
from torch.testing import assert_close

from milestones.generative.improved_ddpm.model import (
    ImprovedDDPM,
    ImprovedDDPMConfig,
    cosine_betas,
    respaced_betas,
    spaced_steps,
)

diffusers = pytest.importorskip("diffusers")

EXACT = dict(rtol=1e-10, atol=1e-10)
T = 60


def ours(learn_variance: bool = True, variance: str = "beta") -> ImprovedDDPM:
    torch.manual_seed(0)
    m = ImprovedDDPM(ImprovedDDPMConfig(widths=(8, 16), heads=2, steps=T, learn_variance=learn_variance,
                                        variance=variance))
    m.set_schedule(cosine_betas(T), dtype=torch.float64)
    return m.double()


def reference(variance: str, timesteps: list[int] | None = None):
    s = diffusers.DDPMScheduler(num_train_timesteps=T, beta_schedule="squaredcos_cap_v2", variance_type=variance,
                                clip_sample=False)
    s.betas = cosine_betas(T)  # float64
    s.alphas = 1 - s.betas
    s.alphas_cumprod = torch.cumprod(s.alphas, 0)
    s.one = torch.tensor(1.0, dtype=torch.float64)
    if timesteps is not None:
        s.set_timesteps(timesteps=timesteps)
    return s


def images(n: int, seed: int, channels: int = 1) -> torch.Tensor:
    return torch.randn(n, channels, 8, 8, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def diffusers_step(s, out, k, xt, seed):
    prev = s.step(out, k, xt, generator=torch.Generator().manual_seed(seed)).prev_sample
    z = torch.randn(xt.shape, generator=torch.Generator().manual_seed(seed), dtype=xt.dtype)
    return prev, z


@pytest.mark.parametrize("steps", [50, 1000, 4000])
def test_cosine_betas_equal_diffusers_squaredcos_cap_v2(steps):
    s = diffusers.DDPMScheduler(num_train_timesteps=steps, beta_schedule="squaredcos_cap_v2")
    ours_ = cosine_betas(steps)
    assert_close(ours_.float(), s.betas, rtol=2e-6, atol=1e-9)
    assert ours_.max() <= 0.999 and ours_[-1] == 0.999  # the last step is clipped
    assert (ours_[1:] >= ours_[:-1]).all()


def test_cosine_alpha_bar_is_the_squared_cosine():
    """Away from the clipped last step, abar_t = f(t) / f(0) exactly."""
    import math

    abar = torch.cumprod(1 - cosine_betas(T), 0)
    t = torch.arange(1, T + 1, dtype=torch.float64)
    f = lambda u: torch.cos((u / T + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    assert_close(abar[:-1], (f(t) / f(torch.zeros(1, dtype=torch.float64)))[:-1], **EXACT)


@pytest.mark.parametrize("t", [1, 2, 30, 60])
def test_learned_variance_step_equals_diffusers_learned_range(t):
    m, s = ours(), reference("learned_range")
    xt, out = images(4, 1), images(4, 2, channels=2).clamp(-1.5, 1.5)  # eps and v stacked on the channels
    expected, z = diffusers_step(s, out, t - 1, xt, seed=3)
    assert_close(m.step(out, xt, t, z), expected, **EXACT)
    if t > 1:  # control: one step off
        with pytest.raises(AssertionError):
            assert_close(m.step(out, xt, t - 1, z), expected, **EXACT)


def test_learned_variance_spans_beta_tilde_to_beta():
    m = ours()
    t = torch.tensor([2, 10, 59])
    ones = torch.ones(3, 1, 8, 8, dtype=torch.float64)
    assert_close(m.log_variance(t, ones)[:, 0, 0, 0], m.beta[t].log(), **EXACT)
    assert_close(m.log_variance(t, -ones)[:, 0, 0, 0], m.posterior_var[t].log(), **EXACT)


@pytest.mark.parametrize("kept", [2, 7, 25, T])
def test_respaced_betas_keep_the_alpha_bars(kept):
    steps = spaced_steps(T, kept)
    assert steps[0] == 1 and steps[-1] == T and len(steps) == kept and (steps.diff() > 0).all()
    alpha_bar = torch.cumprod(torch.cat([torch.ones(1, dtype=torch.float64), 1 - cosine_betas(T)]), 0)
    betas = respaced_betas(alpha_bar, steps)
    assert_close(torch.cumprod(1 - betas, 0), alpha_bar[steps], **EXACT)
    if kept == T:
        assert_close(betas, cosine_betas(T), **EXACT)


@pytest.mark.parametrize("learn_variance, variance, reference_variance",
                         [(True, "beta", "learned_range"), (False, "beta", "fixed_large"),
                          (False, "posterior", "fixed_small")])
def test_respaced_step_equals_diffusers_custom_timesteps(learn_variance, variance, reference_variance):
    kept = 12
    m = ours(learn_variance, variance)
    sampler = m.respaced(kept)
    steps = spaced_steps(T, kept)
    assert_close(sampler.timesteps[1:], steps, rtol=0, atol=0)
    s = reference(reference_variance, timesteps=(steps - 1).flip(0).tolist())
    channels = 2 if learn_variance else 1
    for i in range(kept, 0, -1):  # our respaced step i is diffusers' timestep steps[i - 1] - 1
        xt, out = images(3, 10 + i), images(3, 40 + i, channels).clamp(-1.5, 1.5)
        expected, z = diffusers_step(s, out, int(steps[i - 1]) - 1, xt, seed=i)
        assert_close(sampler.step(out, xt, i, z), expected, **EXACT)
        if i > 1:  # control: the respaced step taken as the training step of the same number differs
            with pytest.raises(AssertionError):
                assert_close(m.step(out, xt, i, z), expected, **EXACT)


def test_respaced_sampler_shares_the_network_and_tells_it_the_training_steps():
    m = ours()
    sampler = m.respaced(5)
    assert sampler.net is m.net
    calls = []
    handle = m.net.register_forward_hook(lambda mod, args, out: calls.append(args[1][0].item()))
    sampler.sample(2, torch.Generator().manual_seed(0))
    handle.remove()
    assert calls == spaced_steps(T, 5).flip(0).tolist()


def test_vlb_terms_against_torch_distributions():
    """The bound's term in bits per dimension: KL(q || p) for t >= 2, -log p(x_0 | x_1) for t = 1, with p's
    mean from the predicted eps and its variance from v."""
    import math

    from torch.distributions import Normal, kl_divergence

    m, x0 = ours(), images(3, 20)
    for t in (1, 2, 30, 60):
        steps, noise = torch.full((3,), t), images(3, 21 + t)
        xt = m.add_noise(x0, steps, noise)
        eps, v = images(3, 22 + t), images(3, 23 + t).clamp(-1, 1)
        got = m.vlb_terms(x0, xt, steps, eps, v)
        mean_p = m.posterior(m.predict_x0(xt, steps, eps), xt, steps)[0]
        p = Normal(mean_p, (0.5 * m.log_variance(steps, v)).exp())
        if t == 1:
            nats = -p.log_prob(x0)
        else:
            mean_q, var_q = m.posterior(x0, xt, steps)
            nats = kl_divergence(Normal(mean_q, var_q.sqrt()), p)
        assert_close(got, nats.flatten(1).mean(1) / math.log(2), **EXACT)


def test_hybrid_loss_trains_the_mean_only_through_l_simple():
    """The gradient of the hybrid loss in the eps output equals L_simple's: the bound reaches the mean
    through a stop-gradient (checked on the network's last layer, whose eps and v rows are separate)."""
    m = ours().float()
    m.set_schedule(cosine_betas(T))
    x0 = images(8, 30).float().clamp(-1, 1)
    head = m.net.head.weight  # (2 C, w_0, 1, 1): row 0 makes eps, row 1 makes v

    def grads(weight):
        torch.manual_seed(5)
        m.cfg.hybrid_weight = weight
        m.zero_grad()
        m.hybrid_loss(x0).backward()
        return head.grad.clone()

    plain, hybrid = grads(0.0), grads(0.001)
    assert_close(hybrid[0], plain[0], rtol=1e-5, atol=1e-7)  # eps row: L_simple only
    assert plain[1].abs().max() == 0 and hybrid[1].abs().max() > 0  # v row: the bound only
