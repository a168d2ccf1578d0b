"""VQ-VAE's two claims in miniature: a discrete code loses little against a continuous one (Section 4.1),
and an autoregressive prior over the codes turns the decoder into a sampler (Section 4.2's samples from
a PixelCNN over the codes).

Data: sklearn's 8 x 8 digits, the training split for training and the held-out split for every score.
Models (model.py): the VQ-VAE with a 4 x 4 grid of codes from a codebook of K = 32 vectors (16 codes of
5 bits: 80 bits per digit) updated by moving averages, beta = 0.25. The *continuous autoencoder* has the
same encoder and decoder and the same code layout, a 4 x 4 grid with one latent variable per position,
but each is a real number (`continuous_dim` = 1) where the VQ-VAE's is one of K symbols (the paper's
comparison also kept the encoder and decoder and changed only the latent variables); it trains for
the same steps on the same reconstruction loss, with no quantizer. The prior is a class-conditional
PixelCNN over the VQ-VAE's code grids of the training digits. All three train with Adam.

1. Section 4.1: the discrete model's reconstructions of held-out digits come close to the continuous
   autoencoder's. Checks: the fraction of the held-out digits' pixel variance that the reconstructions
   explain is at most MAX_EXPLAINED_GAP below the continuous model's (`reconstruction`; the raw squared
   errors and their ratio are reported beside it); the judge (milestones.core.generative) reads the
   reconstructions as the right digit at most MAX_JUDGE_DROP less often than the continuous model's
   (`reconstruction_class`); and the codebook is used, not collapsed onto a few codes: at least
   MIN_CODES_IN_USE of the K codes appear in the held-out digits' code grids (`codebook_use`; the
   perplexity of the codes, exp of the entropy of their frequencies, is reported beside it).
2. Section 4.2: decoded samples of the prior are digits of the class asked for. Checks: the judge reads
   25 samples per class as that class with accuracy at least MIN_SAMPLE_ACCURACY (`sample_class`); their
   FD-digits lies at most MAX_FD_POSITION of the way from the real-data floor to the noise ceiling
   (`sample_fd`); and the prior matters: codes drawn uniformly at random, decoded by the same decoder,
   score a worse FD-digits than the prior's (`prior_beats_uniform`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from milestones.core import Result, Run, UserError, check, experiment, generative
from milestones.core.data import load_digits
from milestones.core.training import evaluating, train
from milestones.generative.vqvae.model import VQVAE, Decoder, Encoder, PixelCNN, VQVAEConfig, perplexity

MAX_EXPLAINED_GAP = 0.05  # held-out variance explained: the continuous autoencoder's minus the VQ-VAE's
MAX_JUDGE_DROP = 0.03  # judge accuracy on reconstructions: the continuous autoencoder's minus the VQ-VAE's
MIN_CODES_IN_USE = 0.5  # the share of the K codes that the held-out digits' code grids use
MIN_SAMPLE_ACCURACY = 0.7  # the judge's accuracy on class-conditional samples (on real held-out digits: 0.97)
MAX_FD_POSITION = 0.2  # FD-digits of the samples: 0 at the real-data floor, 1 at the noise ceiling
SAMPLES_PER_CLASS = 25  # 250 samples: FD-digits scores the first 224

CLAIM = (f"Section 4.1: a discrete code reconstructs held-out digits nearly as well as a continuous autoencoder of "
         f"the same networks (variance explained at most MAX_EXPLAINED_GAP = {MAX_EXPLAINED_GAP} lower, judge "
         f"accuracy on reconstructions at most MAX_JUDGE_DROP = {MAX_JUDGE_DROP} lower) with the codebook in use "
         f"(at least MIN_CODES_IN_USE = {MIN_CODES_IN_USE} of the K codes in use); Section 4.2: "
         f"class-conditional samples of a PixelCNN prior over the codes are digits of their class (judge accuracy "
         f"at least MIN_SAMPLE_ACCURACY = {MIN_SAMPLE_ACCURACY}, FD-digits at most MAX_FD_POSITION = "
         f"{MAX_FD_POSITION} of the way from floor to ceiling, better than uniformly drawn codes).")


@dataclass
class Config:
    hidden: int = 32  # channels of the encoder and decoder (the paper: 256)
    residual_blocks: int = 1  # per network (the paper: 2)
    code_dim: int = 16  # D (the paper: 64 on CIFAR-10)
    num_codes: int = 32  # K (the paper: 512)
    beta: float = 0.25
    steps: int = 500  # Adam steps of the VQ-VAE and, the same, of the continuous autoencoder
    lr: float = 2e-3
    batch_size: int = 32
    continuous_dim: int = 1  # real numbers per grid position in the continuous autoencoder's code
    prior_hidden: int = 32
    prior_layers: int = 3
    prior_steps: int = 500
    prior_lr: float = 2e-3


SCALES = {
    "smoke": Config(hidden=8, code_dim=4, num_codes=8, steps=5, prior_hidden=8, prior_layers=1, prior_steps=5),
    "quick": Config(),
    "full": Config(hidden=128, residual_blocks=2, code_dim=64, num_codes=128, steps=5000, prior_hidden=128,
                   prior_layers=6, prior_steps=5000),
}


class ContinuousAutoencoder(torch.nn.Module):
    """The VQ-VAE's encoder and decoder with nothing between them: the code is the real-valued z_e
    (cfg.code_dim real numbers per grid position)."""

    def __init__(self, cfg: VQVAEConfig):
        super().__init__()
        self.encoder, self.decoder = Encoder(cfg, cfg.code_dim), Decoder(cfg)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.decoder(self.encoder(x))
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1).mean()

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(self.encoder(x)))


def reconstruction_scores(images: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> dict:
    """Squared error per digit, the fraction of the pixel variance explained, and the judge's accuracy."""
    error = (images - x).square().flatten(1).sum(1).mean().item()
    variance = (x - x.mean(0)).square().flatten(1).sum(1).mean().item()
    return {"squared_error": error, "explained": 1 - error / variance,
            "judge_accuracy": generative.judge_accuracy(images, y)}


