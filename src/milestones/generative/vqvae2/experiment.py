"""VQ-VAE-2's hierarchy in miniature: does a two-level code beat one level at the same bits, and does the
top level hold the global structure while the bottom adds local detail (Section 3.1)?

Data: sklearn's 8 x 8 digits, the training split for training and the held-out split for every score.
Models: the VQ-VAE of `milestones.generative.vqvae` with one 4 x 4 grid of K = 32 codes (80 bits per
digit), and the VQ-VAE-2 of model.py with a 2 x 2 top grid and a 4 x 4 bottom grid of K = 16 codes each
(16 + 64 = 80 bits; equal K at both levels, as in the paper), the same channels, beta, EMA decay,
steps, minibatches and Adam rate. No prior is fitted: the claims are about the codes.

1. Same bits, better reconstructions: the two-level model's held-out squared error per digit is below
   the one-level model's (`reconstruction`).
2. The levels divide the work: for pairs of held-out digits (a, b) of different classes, the top codes
   of a are decoded with the bottom codes of b. If the top level holds the global shape, the judge
   (milestones.core.generative) reads the result as a's class at least MIN_TOP_CLASS_SHARE of the time
   (`top_sets_class`) and as b's class at most MAX_BOTTOM_CLASS_SHARE of the time (`bottom_sets_detail`:
   the bottom codes change detail, not the digit).

Controls (true when the set-up is right): both grids hold the same number of bits, and the judge reads
the two-level model's own reconstructions as the right digit at least MIN_RECONSTRUCTION_ACCURACY of the
time, so a failing swap is not a broken model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from milestones.core import Result, Run, UserError, check, experiment, generative
from milestones.core.data import load_digits
from milestones.core.training import evaluating, train
from milestones.generative.vqvae.model import VQVAE, VQVAEConfig, perplexity
from milestones.generative.vqvae2.model import VQVAE2, VQVAE2Config

MIN_TOP_CLASS_SHARE = 0.5  # swapped decodes read as the top codes' source class
MAX_BOTTOM_CLASS_SHARE = 0.25  # swapped decodes read as the bottom codes' source class
MIN_RECONSTRUCTION_ACCURACY = 0.9  # control: the judge on the two-level model's own reconstructions

CLAIM = (f"Section 3.1: at the same code bits, a two-level (top and bottom) VQ-VAE reconstructs held-out "
         f"digits better than a one-level one, and its top level holds the global structure: decoding one digit's "
         f"top codes with another's bottom codes gives the top digit's class at least MIN_TOP_CLASS_SHARE = "
         f"{MIN_TOP_CLASS_SHARE} of the time and the bottom digit's at most MAX_BOTTOM_CLASS_SHARE = "
         f"{MAX_BOTTOM_CLASS_SHARE}.")


@dataclass
class Config:
    hidden: int = 32
    code_dim: int = 16
    one_level_codes: int = 32  # K of the one-level model's 4 x 4 grid
    top_codes: int = 16  # K of the two-level model's 2 x 2 top grid
    bottom_codes: int = 16  # K of its 4 x 4 bottom grid
    beta: float = 0.25
    steps: int = 300  # Adam steps of each model
    lr: float = 2e-3
    batch_size: int = 32


SCALES = {
    "smoke": Config(hidden=8, code_dim=4, steps=5),
    "quick": Config(),
    "full": Config(hidden=128, code_dim=64, steps=5000),
}


def squared_error(images: torch.Tensor, x: torch.Tensor) -> float:
    return (images - x).square().flatten(1).sum(1).mean().item()


@experiment(CLAIM, Config, SCALES, expected_failures=("reconstruction", "top_sets_class", "bottom_sets_detail"))
def run(cfg: Config, ctx: Run) -> Result:
    if min(cfg.hidden, cfg.code_dim, cfg.steps, cfg.batch_size) < 1 or min(
            cfg.one_level_codes, cfg.top_codes, cfg.bottom_codes) < 2:
        raise UserError("hidden, code_dim, steps and batch_size must be positive, every codebook at least 2 codes")
    generative.judge()  # cached; built before the models so the runs' RNG does not depend on it
    split = load_digits()
    x, x_test, y_test = split.x_train, split.x_test, split.y_test

    def batch(i: int):
        return (x[torch.randint(len(x), (cfg.batch_size,))],)

    builders = {"one_level": lambda: VQVAE(VQVAEConfig(hidden=cfg.hidden, residual_blocks=1, code_dim=cfg.code_dim,
                                                       num_codes=cfg.one_level_codes, beta=cfg.beta)),
                "two_level": lambda: VQVAE2(VQVAE2Config(hidden=cfg.hidden, code_dim=cfg.code_dim,
                                                         top_codes=cfg.top_codes, bottom_codes=cfg.bottom_codes,
                                                         beta=cfg.beta))}
    models = {}
    for i, (name, build) in enumerate(builders.items()):
        ctx.reseed(10 + i)
        models[name] = model = build()
        ctx.reseed(2)  # the same minibatches for both
        train(ctx, name, model, torch.optim.Adam(model.parameters(), lr=cfg.lr), cfg.steps, batch,
              lambda net, xb: net.loss(xb), data_parallel=False, log_every=max(1, cfg.steps // 20))
    one, two = models["one_level"], models["two_level"]
    partner = torch.randperm(len(x_test), generator=torch.Generator().manual_seed(ctx.seed))
    with evaluating(one), evaluating(two):  # on the models' device; every score on the CPU
        on_device = x_test.to(ctx.device)
        codes = one.encode(on_device)
        one_images = one.decode(codes).cpu()
        top, bottom = two.encode(on_device)
        two_images = two.decode(top, bottom).cpu()
        swapped = two.decode(top, bottom[partner]).cpu()  # digit a's top codes, digit b = partner's bottom codes
        top_swapped = two.decode(top[partner], bottom).cpu()  # the other way round, for the pixel effect sizes
        codes, top, bottom = codes.cpu(), top.cpu(), bottom.cpu()
    different = y_test != y_test[partner]
    readings = generative.judge_predictions(swapped)
    top_share = (readings == y_test)[different].float().mean().item()
    bottom_share = (readings == y_test[partner])[different].float().mean().item()
    errors = {"one_level": squared_error(one_images, x_test), "two_level": squared_error(two_images, x_test)}
    accuracy = {"one_level": generative.judge_accuracy(one_images, y_test),
                "two_level": generative.judge_accuracy(two_images, y_test)}
    bits = {"one_level": codes[0].numel() * math.log2(cfg.one_level_codes),
            "two_level": top[0].numel() * math.log2(cfg.top_codes) + bottom[0].numel() * math.log2(cfg.bottom_codes)}

    # ---- pictures: a, b, a's reconstruction, b's, a's top with b's bottom
    n = 10
    rows = torch.cat([x_test[:n], x_test[partner[:n]], two_images[:n], two_images[partner[:n]], swapped[:n]])
    captions = ([f"a: {int(c)}" for c in y_test[:n]] + [f"b: {int(c)}" for c in y_test[partner[:n]]]
                + ["recon a"] * n + ["recon b"] * n + [f"judge {int(r)}" for r in readings[:n]])
    generative.sample_grid(ctx.artifact("swaps.png"), rows, captions,
                           title="Held-out a and b, their two-level reconstructions, and a's top codes with b's bottom")
    generative.sample_grid(ctx.artifact("reconstructions.png"),
                           torch.cat([x_test[:n], one_images[:n], two_images[:n]]),
                           ["held-out"] * n + ["one level"] * n + ["two levels"] * n,
                           title=f"Reconstructions at {bits['two_level']:.0f} bits per digit")

    checks = [
        check(f"held-out squared error per digit, two levels (one level: {errors['one_level']:.3f})",
              errors["two_level"], "<", errors["one_level"], "the one-level model's", name="reconstruction"),
        check(f"share of {int(different.sum())} swapped decodes the judge reads as the top codes' digit",
              top_share, ">=", MIN_TOP_CLASS_SHARE, "MIN_TOP_CLASS_SHARE", name="top_sets_class"),
        check("share the judge reads as the bottom codes' digit", bottom_share, "<=", MAX_BOTTOM_CLASS_SHARE,
              "MAX_BOTTOM_CLASS_SHARE", name="bottom_sets_detail"),
        check("code bits per digit, two levels", bits["two_level"], "<=", bits["one_level"], "one level's",
              name="same_bits", control=True),
        check(f"judge accuracy on the two-level reconstructions (one level: {accuracy['one_level']:.3f})",
              accuracy["two_level"], ">=", MIN_RECONSTRUCTION_ACCURACY, "MIN_RECONSTRUCTION_ACCURACY",
              name="reconstructions_recognisable", control=True),
    ]
    metrics = {"squared_error": errors, "judge_accuracy": accuracy, "bits": bits,
               "perplexity": {"one_level": perplexity(codes, cfg.one_level_codes),
                              "top": perplexity(top, cfg.top_codes), "bottom": perplexity(bottom, cfg.bottom_codes)},
               "codes_used": {"one_level": len(codes.unique()), "top": len(top.unique()),
                              "bottom": len(bottom.unique())},
               "swap": {"pairs": int(different.sum()), "top_class_share": top_share, "bottom_class_share": bottom_share,
                        "pixel_change_bottom_swapped": squared_error(swapped, two_images),
                        "pixel_change_top_swapped": squared_error(top_swapped, two_images)},
               "parameters": {name: sum(p.numel() for p in m.parameters()) for name, m in models.items()}}
    return Result(checks=checks, metrics=metrics)
