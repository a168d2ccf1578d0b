"""The GAN's losses against references: F.binary_cross_entropy_with_logits and the paper's Eq. 1 written
out with sigmoids and logs, value and gradient; the saturation of Section 3 (the minimax loss's gradient
in D's logit is -D(G(z)), vanishing as D(G(z)) -> 0, the non-saturating one's -(1 - D(G(z))) -> -1);
and Theorem 1's fixed point (the best discriminator against p_g = p_data is 1/2, where V = -log 4).

Tolerances: float64; the softplus forms and the written-out logs differ only by rounding (1e-12)."""

import math

import torch
import torch.nn.functional as F
from torch.testing import assert_close

from milestones.core import Run, checkpoint
from milestones.generative.gan.experiment import Config, adam, train_gan
from milestones.generative.gan.model import (
    Discriminator,
    GANConfig,
    Generator,
    discriminator_loss,
    generator_loss_minimax,
    generator_loss_non_saturating,
)

EXACT = dict(rtol=1e-12, atol=1e-12)


def logits(seed, n=50, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(n, generator=g, dtype=torch.float64)).requires_grad_()


def test_discriminator_loss_is_binary_cross_entropy_and_minus_v():
    real, fake = logits(0), logits(1)
    ours = discriminator_loss(real, fake)
    bce = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
           + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    v = torch.log(torch.sigmoid(real)).mean() + torch.log(1 - torch.sigmoid(fake)).mean()  # Eq. 1 written out
    assert_close(ours, bce, **EXACT)
    assert_close(ours, -v, **EXACT)
    assert_close(torch.autograd.grad(ours, (real, fake)), torch.autograd.grad(-v, (real, fake)), **EXACT)


def test_generator_losses_are_their_written_out_forms():
    fake = logits(2)
    minimax = generator_loss_minimax(fake)
    assert_close(minimax, torch.log(1 - torch.sigmoid(fake)).mean(), **EXACT)
    assert_close(minimax, -F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)), **EXACT)
    non_saturating = generator_loss_non_saturating(fake)
    assert_close(non_saturating, -torch.log(torch.sigmoid(fake)).mean(), **EXACT)
    assert_close(non_saturating, F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake)), **EXACT)
    (g_minimax,) = torch.autograd.grad(minimax, fake)
    (g_ns,) = torch.autograd.grad(non_saturating, fake)
    d = torch.sigmoid(fake.detach())
    assert_close(g_minimax, -d / len(fake), **EXACT)  # d/dl log(1 - sigmoid(l)) = -sigmoid(l)
    assert_close(g_ns, -(1 - d) / len(fake), **EXACT)  # d/dl -log sigmoid(l) = -(1 - sigmoid(l))


def test_minimax_gradient_vanishes_as_the_discriminator_wins_and_the_non_saturating_does_not():
    previous = math.inf
    for l in (-2.0, -5.0, -10.0, -20.0, -40.0):  # D(G(z)) = sigmoid(l) -> 0: a confident discriminator
        fake = torch.tensor([l], dtype=torch.float64, requires_grad=True)
        (g_minimax,) = torch.autograd.grad(generator_loss_minimax(fake), fake)
        (g_ns,) = torch.autograd.grad(generator_loss_non_saturating(fake), fake)
        assert abs(g_minimax.item()) < previous
        previous = abs(g_minimax.item())
        assert abs(g_ns.item()) > 0.88  # 1 - sigmoid(-2) = 0.881, and closer to 1 beyond
    assert previous < 1e-17  # sigmoid(-40) = 4.2e-18: no signal left for the generator
    # the losses stay finite where a naive log(1 - sigmoid(l)) of float32 would give log(0)
    extreme = torch.tensor([-200.0, 200.0])
    assert torch.isfinite(generator_loss_minimax(extreme)) and torch.isfinite(generator_loss_non_saturating(extreme))
    assert torch.isfinite(discriminator_loss(extreme, extreme))


def test_theorem_1_fixed_point():
    # with p_g = p_data the best discriminator outputs 1/2 everywhere (logit 0) and V = -log 4
    zero = torch.zeros(10, dtype=torch.float64)
    assert_close(-discriminator_loss(zero, zero), torch.tensor(-math.log(4), dtype=torch.float64), **EXACT)
    # both generator losses have their gradient in the same direction (towards larger D(G(z))) everywhere
    fake = logits(3)
    (a,) = torch.autograd.grad(generator_loss_minimax(fake), fake)
    (b,) = torch.autograd.grad(generator_loss_non_saturating(fake), fake)
    assert (a < 0).all() and (b < 0).all()


def test_networks_shapes():
    cfg = GANConfig(noise_dim=3, hidden=8, layers=2)
    g, d = Generator(cfg), Discriminator(cfg)
    samples = g.sample(5, torch.Generator().manual_seed(0))
    assert samples.shape == (5, 2) and d(samples).shape == (5,)
    assert len(g.net) == 3 and g.net[0].in_features == 3 and d.net[-1].out_features == 1


def test_algorithm_1_takes_k_discriminator_steps_per_generator_step(tmp_path):
    cfg = Config(k=3, hidden=8, batch_size=16)
    net = GANConfig(noise_dim=cfg.noise_dim, hidden=8, layers=2)
    ctx = Run(tmp_path, seed=0, quiet=True)
    train_gan(ctx, "k", Generator(net), Discriminator(net), torch.randn(64, 2), 4, cfg)
    state = checkpoint.load(tmp_path / "checkpoints" / "k.safetensors")["state"]
    assert int(state["g_opt"]["state"][0]["step"]) == 4 and int(state["d_opt"]["state"][0]["step"]) == 12


def test_adam_steps_do_not_change_when_every_gradient_is_scaled_down():
    # why the minimax generator does not stall under Adam (notes.md): against a confident discriminator
    # its gradient is close to the non-saturating one times D / (1 - D), and Adam's step
    # lr * m / (sqrt(v) + eps) is unchanged by a common factor on every gradient (up to eps = 1e-8)
    weights = {scale: torch.nn.Parameter(torch.ones(5, dtype=torch.float64)) for scale in (1.0, 0.01)}
    optimizers = {scale: adam([w], 1e-3) for scale, w in weights.items()}
    for t in range(20):
        direction = torch.sin(torch.arange(5, dtype=torch.float64) + t)
        for scale, w in weights.items():
            w.grad = scale * direction
            optimizers[scale].step()
    assert_close(weights[0.01], weights[1.0], rtol=0, atol=1e-7)  # eps's share: 20 x lr x eps / |0.01 g| ~ 1e-8
    assert (weights[1.0] - 1).abs().max() > 1e-3  # and they did move
