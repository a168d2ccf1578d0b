"""VQ-VAE-2 (Razavi, van den Oord & Vinyals, 2019): the VQ-VAE's codes in a hierarchy of two grids, a
coarse *top* grid for what spans the whole image and a finer *bottom* grid for local detail.

The quantizer, its straight-through gradient, the commitment loss and the moving-average codebook
are the VQ-VAE's (`milestones.generative.vqvae.model`, proven there); this module adds only the
arrangement. Encoding runs bottom-up, then top-down:

    h     = E_bottom(x)                     features at the bottom resolution (8 x 8 -> 4 x 4)
    t     = quantize_top( E_top(h) )        the top code grid (4 x 4 -> 2 x 2)
    b     = quantize_bottom( W [h, D_top(t)] )   the bottom grid, computed from the image's features
                                            *and* the decoded top code: it is conditioned on the top
                                            level, so it has to hold only what the top one lacks
    x^    = D( [up(t), b] )                 the decoder sees both grids, the top one upsampled

(`[ , ]` is concatenation along channels.) The loss is the VQ-VAE's with a commitment term per level:

    L = -log p(x | t, b) + beta ( || E_top(h) - sg[t] ||^2 + || W[h, D_top(t)] - sg[b] ||^2 ).

`decode(top, bottom)` takes any pair of code grids, so the top codes of one image can be decoded with
the bottom codes of another: the experiment's test of what each level holds. The paper then fits an
autoregressive prior to each level (a PixelCNN with self-attention for the top, one conditioned on
the top for the bottom); our experiment tests the codes themselves and fits no prior (notes.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from milestones.generative.vqvae.model import ResidualBlock, VectorQuantizer, nearest_code_grid


@dataclass
class VQVAE2Config:
    channels: int = 1  # image channels
    hidden: int = 32  # channels of every convolution
    code_dim: int = 16  # D of both codebooks
    top_codes: int = 16  # K of the top level (a 2 x 2 grid for 8 x 8 images)
    bottom_codes: int = 16  # K of the bottom level (a 4 x 4 grid)
    beta: float = 0.25
    decay: float = 0.99  # of both codebooks' moving averages


class VQVAE2(nn.Module):
    def __init__(self, cfg: VQVAE2Config):
        super().__init__()
        self.cfg = cfg
        h, d = cfg.hidden, cfg.code_dim
        self.encode_bottom = nn.Sequential(  # (B, C, 8, 8) -> (B, h, 4, 4)
            nn.Conv2d(cfg.channels, h, 4, stride=2, padding=1), nn.ReLU(), nn.Conv2d(h, h, 3, padding=1),
            ResidualBlock(h))
        self.encode_top = nn.Sequential(  # (B, h, 4, 4) -> (B, D, 2, 2)
            nn.ReLU(), nn.Conv2d(h, h, 4, stride=2, padding=1), nn.ReLU(), nn.Conv2d(h, h, 3, padding=1),
            ResidualBlock(h), nn.ReLU(), nn.Conv2d(h, d, 1))
        self.quantize_top = VectorQuantizer(cfg.top_codes, d, ema=True, decay=cfg.decay)
        self.decode_top = nn.Sequential(  # (B, D, 2, 2) -> (B, h, 4, 4): the top code's view at the bottom level
            nn.Conv2d(d, h, 3, padding=1), ResidualBlock(h), nn.ReLU(),
            nn.ConvTranspose2d(h, h, 4, stride=2, padding=1))
        self.pre_bottom = nn.Conv2d(2 * h, d, 1)  # W: [image features, decoded top] -> the bottom level's z_e
        self.quantize_bottom = VectorQuantizer(cfg.bottom_codes, d, ema=True, decay=cfg.decay)
        self.upsample_top = nn.ConvTranspose2d(d, d, 4, stride=2, padding=1)  # (B, D, 2, 2) -> (B, D, 4, 4)
        self.decoder = nn.Sequential(  # (B, 2 D, 4, 4) -> logits (B, C, 8, 8)
            nn.Conv2d(2 * d, h, 3, padding=1), ResidualBlock(h), nn.ReLU(),
            nn.ConvTranspose2d(h, cfg.channels, 4, stride=2, padding=1))

    def bottom_input(self, features: torch.Tensor, z_top: torch.Tensor) -> torch.Tensor:
        """z_e of the bottom level: the image's features and the decoded top code, (B, D, 4, 4)."""
        return self.pre_bottom(torch.cat([F.relu(features), self.decode_top(z_top)], 1))

    def decode_vectors(self, z_top: torch.Tensor, z_bottom: torch.Tensor) -> torch.Tensor:
        """Logits (B, C, 8, 8) from the two levels' code vectors."""
        return self.decoder(torch.cat([self.upsample_top(z_top), z_bottom], 1))

    def forward(self, x: torch.Tensor):
        """x -> (logits, (top codes (B, 2, 2), bottom codes (B, 4, 4)), per-image losses (B,))."""
        features = self.encode_bottom(x)
        z_top, top, _, commit_top = self.quantize_top(self.encode_top(features))
        z_bottom, bottom, _, commit_bottom = self.quantize_bottom(self.bottom_input(features, z_top))
        logits = self.decode_vectors(z_top, z_bottom)
        reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
        return logits, (top, bottom), {"reconstruction": reconstruction, "commitment_top": commit_top,
                                       "commitment_bottom": commit_bottom}

    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        _, _, terms = self(x)
        total = terms["reconstruction"] + self.cfg.beta * (terms["commitment_top"] + terms["commitment_bottom"])
        return total.mean(), {name: value.mean().detach() for name, value in terms.items()}

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two code grids of images x: top (B, 2, 2) and bottom (B, 4, 4)."""
        features = self.encode_bottom(x)
        top = nearest_code_grid(self.encode_top(features), self.quantize_top.codebook)
        z_top = self.quantize_top.lookup(top)
        bottom = nearest_code_grid(self.bottom_input(features, z_top), self.quantize_bottom.codebook)
        return top, bottom

    def decode(self, top: torch.Tensor, bottom: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] from any pair of code grids (they need not come from the same image)."""
        return torch.sigmoid(self.decode_vectors(self.quantize_top.lookup(top), self.quantize_bottom.lookup(bottom)))
