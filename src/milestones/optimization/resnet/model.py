"""Deep Residual Learning (He, Zhang, Ren & Sun, 2015).

Stacking more layers on a plain convolutional net eventually makes it *worse on its own training
set*: the "degradation problem". A deeper net could always copy a shallower one and set its extra
layers to the identity, so this is a failure of optimization, not of capacity. The fix is to make
the identity the default: each block learns a residual F and outputs

    y = relu(F(x) + shortcut(x)),        F(x) = BN(W2 * relu(BN(W1 * x)))     (a basic block)

so that driving F to zero recovers the identity, and the gradient reaches early layers through the
shortcuts undiminished. The shortcut is the identity when shapes agree; when a block halves the
resolution and doubles the channels it is either

    option A: subsample by 2 and pad the new channels with zeros (no parameters; the CIFAR nets), or
    option B: a strided 1x1 convolution with batch norm (a projection; the ImageNet nets).

Two families come from the same code:
- `CifarResNet`: 6n+2 layers (a 3x3 stem, three stages of n blocks with 16, 32, 64 channels, a
  linear classifier); `residual=False` removes every shortcut and gives the plain counterpart.
- `ImageNetResNet`: the paper's Table 1 (ResNet-18/34 with basic blocks, 50/101/152 with
  bottleneck blocks 1x1 -> 3x3 -> 1x1 that expand channels 4x), with projection shortcuts where
  shapes change. tests/equivalence/test_resnet.py checks their parameter counts (torchvision's figures)
  and multiply-adds (the paper's Table 1, with the stride where the paper's models put it).

Batch norm is PyTorch's `nn.BatchNorm2d`, proven equal to ours in tests/equivalence/test_batchnorm.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)  # BN's shift replaces the bias


class PadShortcut(nn.Module):
    """Option A: identity on the kept channels, zeros for the new ones; subsample by `stride`."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.extra, self.stride = c_out - c_in, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.stride, ::self.stride]  # (B, C_in, H/s, W/s)
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))  # (B, C_out, H/s, W/s)


def projection(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    """Option B: a learned 1x1 convolution matches the shape."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions; with `residual`, the input is added back before the last ReLU."""

    expansion = 1

    def __init__(self, c_in: int, channels: int, stride: int = 1, residual: bool = True, shortcut: str = "B"):
        super().__init__()
        c_out = channels * self.expansion
        self.residual_branch = nn.Sequential(
            conv3x3(c_in, channels, stride), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            conv3x3(channels, c_out), nn.BatchNorm2d(c_out))
        self.shortcut = make_shortcut(c_in, c_out, stride, shortcut) if residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.residual_branch(x)  # F(x)
        if self.shortcut is not None:
            out = out + self.shortcut(x)  # F(x) + x
        return F.relu(out)


class Bottleneck(BasicBlock):
    """1x1 (reduce) -> 3x3 -> 1x1 (expand 4x): deeper nets at the cost of a basic block."""

    expansion = 4

    def __init__(self, c_in: int, channels: int, stride: int = 1, residual: bool = True, shortcut: str = "B"):
        nn.Module.__init__(self)
        c_out = channels * self.expansion
        self.residual_branch = nn.Sequential(
            nn.Conv2d(c_in, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            conv3x3(channels, channels, stride), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            nn.Conv2d(channels, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.shortcut = make_shortcut(c_in, c_out, stride, shortcut) if residual else None


def make_shortcut(c_in: int, c_out: int, stride: int, option: str) -> nn.Module:
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    if option == "A":
        return PadShortcut(c_in, c_out, stride)
    if option == "B":
        return projection(c_in, c_out, stride)
    raise ValueError(f"shortcut option must be 'A' (zero padding) or 'B' (projection), got {option!r}")


def init_weights(model: nn.Module) -> None:
    """He initialization (the same group's 2015 paper), as the ResNet paper uses."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


class CifarResNet(nn.Module):
    """The paper's CIFAR-10 family (Section 4.2): 6n + 2 weighted layers; plain when not `residual`."""

    def __init__(self, n: int, residual: bool = True, n_classes: int = 10, in_channels: int = 3,
                 widths: tuple[int, int, int] = (16, 32, 64), shortcut: str = "A"):
        super().__init__()
        self.depth = 6 * n + 2
        self.stem = nn.Sequential(conv3x3(in_channels, widths[0]), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        blocks, c_in = [], widths[0]
        for stage, width in enumerate(widths):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1  # each new stage halves the resolution
                blocks.append(BasicBlock(c_in, width, stride, residual, shortcut))
                c_in = width
        self.blocks = nn.Sequential(*blocks)
        self.classifier = nn.Linear(c_in, n_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))  # (B, 64, H/4, W/4)
        return self.classifier(x.mean((2, 3)))  # global average pooling -> (B, n_classes)


IMAGENET_CONFIGS = {  # depth: (block, blocks per stage), the paper's Table 1
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


class ImageNetResNet(nn.Module):
    """The paper's ImageNet nets: a 7x7 stride-2 stem and max-pool, four stages of 64, 128, 256, 512
    channels (times 4 for bottlenecks), global average pooling and a 1000-way classifier."""

    def __init__(self, depth: int, n_classes: int = 1000, residual: bool = True):
        super().__init__()
        block, counts = IMAGENET_CONFIGS[depth]
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(64),
                                  nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1))
        layers, c_in = [], 64
        for stage, (width, count) in enumerate(zip((64, 128, 256, 512), counts)):
            for i in range(count):
                layers.append(block(c_in, width, 2 if stage > 0 and i == 0 else 1, residual, "B"))
                c_in = width * block.expansion
        self.blocks = nn.Sequential(*layers)
        self.classifier = nn.Linear(c_in, n_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))  # (B, C, H/32, W/32)
        return self.classifier(x.mean((2, 3)))
