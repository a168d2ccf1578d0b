"""Dropout (Srivastava, Hinton, Krizhevsky, Sutskever & Salakhutdinov, 2014), written from scratch.

During training every unit of a layer is kept with probability q = 1 - p and otherwise set to zero,
with a fresh random mask for every example and every step:

    r_j ~ Bernoulli(q),        y~_j = r_j * y_j.

Each step therefore trains a different "thinned" network drawn from the 2^n networks that share
the same weights. A unit can no longer rely on particular other units being present, so it has
to be useful in many contexts: the paper's argument against co-adapted feature detectors.

At test time one would like the average prediction of all the thinned networks; the paper's
*weight-scaling rule* approximates it with a single pass through the full network whose outgoing
weights are multiplied by q, so that each unit's expected contribution, q * y_j * w, is the same
as during training. (For one linear layer followed by a softmax this gives exactly the normalised
geometric mean of the thinned networks' predictions; with hidden nonlinearities it is an
approximation, which our experiment measures against a Monte Carlo average over sampled masks.)

We use *inverted* dropout, as PyTorch does: divide the kept units by q during training,

    y~_j = r_j * y_j / q,

so that E[y~_j] = y_j and the network needs no change at test time. Multiplying by 1/q while
training and using the full weights at test time is the same network as the paper's: weights
trained to work with the 1/q boost, scaled back by q for testing.

Proven against `F.dropout` in tests/equivalence/test_dropout.py: the same mask gives the same
output and gradient, and the statistics (kept fraction, preserved mean) agree.
"""

from __future__ import annotations

import torch
from torch import nn


def dropout(x: torch.Tensor, p: float, training: bool = True, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Zero each entry of `x` with probability p and divide the survivors by q = 1 - p.

    `mask` (same shape as x, ones where a unit is kept) replays a given mask; by default one is drawn
    from the global RNG, in the same way `F.dropout` draws it. Outside training, x is returned as is.
    """
    if not 0 <= p < 1:
        raise ValueError(f"the drop probability must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    keep = 1.0 - p
    if mask is None:
        mask = torch.empty_like(x).bernoulli_(keep)  # r_j ~ Bernoulli(q)
    return x * (mask / keep)


class Dropout(nn.Module):
    """`dropout` as a layer: active in train mode, the identity in eval mode."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class DropoutMLP(nn.Module):
    """input -> Dropout(p_input) -> [Linear -> ReLU -> Dropout(p_hidden)] x depth -> Linear.

    The paper's recipe for fully connected nets: a light drop rate on the inputs (0.2) and a heavy
    one on the hidden units (0.5). With both rates 0 it is a plain MLP, the baseline.
    """

    def __init__(self, inputs: int, width: int, depth: int, classes: int, p_input: float, p_hidden: float):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten(), Dropout(p_input)]
        for n_in in [inputs] + [width] * (depth - 1):
            # nn.ReLU: proven equal to our from-scratch rectifier in tests/equivalence/test_relu.py
            layers += [nn.Linear(n_in, width), nn.ReLU(), Dropout(p_hidden)]
        layers.append(nn.Linear(width, classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)  # (B, classes)


@torch.no_grad()
def thinned_predictions(model: nn.Module, x: torch.Tensor, samples: int) -> torch.Tensor:
    """Class probabilities of `samples` thinned networks, each with its own random masks, as
    (samples, B, classes). Their mean over the first axis is the Monte Carlo model average that the
    weight-scaling rule approximates."""
    was_training = model.training
    model.train()  # dropout on: each pass samples a new thinned network
    probabilities = torch.stack([model(x).softmax(-1) for _ in range(samples)])
    model.train(was_training)
    return probabilities
