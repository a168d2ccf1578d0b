"""VQ-VAE (van den Oord, Vinyals & Kavukcuoglu, 2017): an autoencoder whose code is a grid of discrete
symbols, each the index of the nearest vector in a learned codebook; then an autoregressive prior over
the grid of indices, so that the decoder becomes a sampler.

The encoder maps an image x to a grid of vectors z_e(x) (B, D, H, W). Each vector is replaced by its
nearest entry of the codebook e_1 .. e_K (`nearest_code`):

    k(x) = argmin_j || z_e(x) - e_j ||^2,        z_q(x) = e_{k(x)}

and the decoder reconstructs x from z_q. As a VAE, the posterior q(k | x) is one-hot (deterministic)
and the prior uniform over the K symbols, so the KL term is the constant log K per grid position and
drops out of training. The argmin has no gradient; the paper copies the decoder's input gradient
dL/dz_q to the encoder's output unchanged (`straight_through`: z_e + sg[z_q - z_e] equals z_q in the
forward pass and has the identity as its Jacobian in the backward pass, sg = stop-gradient). The
training loss per image is

    L = -log p(x | z_q)  +  || sg[z_e] - e ||^2  +  beta || z_e - sg[e] ||^2

the reconstruction, the *codebook loss* (which moves the chosen codes towards the encoder's outputs)
and the *commitment loss* (which keeps the encoder near the codes it chose; beta = 0.25 in the paper),
each squared norm summed over the grid (`vq_losses`). The paper's appendix replaces the codebook loss
by an exponential moving average (`ema_update`): with n_i the number of vectors assigned to code i in
the batch and s_i their sum,

    N_i <- gamma N_i + (1 - gamma) n_i,     m_i <- gamma m_i + (1 - gamma) s_i,     e_i <- m_i / N_i

(gamma = 0.99), i.e. each code tracks the running mean of the vectors assigned to it, k-means online.

Networks (the paper's Section 4.1, shrunk to 8 x 8 digits): the encoder is a strided 4 x 4 convolution
(8 x 8 -> 4 x 4), a 3 x 3 convolution and residual blocks x + conv1x1(relu(conv3x3(relu(x)))) (the
ResNet idea, in the paper's pre-activation form without batch norm), then a 1 x 1 convolution to D
channels; the decoder mirrors it with a transposed convolution. The decoder's likelihood is Bernoulli
on the pixel intensities, as in our VAE (`milestones.generative.vae`).

The prior (`PixelCNN`) is the paper's choice: a PixelCNN over the H x W grid of indices, each symbol's
distribution conditioned on the symbols before it in raster order through masked convolutions, and
on a class label (the paper's class-conditional ImageNet samples). Its first masked convolution is as
wide as the grid, so every symbol sees all symbols before it (no blind spot, which on a 4 x 4 grid
is cheap); sampling draws the grid one symbol at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class VQVAEConfig:
    channels: int = 1  # image channels
    hidden: int = 32  # channels of the encoder's and decoder's convolutions
    residual_blocks: int = 2  # per network (the paper: 2)
    code_dim: int = 16  # D, the dimension of each code vector
    num_codes: int = 32  # K, the codebook's size
    beta: float = 0.25  # weight of the commitment loss (the paper's value)
    ema: bool = True  # codebook by exponential moving averages (appendix) or by the codebook loss
    decay: float = 0.99  # gamma of the moving averages


# ---------------------------------------------------------------------------- quantization, the paper's delta
def nearest_code(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """The index of the nearest code for each row of z (N, D) in the codebook (K, D), (N,).

    ||z - e||^2 = ||z||^2 - 2 z.e + ||e||^2: one matrix product instead of N x K differences."""
    distances = z.square().sum(1, keepdim=True) - 2 * z @ codebook.T + codebook.square().sum(1)  # (N, K)
    return distances.argmin(1)


def straight_through(z_e: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """z_q in the forward pass; in the backward pass dL/dz_q is handed to z_e unchanged."""
    return z_e + (z_q - z_e).detach()


def vq_losses(z_e: torch.Tensor, z_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(codebook loss, commitment loss) per image (B,), for z_e and z_q (B, D, H, W):
    || sg[z_e] - z_q ||^2 (gradient to the codes only) and || z_e - sg[z_q] ||^2 (to the encoder only)."""
    codebook = (z_e.detach() - z_q).square().flatten(1).sum(1)
    commitment = (z_e - z_q.detach()).square().flatten(1).sum(1)
    return codebook, commitment


