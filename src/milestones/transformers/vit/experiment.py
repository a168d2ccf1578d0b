"""Inductive bias against data (the paper's Figures 3 and 4), in miniature.

The paper trains ViTs and ResNets (BiT) on ever larger data sets: on ImageNet alone (1.3M images) the
ResNets win, on JFT-300M the ViTs do (Figure 3); on random subsets of JFT of 9M to 300M images, the
ResNets lead on the small subsets and the ViTs overtake them on the large ones (Figure 4). The
convolution's built-in assumptions (locality, the same filter everywhere) are worth a lot of data;
a model without them must learn them, and needs the data to do so.

Our miniature:

- Images: `milestones.core.data.make_shapes` with one shape per image, drawn at 32 x 32 pixels and
  averaged down to 16 x 16 in 2 x 2 blocks (smoothed edges). We keep the squares and triangles and
  classify which it is: the shapes sit anywhere, in any of six colours and sizes, on a noisy textured
  background, so a classifier must find a small object wherever it is (circles are left out: see
  notes.md). Pixels are standardised per colour channel with the training set's mean and std.
- Data sets: the training sets are nested prefixes of one pool (`sizes`); every model is scored on
  the same `test_images` fresh images.
- Models of about the same size: the ViT of model.py (4 x 4 patches, so 16 patch tokens and the class
  token; D = 32, 2 layers, 4 heads, MLP 64: 19,362 weights) and the ResNet of
  ../../optimization/resnet (CifarResNet with one basic block per stage of 8, 16 and 32 channels, an
  8-layer ResNet: 18,954 weights).
- Training, the paper's recipe shrunk and the same for both: AdamW (beta = 0.9, 0.999) with weight
  decay 0.1 on the weight tensors (not on biases and norms), a linear warm-up over the first 5% of
  the steps then a cosine decay to zero, batches of 64 with random horizontal flips, and the same
  number of steps at every size, so that only the data differs. Each model has its own learning
  rate, the best of a sweep made while writing this (notes.md). At each size both models see the
  same batches. Both are scored by test accuracy after the last step.

The claim is checked at the smallest and the largest size: the ResNet must win clearly on few images
(`small_data`), and the gap must at least halve on the largest set (`gap_shrinks`). Two controls check
the set-up: the models have about the same number of weights (`same_size`), and the ViT does fit its
smallest training set (`vit_fits_small_set`), so that what it lacks there is generalisation, not
enough training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from milestones.core import Result, Run, UserError, check, experiment, plots
from milestones.core.data import make_shapes
from milestones.core.data.shapes import KINDS
from milestones.core.training import accuracy, fit_classifier, fused_kernel
from milestones.optimization.resnet.model import CifarResNet
from milestones.transformers.vit.model import ViT, ViTConfig

MIN_SMALL_DATA_GAP = 0.1  # on the smallest training set the ResNet's test accuracy beats the ViT's by this much
MAX_GAP_RATIO = 0.5  # on the largest set the gap is at most this fraction of the gap on the smallest
PARAMETER_TOLERANCE = 0.1  # "about the same size": the two models' weight counts differ by at most 10%
FIT_ACCURACY = 0.95  # the ViT fits its smallest training set: its deficit there is generalisation, not optimisation
CLASSES = ("square", "triangle")

CLAIM = (f"Inductive bias against data (Figures 3 and 4): trained from scratch on few images, a ResNet beats a "
         f"ViT of about the same size by at least MIN_SMALL_DATA_GAP = {MIN_SMALL_DATA_GAP} of test accuracy, "
         f"and on the largest training set the gap shrinks to at most MAX_GAP_RATIO = {MAX_GAP_RATIO} of that.")


@dataclass
class Config:
    sizes: tuple[int, ...] = (100, 400, 1600)  # training images, nested subsets of one pool
    steps: int = 200  # optimizer steps at every size, both models
    batch_size: int = 64
    test_images: int = 1000
    image_size: int = 16  # drawn at twice this and averaged down
    flips: bool = True  # random horizontal flips (both models)
    weight_decay: float = 0.1
    warmup: float = 0.05  # fraction of the steps
    # The ViT: the paper's ViT-B/16 has 16 x 16 patches of 224 x 224 images, D = 768, 12 layers, 12 heads.
    patch_size: int = 4
    dim: int = 32
    depth: int = 2
    heads: int = 4
    mlp_dim: int = 64
    vit_lr: float = 7e-3  # the best of 3e-3 .. 1.5e-2 (notes.md)
    # The ResNet: CifarResNet(n) has 6n + 2 layers.
    resnet_blocks: int = 1
    resnet_widths: tuple[int, ...] = (8, 16, 32)
    resnet_lr: float = 3e-2  # the best of 1e-2 .. 1e-1 (notes.md)


SCALES = {
    "smoke": Config(sizes=(8, 16, 32), steps=4, test_images=32),
    "quick": Config(),
    "full": Config(sizes=(100, 400, 1600, 6400, 25600), steps=2000, test_images=4000),
}


def squares_and_triangles(n: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n images (n, 3, size, size) in [0, 1] of one square or one triangle, and their labels (0 square,
    1 triangle); the same seed always gives the same images."""
    images, labels, have, draw = [], [], 0, 0
    while have < n:  # about two images in three are kept; draw in chunks of at most 4096
        shapes = make_shapes(min(4096, (n - have) * 3 // 2 + 64), size=2 * size, max_shapes=1, seed=seed + 7919 * draw)
        kind = shapes.kinds[:, 0]
        keep = kind != KINDS.index("circle")
        images.append(F.avg_pool2d(shapes.images[keep], 2))  # 2 x 2 blocks averaged: smooth edges
        labels.append((kind[keep] == KINDS.index("triangle")).long())
        have, draw = have + len(labels[-1]), draw + 1
    return torch.cat(images)[:n], torch.cat(labels)[:n]


def validate(cfg: Config) -> None:
    """What `--set` may get wrong, as one-line errors."""
    if len(set(cfg.sizes)) < 2 or len(set(cfg.sizes)) < len(cfg.sizes) or min(cfg.sizes) < 1:
        raise UserError("sizes needs two or more different positive training-set sizes, e.g. --set sizes=100,400,1600")
    if len(cfg.resnet_widths) != 3:
        raise UserError("resnet_widths needs three widths, one per stage, e.g. --set resnet_widths=8,16,32")
    if cfg.image_size % cfg.patch_size or cfg.dim % cfg.heads:
        raise UserError("patch_size must divide image_size, and heads must divide dim")


def make_vit(cfg: Config) -> ViT:
    return ViT(ViTConfig(image_size=cfg.image_size, patch_size=cfg.patch_size, n_classes=len(CLASSES), dim=cfg.dim,
                         depth=cfg.depth, heads=cfg.heads, mlp_dim=cfg.mlp_dim))


def make_resnet(cfg: Config) -> CifarResNet:
    return CifarResNet(cfg.resnet_blocks, n_classes=len(CLASSES), widths=tuple(cfg.resnet_widths))


def warmup_cosine(steps: int, warmup: float):
    """The learning-rate multiplier of step i: a linear rise over the warm-up, then a cosine down to zero."""
    rise = max(1, round(warmup * steps))
    return lambda i: min(1.0, (i + 1) / rise) * 0.5 * (1 + math.cos(math.pi * min(i, steps) / steps))


def flip(x: torch.Tensor) -> torch.Tensor:
    """Mirror a random half of the images left to right (drawn from the global RNG: resume stays exact)."""
    mirrored = torch.rand(len(x)) < 0.5
    return torch.where(mirrored[:, None, None, None], x.flip(-1), x)


def train_and_score(ctx: Run, cfg: Config, name: str, model: torch.nn.Module, lr: float, x: torch.Tensor,
                    y: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor) -> dict:
    decay = [p for p in model.parameters() if p.dim() >= 2]  # kernels, matrices, class token, positions
    rest = [p for p in model.parameters() if p.dim() < 2]  # biases and norms: no decay
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": rest, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.999),
                                  fused=fused_kernel(ctx.device))  # one kernel for all tensors, same update
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(cfg.steps, cfg.warmup))
    log = fit_classifier(ctx, name, model, optimizer, x, y, cfg.steps, cfg.batch_size,
                         augment=flip if cfg.flips else None, schedule=schedule)
    return {"test_accuracy": accuracy(model, x_test, y_test), "train_accuracy": accuracy(model, x, y),
            "final_loss": log.last("loss")}


