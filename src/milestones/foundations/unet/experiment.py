"""U-Net's claim in miniature: from about 30 annotated images, with augmentation, the U segments
held-out images well, and without its skip connections it segments worse, above all at the edges.

Data: procedural cell images (`milestones.core.data.make_cells`): wobbly blobs with bright rims on
a blotchy, noisy background. Both networks (with and without skips) start from the same seed and the
paper's initialisation, train on random tiles of the same 30 images with the same random flips and
quarter turns, and are scored on 100 whole held-out images by
- IoU: |prediction and truth| / |prediction or truth| over all foreground pixels;
- boundary IoU (Cheng et al., 2021): the same ratio restricted to the band of pixels within
  `band` pixels inside each mask's outline, so it only counts whether the edges are right.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from milestones.core import Result, Run, UserError, check, experiment, plots
from milestones.core.data import make_cells
from milestones.core.training import evaluating, train
from milestones.foundations.unet.model import UNet, he_initialize

CLAIM = ("Trained on very few annotated images with strong augmentation, the U-Net (Figure 1: a "
         "contracting path joined to a symmetric expanding path by skip connections) segments held-out "
         "images accurately (the paper's Table 2: IoU 0.92 on PhC-U373 from 35 training images); the same "
         "network without its skip connections segments worse, especially at object boundaries.")
TARGET_IOU = 0.8  # "accurately": the bar for held-out IoU, below the paper's 0.92 for our 500-step run


@dataclass
class Config:
    image_size: int = 64
    crop: int = 32  # training tiles (crop x crop) cut at random from the training images; scored on whole images
    train_images: int = 30
    test_images: int = 100
    widths: tuple[int, ...] = (8, 16, 32, 64)  # half the channels of (16, ..., 128): a quarter of the work
    dropout: float = 0.0  # the paper: 0.5 at the end of the contracting path; it slows a 500-step run
    steps: int = 500
    batch_size: int = 8
    lr: float = 2e-3  # Adam; twice the rate the wider net used, for the same 500 steps
    band: int = 2  # pixels: the width of the boundary band that boundary IoU scores


SCALES = {
    "smoke": Config(image_size=32, crop=16, train_images=8, test_images=8, widths=(8, 16), steps=5, batch_size=4),
    "quick": Config(),
    "full": Config(image_size=128, crop=128, train_images=35, test_images=200, widths=(32, 64, 128, 256, 512), lr=1e-3,
                   dropout=0.5, steps=3000),
}


def augment(images: torch.Tensor, masks: torch.Tensor, crop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random crop (crop x crop), flip and quarter turn for each image and its mask (exact: no
    interpolation). The paper also trained on tiles and deformed images elastically; flips and turns
    suffice for our round cells."""
    n, side = len(images), images.shape[-1]
    tops, lefts = torch.randint(0, side - crop + 1, (2, n)).tolist()
    turns = torch.randint(0, 4, (n,)).tolist()
    flips = torch.rand(n) < 0.5
    out_x, out_y = [], []
    for x, y, top, left, k, flip in zip(images, masks, tops, lefts, turns, flips.tolist()):
        x, y = x[..., top:top + crop, left:left + crop], y[..., top:top + crop, left:left + crop]
        x, y = torch.rot90(x, k, (-2, -1)), torch.rot90(y, k, (-2, -1))
        out_x.append(x.flip(-1) if flip else x)
        out_y.append(y.flip(-1) if flip else y)
    return torch.stack(out_x), torch.stack(out_y)


def inner_band(masks: torch.Tensor, width: int) -> torch.Tensor:
    """(N, H, W) bool: the mask's pixels within `width` pixels of its outline (mask minus its erosion)."""
    outside = (~masks).float().unsqueeze(1)
    near_outside = F.max_pool2d(outside, 2 * width + 1, stride=1, padding=width).squeeze(1) > 0
    return masks & near_outside