@torch.no_grad()
def ema_update(counts: torch.Tensor, sums: torch.Tensor, z: torch.Tensor, indices: torch.Tensor,
               decay: float) -> torch.Tensor:
    """One moving-average step of the codebook, in place on counts N (K,) and sums m (K, D), given the
    batch's vectors z (N, D) and their codes (N,); returns the new codebook e_i = m_i / N_i (K, D)."""
    onehot = F.one_hot(indices, len(counts)).to(z.dtype)  # (N, K)
    counts.mul_(decay).add_(onehot.sum(0), alpha=1 - decay)  # N_i <- g N_i + (1 - g) n_i
    sums.mul_(decay).add_(onehot.T @ z, alpha=1 - decay)  # m_i <- g m_i + (1 - g) sum_{j: k_j = i} z_j
    return sums / counts[:, None]


def perplexity(indices: torch.Tensor, num_codes: int) -> float:
    """exp(entropy) of how often each code is used: K when all are used equally, 1 when one is."""
    p = torch.bincount(indices.flatten(), minlength=num_codes).double() / indices.numel()
    return torch.exp(-(p[p > 0] * p[p > 0].log()).sum()).item()


class VectorQuantizer(nn.Module):
    """The codebook and the quantization step. With `ema`, the codebook is a buffer that `forward`
    updates by moving averages in training mode; without, it is a parameter trained by the codebook loss.

    The averages start at N_i = 1 and m_i = e_i (each code a cluster of weight one at its initial
    place): e_i = m_i / N_i is then defined from the first step on, and a code that no vector chooses
    stays where it is, since its N_i and m_i shrink by the same factor.

    The codes start at K of the encoder's outputs on the first training batch (`start_from`), not
    at random vectors: random codes far from where the encoder's outputs lie are never chosen, and
    in our runs all but two of 32 stayed unused (notes.md). The paper does not say how it starts them."""

    def __init__(self, num_codes: int, dim: int, ema: bool = True, decay: float = 0.99):
        super().__init__()
        self.ema, self.decay = ema, decay
        codebook = torch.randn(num_codes, dim)
        if ema:
            self.register_buffer("codebook", codebook)
            self.register_buffer("counts", torch.ones(num_codes))
            self.register_buffer("sums", codebook.clone())
        else:
            self.codebook = nn.Parameter(codebook)
        self.register_buffer("started", torch.tensor(False))

    @torch.no_grad()
    def start_from(self, z: torch.Tensor) -> None:
        """Set the codes to K vectors drawn from z (N, D) (with replacement if N < K)."""
        k = len(self.codebook)
        rows = torch.randperm(len(z))[:k] if len(z) >= k else torch.randint(len(z), (k,))
        self.codebook.copy_(z[rows])
        if self.ema:
            self.sums.copy_(z[rows])
        self.started.fill_(True)

    def forward(self, z_e: torch.Tensor):
        """z_e (B, D, H, W) -> (z_q with the straight-through gradient, codes (B, H, W), codebook loss,
        commitment loss), the losses per image (B,); the codebook loss is zero under EMA."""
        b, d, h, w = z_e.shape
        flat = z_e.detach().permute(0, 2, 3, 1).reshape(-1, d).to(self.codebook.dtype)  # (B H W, D)
        if self.training and not self.started:
            self.start_from(flat)
        indices = nearest_code(flat, self.codebook)
        if self.ema and self.training:
            self.codebook.copy_(ema_update(self.counts, self.sums, flat, indices, self.decay))
        z_q = self.lookup(indices.view(b, h, w)).to(z_e.dtype)
        codebook_loss, commitment = vq_losses(z_e, z_q)
        if self.ema:
            codebook_loss = torch.zeros_like(codebook_loss)
        return straight_through(z_e, z_q), indices.view(b, h, w), codebook_loss, commitment

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes (B, H, W) -> their vectors (B, D, H, W)."""
        return self.codebook[indices].permute(0, 3, 1, 2)


# ------------------------------------------------------------------------------------ encoder and decoder
class ResidualBlock(nn.Module):
    """x + conv1x1(relu(conv3x3(relu(x)))): the paper's block (ResNet's shortcut, no batch norm)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv3 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv1 = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv1(F.relu(self.conv3(F.relu(x))))


