"""U-Net (Ronneberger, Fischer & Brox, 2015): a classifier's encoder, mirrored, with bridges across.

A convolutional classifier (LeNet, AlexNet) trades resolution for context: every pooling halves the
image and doubles the channels, until the network knows *what* is in the image but no longer
*where*. Segmentation needs both, one label per pixel. U-Net keeps the contracting path and adds an
expanding path that climbs back up, one level at a time:

    contracting level l:  x_l = conv3x3(relu(conv3x3(pool(x_{l-1}))))          (channels w_l)
    expanding level l:    y_l = conv3x3(relu(conv3x3( [ up(y_{l+1}) , crop(x_l) ] )))

`up` is a 2 x 2 transposed convolution ("up-convolution") that doubles the side and halves the
channels, and [ , ] concatenates along the channels. The concatenation is the *skip connection*:
the fine, local detail of x_l is handed straight across the U to the level that needs it, so the
deep path only has to say which detail belongs to which object. A 1 x 1 convolution turns the top
level's features into one score per class and pixel.

The paper's convolutions are unpadded ("valid"): each 3 x 3 convolution trims one pixel from every
side, so the output is smaller than the input (a 572 x 572 tile gives 388 x 388 labels, Figure 1),
and `crop` cuts the centre of x_l to the size of up(y_{l+1}). Tiles then overlap so that every
output pixel sees its full context, and the image border is filled by mirroring. With
`padding=True` every convolution keeps the size, no crop is needed and output = input size, which
is simpler for small images. `skip=False` removes the bridges (the ablation in our experiment).

The interface is general on purpose: any channels in and out, any depth (`widths`), so that later
papers (the diffusion denoiser) can reuse the blocks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DoubleConv(nn.Sequential):
    """Two 3 x 3 convolutions, each followed by a ReLU: the unit of work at every level of the U."""

    def __init__(self, in_channels: int, out_channels: int, padding: bool = True):
        pad = 1 if padding else 0  # 0: "valid", each convolution trims a pixel from every side
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=pad), nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=pad), nn.ReLU(inplace=True),
        )


def center_crop(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The central (height, width) window of x (B, C, H, W), as the paper crops the skip features."""
    top, left = (x.shape[-2] - height) // 2, (x.shape[-1] - width) // 2
    return x[..., top:top + height, left:left + width]


class Up(nn.Module):
    """One level of the expanding path: up-convolution, (crop and concatenate the skip), DoubleConv."""

    def __init__(self, in_channels: int, out_channels: int, padding: bool = True, skip: bool = True):
        super().__init__()
        self.skip = skip
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)  # side x2, channels /2
        self.conv = DoubleConv(2 * out_channels if skip else out_channels, out_channels, padding)

    def forward(self, below: torch.Tensor, across: torch.Tensor) -> torch.Tensor:
        """below: (B, C_in, h, w) from the deeper level; across: (B, C_out, H, W) from the contracting path."""
        x = self.up(below)  # (B, C_out, 2h, 2w)
        if self.skip:
            x = torch.cat([center_crop(across, *x.shape[-2:]), x], dim=1)  # (B, 2 C_out, 2h, 2w)
        return self.conv(x)


class UNet(nn.Module):
    """`widths[l]` channels at level l; len(widths) - 1 poolings. The paper: widths (64, ..., 1024).

    `dropout` is applied to the deepest features, the paper's "drop-out layers at the end of the
    contracting path". Input sides must halve cleanly at every level (with valid convolutions,
    e.g. 572, as the paper's tiling chooses).
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 2,
                 widths: tuple[int, ...] = (64, 128, 256, 512, 1024), padding: bool = True,
                 skip: bool = True, dropout: float = 0.0):
        super().__init__()
        self.down = nn.ModuleList(
            [DoubleConv(c_in, c_out, padding) for c_in, c_out in zip((in_channels, *widths[:-1]), widths)])
        self.dropout = nn.Dropout(dropout)
        self.up = nn.ModuleList(
            [Up(c_in, c_out, padding, skip) for c_in, c_out in zip(widths[:0:-1], widths[-2::-1])])
        self.head = nn.Conv2d(widths[0], out_channels, kernel_size=1)  # a score per class and pixel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, in_channels, H, W) -> class scores (B, out_channels, H', W'); H' = H when padded."""
        across = []
        for level, block in enumerate(self.down):
            if level:
                x = F.max_pool2d(x, 2)  # (B, C, H/2, W/2)
            x = block(x)
            across.append(x)
        x = self.dropout(across.pop())  # the bottom of the U
        for block in self.up:
            x = block(x, across.pop())  # climb one level, joining the features saved on the way down
        return self.head(x)


def he_initialize(model: nn.Module) -> nn.Module:
    """The paper's initialisation (Section 3): every convolution's weights drawn from N(0, 2 / N), N the
    number of inputs to one unit (3 x 3 x C_in), so that each ReLU layer passes on signals of about
    the same size; biases zero. PyTorch's default draws from a narrower uniform law."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            nn.init.zeros_(module.bias)
    return model
