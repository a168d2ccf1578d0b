"""AlexNet (Krizhevsky, Sutskever & Hinton, 2012): LeNet's recipe, made large, deep and fast.

The network is five convolutional layers and three fully connected ones. Three details of the
paper live here, each a few lines:

1. **Rectified linear units**, f(x) = max(0, x), instead of the saturating tanh or sigmoid: their
   gradient is 1 wherever the unit is active, so deep stacks train several times faster (the
   paper's Figure 1; our experiment measures the factor).

2. **Local response normalization** (`LocalResponseNorm`, written out below): each activity is
   divided by the energy of its neighbours *across channels* at the same pixel,

       b^i_{x,y} = a^i_{x,y} / ( k + alpha * sum_{j = i - n/2}^{i + n/2} (a^j_{x,y})^2 )^beta,

   with k = 2, n = 5, alpha = 1e-4, beta = 0.75. Kernels that respond strongly suppress their
   neighbours, a form of lateral inhibition. (It fell out of use after batch normalization.)

3. **Overlapping max pooling**: windows of 3 x 3 taken every 2 pixels, so neighbouring windows
   share a row or column. The paper found it slightly harder to overfit than 2 x 2 every 2.

The paper split the net over two GTX 580 GPUs with 3 GB each: conv2, conv4 and conv5 see only the
half of the previous layer that lives on their own GPU. A grouped convolution (`groups=2`) is the
same connectivity on one device; with it the full model has 60,965,224 parameters (the paper's
"60 million"). `AlexNetConfig.paper()` is the full 224 x 224 x 3 -> 1000 network; `small()` is the
same code at a size a laptop CPU trains in seconds.

`FourLayerNet` at the end is the other network of the paper: the small, plain one of Figure 1, on
which ReLU is timed against tanh.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


class LocalResponseNorm(nn.Module):
    """Normalize each channel by the summed squares of its `size` neighbouring channels.

    The paper's alpha multiplies the plain sum; `nn.LocalResponseNorm` multiplies the *mean*
    (alpha / size times the sum), so ours with `alpha` equals PyTorch's with `alpha * size`
    (proved in tests/equivalence/test_alexnet.py). For an even `size` the window reaches one
    channel further back than forward, as PyTorch's does.
    """

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        """a: (B, C, *spatial) -> the same shape."""
        squares = a * a
        # Zero channels before and after, so that every channel has a full window of `size`.
        before, after = self.size // 2, (self.size - 1) // 2
        padded = F.pad(squares, (0, 0) * (a.dim() - 2) + (before, after))  # (B, C + size - 1, *spatial)
        energy = padded.unfold(1, self.size, 1).sum(-1)  # (B, C, *spatial): sum over each window
        return a / (self.k + self.alpha * energy) ** self.beta


@dataclass(frozen=True)
class AlexNetConfig:
    in_channels: int = 3
    image_size: int = 224
    num_classes: int = 1000
    channels: tuple[int, ...] = (96, 256, 384, 384, 256)  # the five convolutional layers
    conv1_kernel: int = 11
    conv1_stride: int = 4
    conv1_padding: int = 2  # 224 -> 55, the size the paper's figure shows
    conv2_kernel: int = 5
    hidden: int = 4096  # width of the two hidden fully connected layers
    groups: int = 2  # the two-GPU split of conv2, conv4 and conv5 (1: every kernel sees every channel)
    activation: str = "relu"  # "relu" as in the paper, or "tanh" for Figure 1's comparison
    dropout: float = 0.5  # on the inputs of fc6 and fc7 ("the first two fully-connected layers")
    lrn: bool = True
    init: str = "paper"  # "paper": N(0, 0.01^2) and the paper's biases; "he": N(0, 2 / fan_in), zero biases

    @staticmethod
    def paper() -> AlexNetConfig:
        return AlexNetConfig()

    @staticmethod
    def small(in_channels: int = 1, image_size: int = 32, num_classes: int = 10, **changes) -> AlexNetConfig:
        """The same eight layers, narrow, for 32 x 32 digits: conv1 is 5 x 5 with stride 1 because
        there is no resolution to throw away."""
        base = dict(in_channels=in_channels, image_size=image_size, num_classes=num_classes,
                    channels=(16, 32, 48, 48, 32), conv1_kernel=5, conv1_stride=1, conv1_padding=2,
                    hidden=128, groups=1, init="he")
        return AlexNetConfig(**(base | changes))


ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


class AlexNet(nn.Module):
    """conv1 - LRN - pool - conv2 - LRN - pool - conv3 - conv4 - conv5 - pool - fc6 - fc7 - fc8."""

    def __init__(self, cfg: AlexNetConfig = AlexNetConfig()):
        super().__init__()
        self.cfg = cfg
        c1, c2, c3, c4, c5 = cfg.channels
        act = ACTIVATIONS[cfg.activation]
        norm = (lambda: LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)) if cfg.lrn else nn.Identity
        pool = lambda: nn.MaxPool2d(kernel_size=3, stride=2)  # noqa: E731  (overlapping: 3 wide, every 2)
        self.features = nn.Sequential(
            nn.Conv2d(cfg.in_channels, c1, cfg.conv1_kernel, cfg.conv1_stride, cfg.conv1_padding),  # (B, 96, 55, 55)
            act(), norm(), pool(),                                                                  # (B, 96, 27, 27)
            nn.Conv2d(c1, c2, cfg.conv2_kernel, padding=cfg.conv2_kernel // 2, groups=cfg.groups),  # (B, 256, 27, 27)
            act(), norm(), pool(),                                                                  # (B, 256, 13, 13)
            nn.Conv2d(c2, c3, 3, padding=1),  # conv3 crosses the GPU split: it sees all of conv2     # (B, 384, 13, 13)
            act(),
            nn.Conv2d(c3, c4, 3, padding=1, groups=cfg.groups),                                     # (B, 384, 13, 13)
            act(),
            nn.Conv2d(c4, c5, 3, padding=1, groups=cfg.groups),                                     # (B, 256, 13, 13)
            act(), pool(),                                                                          # (B, 256, 6, 6)
        )
        side = self.feature_side(cfg)
        self.classifier = nn.Sequential(  # dropout before fc6 and fc7, as in the paper's released net
            nn.Flatten(),                                                                           # (B, 9216)
            nn.Dropout(cfg.dropout), nn.Linear(c5 * side * side, cfg.hidden), act(),                # fc6 (B, 4096)
            nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, cfg.hidden), act(),                      # fc7 (B, 4096)
            nn.Linear(cfg.hidden, cfg.num_classes),                                                 # fc8 (B, 1000)
        )
        self._init_weights()

    @staticmethod
    def feature_side(cfg: AlexNetConfig) -> int:
        """The side of conv5's pooled output: conv1 may shrink the image, every pool roughly halves it."""
        side = (cfg.image_size + 2 * cfg.conv1_padding - cfg.conv1_kernel) // cfg.conv1_stride + 1
        for _ in range(3):  # three overlapping pools: floor((side - 3) / 2) + 1
            side = (side - 3) // 2 + 1
        return side

    def _init_weights(self) -> None:
        """The paper: weights from N(0, 0.01^2); biases 1 in conv2, conv4, conv5 and the hidden fully
        connected layers (so their ReLUs start active and receive gradient), 0 elsewhere. A fixed 0.01
        suits the paper's widths; a narrow net's signal would fade through eight such layers, so the
        small configurations use He et al.'s (2015) variance 2 / fan_in, which keeps it steady."""
        layers = [m for m in self.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        for index, layer in enumerate(layers):
            if self.cfg.init == "paper":
                nn.init.normal_(layer.weight, std=0.01)
                nn.init.constant_(layer.bias, 1.0 if index in (1, 3, 4, 5, 6) else 0.0)
            else:
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, in_channels, image_size, image_size) -> logits (B, num_classes)."""
        return self.classifier(self.features(x))


class FourLayerNet(nn.Module):
    """Figure 1's network: a plain four-layer convolutional net, with no regularization of any kind.

    The caption says only "a four-layer convolutional neural network" trained on CIFAR-10; we read it
    as three convolutions (5 x 5, each followed by the nonlinearity and a 3 x 3 max pool of stride 2)
    and one fully connected layer to the classes. No LRN, no dropout, no weight decay. The
    nonlinearity has no parameters, so with the same seed the ReLU and the tanh nets start from the
    same weights (PyTorch's default initialization, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), which is
    tuned to neither nonlinearity).
    """

    def __init__(self, activation: str = "relu", in_channels: int = 3, image_size: int = 16, num_classes: int = 18,
                 channels: tuple[int, int, int] = (8, 8, 16)):
        super().__init__()
        act = ACTIVATIONS[activation]
        layers, previous, side = [], in_channels, image_size
        for width in channels:
            layers += [nn.Conv2d(previous, width, 5, padding=2), act(), nn.MaxPool2d(3, stride=2, padding=1)]
            previous, side = width, (side - 1) // 2 + 1  # padded pool: 16 -> 8 -> 4 -> 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(previous * side * side, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, in_channels, image_size, image_size) -> logits (B, num_classes)."""
        return self.classifier(self.features(x))