class Encoder(nn.Module):
    """(B, C, 8, 8) -> (B, out, 4, 4)."""

    def __init__(self, cfg: VQVAEConfig, out: int):
        super().__init__()
        self.down = nn.Conv2d(cfg.channels, cfg.hidden, 4, stride=2, padding=1)  # 8 x 8 -> 4 x 4
        self.conv = nn.Conv2d(cfg.hidden, cfg.hidden, 3, padding=1)
        self.blocks = nn.Sequential(*[ResidualBlock(cfg.hidden) for _ in range(cfg.residual_blocks)])
        self.out = nn.Conv2d(cfg.hidden, out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(F.relu(self.blocks(self.conv(F.relu(self.down(x))))))


class Decoder(nn.Module):
    """(B, D, 4, 4) -> Bernoulli logits (B, C, 8, 8)."""

    def __init__(self, cfg: VQVAEConfig):
        super().__init__()
        self.conv = nn.Conv2d(cfg.code_dim, cfg.hidden, 3, padding=1)
        self.blocks = nn.Sequential(*[ResidualBlock(cfg.hidden) for _ in range(cfg.residual_blocks)])
        self.up = nn.ConvTranspose2d(cfg.hidden, cfg.channels, 4, stride=2, padding=1)  # 4 x 4 -> 8 x 8

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.up(F.relu(self.blocks(self.conv(z))))


class VQVAE(nn.Module):
    def __init__(self, cfg: VQVAEConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg, cfg.code_dim)
        self.quantizer = VectorQuantizer(cfg.num_codes, cfg.code_dim, cfg.ema, cfg.decay)
        self.decoder = Decoder(cfg)

    def forward(self, x: torch.Tensor):
        """x (B, C, 8, 8) -> (reconstruction logits, codes (B, 4, 4), losses: dict of per-image (B,) terms)."""
        z_e = self.encoder(x)
        z_q, codes, codebook_loss, commitment = self.quantizer(z_e)
        logits = self.decoder(z_q)
        reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
        return logits, codes, {"reconstruction": reconstruction, "codebook": codebook_loss,
                               "commitment": commitment}

    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """The mean over the batch of -log p(x | z_q) + codebook loss + beta commitment loss."""
        _, _, terms = self(x)
        total = terms["reconstruction"] + terms["codebook"] + self.cfg.beta * terms["commitment"]
        return total.mean(), {name: value.mean().detach() for name, value in terms.items()}

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code grid (B, 4, 4) of images x."""
        return nearest_code_grid(self.encoder(x), self.quantizer.codebook)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] (the decoder's Bernoulli means) of code grids (B, 4, 4)."""
        return torch.sigmoid(self.decoder(self.quantizer.lookup(codes)))


def nearest_code_grid(z_e: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """`nearest_code` for a grid of vectors (B, D, H, W) -> codes (B, H, W)."""
    b, d, h, w = z_e.shape
    return nearest_code(z_e.permute(0, 2, 3, 1).reshape(-1, d), codebook).view(b, h, w)


# --------------------------------------------------------------------------------- the autoregressive prior
class MaskedConv2d(nn.Conv2d):
    """A convolution that sees only the positions before the centre in raster order: rows above, and
    the left part of the centre row; the centre itself too for type "B" (later layers), not for "A"
    (the first, whose input at the centre is the symbol being predicted)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, kind: str):
        super().__init__(c_in, c_out, kernel, padding=kernel // 2)
        mask = torch.zeros(kernel, kernel)
        mask[:kernel // 2] = 1  # rows above
        mask[kernel // 2, :kernel // 2 + (kind == "B")] = 1  # left of the centre (and the centre for B)
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class PixelCNN(nn.Module):
    """p(k) = prod_i p(k_i | k_<i, class) over a grid x grid of symbols, in raster order."""

    def __init__(self, num_codes: int, grid: int, hidden: int = 64, layers: int = 3, classes: int = 10):
        super().__init__()
        self.num_codes, self.grid = num_codes, grid
        self.arguments = {"num_codes": num_codes, "grid": grid, "hidden": hidden, "layers": layers, "classes": classes}
        self.embed = nn.Embedding(num_codes, hidden)
        self.first = MaskedConv2d(hidden, hidden, 2 * grid - 1, "A")  # sees every earlier symbol of the grid
        self.layers = nn.ModuleList(MaskedConv2d(hidden, hidden, 3, "B") for _ in range(layers))
        self.label = nn.Embedding(classes, hidden)  # a per-class bias added before every layer
        self.out = nn.Conv2d(hidden, num_codes, 1)

    def forward(self, codes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """codes (B, G, G), labels (B,) -> logits (B, K, G, G) of each symbol given those before it."""
        bias = self.label(labels)[:, :, None, None]  # (B, hidden, 1, 1)
        h = self.first(self.embed(codes).permute(0, 3, 1, 2))  # (B, hidden, G, G)
        for layer in self.layers:
            h = h + layer(F.relu(h + bias))  # a residual stack of masked convolutions
        return self.out(F.relu(h + bias))

    def loss(self, codes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """-log p(codes | label) per grid, in nats, averaged over the batch."""
        return F.cross_entropy(self(codes, labels), codes, reduction="none").flatten(1).sum(1).mean()

    @torch.no_grad()
    def sample(self, labels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One code grid (B, G, G) per label, drawn symbol by symbol in raster order."""
        codes = torch.zeros(len(labels), self.grid, self.grid, dtype=torch.long, device=labels.device)
        for i in range(self.grid):
            for j in range(self.grid):
                probs = self(codes, labels)[:, :, i, j].softmax(1)
                codes[:, i, j] = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(codes.device)
        return codes