def iou(prediction: torch.Tensor, truth: torch.Tensor) -> float:
    """Intersection over union of two boolean masks, pooled over every pixel of every image."""
    return ((prediction & truth).sum() / (prediction | truth).sum()).item()


def share(part: float, whole: float) -> float:
    """part / whole; NaN (a failing check) when the U-Net scored zero and there is nothing to share."""
    return part / whole if whole > 0 else float("nan")


def predict(model: UNet, images: torch.Tensor, batch_size: int = 50) -> torch.Tensor:
    """(N, H, W) bool foreground prediction, in eval mode (dropout off)."""
    device = next(model.parameters()).device
    with evaluating(model):
        scores = torch.cat([model(images[i:i + batch_size].to(device)).cpu()
                            for i in range(0, len(images), batch_size)])
    return scores.argmax(1) == 1


def train_segmenter(ctx: Run, name: str, model: UNet, images: torch.Tensor, masks: torch.Tensor, cfg: Config) -> None:
    """Pixel-wise softmax cross-entropy over the two classes, minibatches drawn with replacement."""

    def batch(i: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.randint(len(images), (cfg.batch_size,))
        return augment(images[index], masks[index], cfg.crop)

    def loss(net: UNet, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(net(x).float(), y)  # (B, 2, H, W) scores against (B, H, W) labels

    # Adam (a later paper) instead of the paper's SGD with momentum 0.99: it needs no tuning per scale.
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    train(ctx, name, model, optimizer, cfg.steps, batch, loss, log_every=max(1, cfg.steps // 20))


@experiment(CLAIM, Config, SCALES)
def run(cfg: Config, ctx: Run) -> Result:
    if not 0 < cfg.crop <= cfg.image_size:
        raise UserError(f"crop must be between 1 and image_size ({cfg.image_size}), got {cfg.crop}")
    train_set = make_cells(cfg.train_images, cfg.image_size, seed=1)
    test_set = make_cells(cfg.test_images, cfg.image_size, seed=2)
    truth = test_set.masks.bool()
    truth_band = inner_band(truth, cfg.band)

    scores, predictions = {}, {}
    for name, skip in (("unet", True), ("no_skips", False)):
        ctx.reseed(1)
        model = he_initialize(UNet(1, 2, cfg.widths, padding=True, skip=skip, dropout=cfg.dropout))
        # Channels-last: on a CPU oneDNN's convolutions run about 1.4x faster with channels innermost.
        model = model.to(ctx.device, memory_format=torch.channels_last)
        train_segmenter(ctx, name, model, train_set.images, train_set.masks, cfg)
        predictions[name] = predict(model, test_set.images)
        scores[name] = {"iou": iou(predictions[name], truth),
                        "boundary_iou": iou(inner_band(predictions[name], cfg.band), truth_band)}

    shown = 6
    rows = [test_set.images[:shown, 0], truth[:shown].float(), predictions["unet"][:shown].float(),
            predictions["no_skips"][:shown].float()]
    titles = [f"{row} {i}" for row in ("image", "truth", "U-Net", "no skips") for i in range(shown)]
    plots.image_grid(ctx.artifact("segmentations.png"), torch.cat(rows), titles, ncols=shown,
                     title="Held-out cells: image, truth, U-Net, U-Net without skips")

    unet, plain = scores["unet"], scores["no_skips"]
    return Result(
        checks=[
            check(f"U-Net IoU on held-out images after {cfg.train_images} training images", unet["iou"], ">=",
                  TARGET_IOU, "high"),
            check("IoU without skip connections", plain["iou"], "<", unet["iou"], "IoU with them"),
            check(f"boundary IoU ({cfg.band}-pixel band) without skip connections", plain["boundary_iou"], "<",
                  unet["boundary_iou"], "boundary IoU with them"),
            check("share of boundary IoU kept without skips", share(plain["boundary_iou"], unet["boundary_iou"]),
                  "<", share(plain["iou"], unet["iou"]), "share of IoU kept"),
        ],
        metrics={f"{model}_{metric}": value for model, values in scores.items() for metric, value in values.items()},
    )