def minibatches(x: torch.Tensor, batch_size: int, *more: torch.Tensor):
    def batch(i: int):
        index = torch.randint(len(x), (batch_size,))
        return (x[index], *(t[index] for t in more))
    return batch


@experiment(CLAIM, Config, SCALES)
def run(cfg: Config, ctx: Run) -> Result:
    if min(cfg.hidden, cfg.code_dim, cfg.steps, cfg.batch_size, cfg.prior_hidden, cfg.prior_steps) < 1 \
            or cfg.num_codes < 2 or cfg.continuous_dim < 1 or cfg.residual_blocks < 0 or cfg.prior_layers < 0:
        raise UserError("hidden, code_dim, steps, batch_size, prior_hidden and prior_steps must be positive, "
                        "num_codes at least 2, residual_blocks and prior_layers not negative")
    generative.judge()  # trained once and cached: build it before any model, so the runs' RNG does not depend on it
    split = load_digits()
    x, y, x_test, y_test = split.x_train, split.y_train, split.x_test, split.y_test
    net = VQVAEConfig(hidden=cfg.hidden, residual_blocks=cfg.residual_blocks, code_dim=cfg.code_dim,
                      num_codes=cfg.num_codes, beta=cfg.beta)
    log_every = max(1, cfg.steps // 20)

    # ---- 1. the discrete code against the continuous one: the same networks, steps and minibatches
    ctx.reseed(1)
    vqvae = VQVAE(net)
    ctx.reseed(2)
    train(ctx, "vqvae", vqvae, torch.optim.Adam(vqvae.parameters(), lr=cfg.lr), cfg.steps,
          minibatches(x, cfg.batch_size), lambda model, xb: model.loss(xb), data_parallel=False, log_every=log_every)
    ctx.reseed(1)
    continuous = ContinuousAutoencoder(dataclasses.replace(net, code_dim=cfg.continuous_dim))
    ctx.reseed(2)
    train(ctx, "continuous", continuous, torch.optim.Adam(continuous.parameters(), lr=cfg.lr), cfg.steps,
          minibatches(x, cfg.batch_size), lambda model, xb: model.loss(xb), log_every=log_every)
    with evaluating(vqvae), evaluating(continuous):
        codes_test = vqvae.encode(x_test.to(ctx.device)).cpu()  # scores are computed on the CPU
        discrete = reconstruction_scores(vqvae.decode(codes_test.to(ctx.device)).cpu(), x_test, y_test)
        real_valued = reconstruction_scores(continuous.reconstruct(x_test.to(ctx.device)).cpu(), x_test, y_test)
        codes_train = vqvae.encode(x.to(ctx.device)).cpu()
        used = len(codes_test.unique())
        code_perplexity = perplexity(codes_test, cfg.num_codes)

    # ---- 2. a class-conditional PixelCNN over the training digits' codes, then samples
    grid = codes_train.shape[-1]
    ctx.reseed(3)
    prior = PixelCNN(cfg.num_codes, grid, cfg.prior_hidden, cfg.prior_layers)
    ctx.reseed(4)
    prior_log = train(ctx, "prior", prior, torch.optim.Adam(prior.parameters(), lr=cfg.prior_lr), cfg.prior_steps,
                      minibatches(codes_train, cfg.batch_size, y), lambda model, c, yb: model.loss(c, yb),
                      log_every=max(1, cfg.prior_steps // 20),
                      evaluate=lambda: {"held_out_nats": prior_nats(prior, codes_test, y_test)})
    # what `milestones generate` samples from: the autoencoder and its prior
    ctx.save_trained(net, "vqvae")
    ctx.save_trained(prior.arguments, "prior", spec="prior")
    labels = torch.arange(10).repeat_interleave(SAMPLES_PER_CLASS)
    with evaluating(vqvae), evaluating(prior):
        sampled_codes = prior.sample(labels.to(ctx.device), torch.Generator().manual_seed(ctx.seed)).cpu()
        samples = vqvae.decode(sampled_codes.to(ctx.device)).cpu()
        uniform_codes = torch.randint(cfg.num_codes, sampled_codes.shape, generator=torch.Generator().manual_seed(1))
        uniform = vqvae.decode(uniform_codes.to(ctx.device)).cpu()
        reconstructions = vqvae.decode(codes_test[:20].to(ctx.device)).cpu()
        continuous_reconstructions = continuous.reconstruct(x_test[:20].to(ctx.device)).cpu()
    sample_accuracy = generative.judge_accuracy(samples, labels)
    sample_fd = generative.fd_digits(samples)
    uniform_fd = generative.fd_digits(uniform)
    held_out_nats = prior_nats(prior, codes_test, y_test)

    # ---- pictures
    shown = (torch.arange(SAMPLES_PER_CLASS * 10) % SAMPLES_PER_CLASS) < 10  # the first 10 samples of each class
    readings = generative.judge_predictions(samples[shown])
    generative.sample_grid(ctx.artifact("samples.png"), samples[shown], [f"judge {int(r)}" for r in readings],
                           title="PixelCNN prior samples, decoded: row k asked for digit k", ncols=10)
    originals = x_test[:20]
    rows = torch.cat([originals[:10], reconstructions[:10], continuous_reconstructions[:10],
                      originals[10:], reconstructions[10:], continuous_reconstructions[10:]])
    generative.sample_grid(ctx.artifact("reconstructions.png"), rows,
                           ["held-out"] * 10 + ["VQ-VAE"] * 10 + ["continuous"] * 10
                           + ["held-out"] * 10 + ["VQ-VAE"] * 10 + ["continuous"] * 10,
                           title=f"Held-out digits, their VQ-VAE reconstructions ({grid * grid} codes of K = "
                                 f"{cfg.num_codes}) and the continuous autoencoder's")
    generative.sample_grid(ctx.artifact("uniform_codes.png"), uniform[:50], ["uniform"] * 50,
                           title="Codes drawn uniformly at random, decoded (no prior)")

    ratio = discrete["squared_error"] / real_valued["squared_error"]
    checks = [
        check(f"held-out variance explained: continuous autoencoder ({real_valued['explained']:.4f}) minus VQ-VAE "
              f"({discrete['explained']:.4f}); squared error per digit {real_valued['squared_error']:.3f} vs "
              f"{discrete['squared_error']:.3f}, ratio {ratio:.2f}",
              real_valued["explained"] - discrete["explained"], "<=", MAX_EXPLAINED_GAP, "MAX_EXPLAINED_GAP",
              name="reconstruction"),
        check(f"judge accuracy on held-out reconstructions: continuous ({real_valued['judge_accuracy']:.3f}) minus "
              f"VQ-VAE ({discrete['judge_accuracy']:.3f})", real_valued["judge_accuracy"] - discrete["judge_accuracy"],
              "<=", MAX_JUDGE_DROP, "MAX_JUDGE_DROP", name="reconstruction_class"),
        check(f"share of the K = {cfg.num_codes} codes that the held-out digits use ({used}; perplexity "
              f"{code_perplexity:.1f})", used / cfg.num_codes, ">=", MIN_CODES_IN_USE, "MIN_CODES_IN_USE",
              name="codebook_use"),
        check(f"judge accuracy on {len(samples)} class-conditional prior samples", sample_accuracy, ">=",
              MIN_SAMPLE_ACCURACY, "MIN_SAMPLE_ACCURACY", name="sample_class"),
        check(f"FD-digits position of the samples ({sample_fd.value:.1f}; floor {sample_fd.floor:.1f}, ceiling "
              f"{sample_fd.ceiling:.1f})", sample_fd.position, "<=", MAX_FD_POSITION, "MAX_FD_POSITION",
              name="sample_fd"),
        check("FD-digits of the prior's samples", sample_fd.value, "<", uniform_fd.value,
              "FD-digits of uniformly drawn codes", name="prior_beats_uniform"),
    ]
    metrics = {"reconstruction": {"vqvae": discrete, "continuous": real_valued, "squared_error_ratio": ratio,
                                  "perplexity": code_perplexity, "codes_used": used,
                                  "code_bits_per_digit": grid * grid * math.log2(cfg.num_codes)},
               "prior": {"held_out_nats_per_grid": held_out_nats, "uniform_nats_per_grid":
                         grid * grid * math.log(cfg.num_codes),
                         "curve": prior_log.series("held_out_nats"), "sample_accuracy": sample_accuracy,
                         "sample_fd": sample_fd.as_dict(), "uniform_codes_fd": uniform_fd.as_dict(),
                         "judge_accuracy_real": generative.judge_held_out_accuracy()}}
    return Result(checks=checks, metrics=metrics)


def prior_nats(prior: PixelCNN, codes: torch.Tensor, labels: torch.Tensor) -> float:
    """-log p(codes | class) per grid on held-out codes, in nats."""
    device = next(prior.parameters()).device
    with evaluating(prior):
        return prior.loss(codes.to(device), labels.to(device)).item()
