"""LeNet-5 (LeCun, Bottou, Bengio & Haffner, 1998), the paper's Figure 2.

Nine years after the zip-code net ([cnn](../cnn/model.py)), the same ingredients (local receptive
fields, shared weights, a scaled tanh, backpropagation) are arranged in a cleaner pattern that
became the template of every later convnet: convolutions at stride 1 that *detect* features,
alternating with subsampling layers that *blur and shrink* the maps, so that the exact position of
a feature matters less at each stage.

    input   1@32x32   a 28x28 digit centred with a margin, so strokes reach the centre of C1's fields
    C1      6@28x28   5x5 convolution                                         6*25 + 6        =    156
    S2      6@14x14   2x2 sums, times a trainable coefficient, plus a bias    6*2             =     12
    C3     16@10x10   5x5 convolution on a *subset* of S2's maps (Table I)    60*25 + 16      =  1,516
    S4     16@5x5     2x2 sums, coefficient and bias                          16*2            =     32
    C5    120@1x1     5x5 convolution on all 16 maps (a convolution, though here it covers the
                      whole 5x5 input)                                        120*16*25 + 120 = 48,120
    F6       84       fully connected                                         120*84 + 84     = 10,164
    output   10       Euclidean RBF units with fixed +-1 codes (not trained)  (84*10 fixed)
                                                                     trainable in all:         60,000

Every layer but the output squashes with f(a) = 1.7159 tanh(2a/3). Output unit i measures how far
F6's 84 outputs are from class i's code c_i, y_i = sum_j (x_j - c_ij)^2, and the class is the
nearest code. The paper trains the penalty of the correct class D down while pushing the others
up, E = y_D + log(e^-j + sum_i e^-y_i); with j -> infinity (the constant j only keeps the penalties
from all collapsing) this is the cross-entropy of the scores -y_i, which is how we train it.

The convolutions are the 1989 module's `Conv2d` (shared weights, optional connection table), which
runs the built-in F.conv2d, and subsampling runs F.avg_pool2d; both are faster here than our
from-scratch conv2d and avg_pool2d, which tests/equivalence/test_cnn.py proves equal to them,
forward and backward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from milestones.foundations.cnn.model import Conv2d, lecun_linear, scaled_tanh

# The paper's Table I: which of S2's 6 maps (rows) each of C3's 16 maps (columns) reads.
# Maps 0-5 read 3 neighbouring maps, 6-11 read 4 neighbouring maps, 12-14 read 4 non-neighbouring
# maps, and 15 reads all 6. Leaving connections out breaks the symmetry between C3's maps (each
# sees different inputs, so they are pushed to learn different features) and saves parameters.
_TABLE_I = [
    "X   XXX  XXXX XX",
    "XX   XXX  XXXX X",
    "XXX   XXX  X XXX",
    " XXX  XXXX  X XX",
    "  XXX  XXXX XX X",
    "   XXX  XXXX XXX",
]
C3_CONNECTIONS = torch.tensor([[mark == "X" for mark in row] for row in _TABLE_I]).T  # (16 C3 maps, 6 S2 maps)


class Subsampling(nn.Module):
    """S2 and S4: each unit adds up a non-overlapping 2x2 window of one map, multiplies the sum by
    its map's trainable coefficient and adds its map's trainable bias (2 parameters per map):

        y[c, i, j] = coefficient[c] * sum_{u,v in {0,1}} x[c, 2i+u, 2j+v] + bias[c]

    The coefficient decides whether the unit acts nearly linearly (small) or like a soft OR / AND
    (large); the sum is 4 times the 2x2 average pool.
    """

    def __init__(self, channels: int):
        super().__init__()
        # A window sum has 4 inputs, so the fan-in rule of the paper gives +-2.4/4 = +-0.6.
        self.coefficient = nn.Parameter(torch.empty(channels).uniform_(-0.6, 0.6))
        self.bias = nn.Parameter(torch.empty(channels).uniform_(-0.6, 0.6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        window_sum = 4 * F.avg_pool2d(x, 2)  # (B, C, H/2, W/2); equal to cnn's avg_pool2d (test_cnn.py)
        return self.coefficient.reshape(1, -1, 1, 1) * window_sum + self.bias.reshape(1, -1, 1, 1)


def class_codes(classes: int = 10, length: int = 84, seed: int = 0) -> torch.Tensor:
    """A fixed +-1 code of `length` bits per class: (classes, length).

    The paper drew each code as a stylised 7x12 bitmap of the character, so that confusable
    characters (O, 0, o) got similar codes; for ten digits any well-separated codes will do, and
    random ones differ in about half their bits.
    """
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (classes, length), generator=generator).float() * 2 - 1


class EuclideanRBF(nn.Module):
    """Output unit i: y_i = ||x - c_i||^2, the squared distance from the input to class i's fixed code."""

    def __init__(self, codes: torch.Tensor):
        super().__init__()
        self.register_buffer("codes", codes)  # (classes, features); a buffer, so never trained

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.unsqueeze(1) - self.codes).square().sum(-1)  # (B, 1, F) - (classes, F) -> (B, classes)


class LeNet5(nn.Module):
    """LeNet-5 for 1@32x32 inputs. `partial_c3=False` connects C3 to all of S2's maps (for comparison).

    `penalties` returns the RBF outputs y_i; `forward` returns the scores -y_i / 84 (higher is
    better), so argmax and cross-entropy work as usual. The division by F6's 84 units (the penalty
    per code bit) is ours: raw penalties span hundreds, which saturates the softmax at once and
    makes plain SGD unstable (the paper's second-order step sizes did not have this problem);
    see notes.md.
    """

    def __init__(self, partial_c3: bool = True, classes: int = 10):
        super().__init__()
        self.c1 = Conv2d(1, 6, 5)
        self.s2 = Subsampling(6)
        self.c3 = Conv2d(6, 16, 5, connections=C3_CONNECTIONS if partial_c3 else None)
        self.s4 = Subsampling(16)
        self.c5 = Conv2d(16, 120, 5)
        self.f6 = lecun_linear(120, 84)
        self.output = EuclideanRBF(class_codes(classes, 84))

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's output, C1 to F6, for a batch (B, 1, 32, 32)."""
        c1 = scaled_tanh(self.c1(x))  # (B, 6, 28, 28)
        s2 = scaled_tanh(self.s2(c1))  # (B, 6, 14, 14)
        c3 = scaled_tanh(self.c3(s2))  # (B, 16, 10, 10)
        s4 = scaled_tanh(self.s4(c3))  # (B, 16, 5, 5)
        c5 = scaled_tanh(self.c5(s4)).flatten(1)  # (B, 120, 1, 1) -> (B, 120)
        f6 = scaled_tanh(self.f6(c5))  # (B, 84)
        return [c1, s2, c3, s4, c5, f6]

    def penalties(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.features(x)[-1])  # (B, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -self.penalties(x) / self.f6.out_features  # (B, classes)