@experiment(CLAIM, Config, SCALES)
def run(cfg: Config, ctx: Run) -> Result:
    validate(cfg)
    sizes = sorted(cfg.sizes)
    pool_x, pool_y = squares_and_triangles(sizes[-1], cfg.image_size, seed=2 * ctx.seed)
    raw_test_x, test_y = squares_and_triangles(cfg.test_images, cfg.image_size, seed=2 * ctx.seed + 1)

    rows = []
    for i, n in enumerate(sizes):
        x = pool_x[:n]
        mean, std = x.mean((0, 2, 3), keepdim=True), x.std((0, 2, 3), keepdim=True)  # the training set's own
        x, test_x = (x - mean) / std, (raw_test_x - mean) / std
        row = {"images": n}
        for offset, (model_name, build, lr) in enumerate((("vit", make_vit, cfg.vit_lr),
                                                          ("resnet", make_resnet, cfg.resnet_lr))):
            ctx.reseed(10 * i + offset)  # each model's own initial weights
            model = build(cfg)
            ctx.reseed(10 * i + 9)  # the same batches and flips for both models at this size
            scores = train_and_score(ctx, cfg, f"{model_name}-{n}", model, lr, x, pool_y[:n], test_x, test_y)
            row |= {f"{model_name}_{key}": value for key, value in scores.items()}
            row[f"{model_name}_parameters"] = sum(p.numel() for p in model.parameters())
        row["gap"] = row["resnet_test_accuracy"] - row["vit_test_accuracy"]
        rows.append(row)

    small, large = rows[0], rows[-1]
    plots.curves(ctx.artifact("accuracy_vs_data.png"), {
        f"ViT ({small['vit_parameters']:,} weights)": (sizes, [r["vit_test_accuracy"] for r in rows]),
        f"ResNet ({small['resnet_parameters']:,} weights)": (sizes, [r["resnet_test_accuracy"] for r in rows])},
        "Squares or triangles: test accuracy against training data", xlabel="training images",
        ylabel="test accuracy", logx=True, marker="o", hlines={"chance": 0.5})
    show = min(8, len(raw_test_x))
    plots.image_grid(ctx.artifact("test_images.png"), raw_test_x[:show], [CLASSES[k] for k in test_y[:show]],
                     title="Test images (16 x 16)")

    parameter_ratio = small["vit_parameters"] / small["resnet_parameters"]
    checks = [
        check(f"ResNet minus ViT test accuracy, {small['images']} training images ({small['resnet_test_accuracy']:.3f}"
              f" vs {small['vit_test_accuracy']:.3f})", small["gap"], ">=", MIN_SMALL_DATA_GAP,
              "MIN_SMALL_DATA_GAP", name="small_data"),
        check(f"ResNet minus ViT test accuracy, {large['images']} training images ({large['resnet_test_accuracy']:.3f}"
              f" vs {large['vit_test_accuracy']:.3f})", large["gap"], "<=", MAX_GAP_RATIO * small["gap"],
              f"MAX_GAP_RATIO x the gap at {small['images']}", name="gap_shrinks"),
        check("|ViT / ResNet weights - 1|", abs(parameter_ratio - 1), "<=", PARAMETER_TOLERANCE,
              "PARAMETER_TOLERANCE", name="same_size", control=True),
        check(f"ViT training accuracy, {small['images']} training images", small["vit_train_accuracy"], ">=",
              FIT_ACCURACY, "FIT_ACCURACY", name="vit_fits_small_set", control=True),
    ]
    metrics = {"sizes": rows, "classes": list(CLASSES), "test_images": len(test_y),
               "images_seen_per_model": cfg.steps * cfg.batch_size}
    return Result(checks=checks, metrics=metrics)
