"""The sparsely-gated mixture-of-experts layer (Shazeer et al., 2017).

A dense layer spends the same computation on every input, so its capacity (parameters) and its
cost per example grow together. A mixture-of-experts layer breaks that link: it holds n experts
(here small feed-forward nets), and a trainable gate sends each example to only k of them,

    y = sum_i G(x)_i E_i(x),        with only k of the n gates G(x)_i nonzero,

so the experts not chosen are never run. Adding experts adds parameters while the cost per
example stays that of k experts (plus the gate). The paper put such a layer between stacked
LSTM layers of a language model ([lstm](../lstm/notes.md)), with up to 131,072 experts.

Noisy top-k gating (the paper's equations 3-5). The gate scores each expert linearly, adds
Gaussian noise whose scale is itself learned, keeps the k best and normalises those by a softmax:

    H(x)_i = (x W_g)_i + eps_i * softplus((x W_noise)_i),       eps_i ~ N(0, 1) (training only)
    G(x)   = softmax(KeepTopK(H(x), k)),   KeepTopK sets all but the k largest to -inf.

The noise lets experts near the boundary of the top k sometimes receive an example, which both
explores and (below) makes the load differentiable.

Balancing (the paper's Appendix A). Left alone, the gate tends to settle on a few experts: they
are chosen more, so they train faster, so they are chosen more. Two auxiliary losses push back,
both the squared coefficient of variation CV^2 = Var / Mean^2 of a per-expert total over a batch X:

    Importance_i = sum_x G(x)_i                          L_importance = w_importance * CV(Importance)^2
    Load_i       = sum_x P(x, i)                         L_load       = w_load * CV(Load)^2
    P(x, i)      = Phi(((x W_g)_i - kth_excluding(H(x), k, i)) / softplus((x W_noise)_i))

Importance balances the gate values, but an expert can have large importance from a few
examples with large gates; Load balances the number of examples each expert receives. The count
itself is a step function of the weights with zero gradient, so P(x, i) replaces it with its
expectation: the probability that expert i is in the top k when its own noise is redrawn and
everything else is held fixed, where kth_excluding is the k-th largest H among the other experts
(Phi is the standard normal CDF).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Expert(nn.Module):
    """One expert: a two-layer ReLU net, dim -> hidden -> dim."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.up, self.down = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, dim) -> (N, dim)
        return self.down(F.relu(self.up(x)))


def cv_squared(values: torch.Tensor) -> torch.Tensor:
    """Squared coefficient of variation Var / Mean^2 of a vector: 0 when all entries are equal."""
    return values.var() / (values.mean() ** 2 + 1e-10)


class MixtureOfExperts(nn.Module):
    """`experts` feed-forward experts, each example sent to `k` of them by a noisy top-k gate.

    `forward` returns the output and stores, for the last call, `self.balance_loss` (the paper's
    importance plus load losses) and `self.tokens_per_expert` (how many examples each expert ran).
    """

    def __init__(self, dim: int, hidden: int, experts: int, k: int, w_importance: float = 0.1,
                 w_load: float = 0.1, noisy: bool = True):
        super().__init__()
        if not 1 <= k <= experts:
            raise ValueError(f"k must be between 1 and the number of experts ({experts}), got {k}")
        self.k, self.noisy = k, noisy
        self.w_importance, self.w_load = w_importance, w_load
        self.experts = nn.ModuleList(Expert(dim, hidden) for _ in range(experts))
        # Both gate matrices start at zero, as in the paper: every expert equally likely at first.
        self.w_gate = nn.Parameter(torch.zeros(dim, experts))
        self.w_noise = nn.Parameter(torch.zeros(dim, experts))
        self.balance_loss = torch.tensor(0.0)
        self.tokens_per_expert = torch.zeros(experts)

    def gate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (N, dim) -> the sparse gates G (N, experts), the chosen experts (N, k), and the smooth
        load sum_x P(x, i) (experts,) when noise is on (else the plain counts, which carry no gradient)."""
        experts = len(self.experts)
        clean = x @ self.w_gate  # (N, experts)
        noisy = self.noisy and self.training
        if noisy:
            noise_std = F.softplus(x @ self.w_noise) + 1e-2  # the floor keeps the CDF below well defined
            scores = clean + torch.randn_like(clean) * noise_std  # H(x)
        else:
            scores = clean
        # The k+1 largest: the first k are kept, and the (k+1)-th is the threshold for the load.
        top_values, top_indices = scores.topk(min(self.k + 1, experts), dim=1)  # (N, k+1)
        chosen = top_indices[:, :self.k]  # (N, k)
        weights = F.softmax(top_values[:, :self.k], dim=1)  # softmax over the kept k only
        gates = torch.zeros_like(clean).scatter(1, chosen, weights)  # (N, experts), zero elsewhere
        if noisy and self.k < experts:
            # For an expert in the top k, the score it must beat to stay there is the (k+1)-th largest
            # overall; for one outside, it must beat the k-th. Its own noise is what is redrawn.
            kth_if_in, kth_if_out = top_values[:, self.k:self.k + 1], top_values[:, self.k - 1:self.k]  # (N, 1)
            is_in = torch.zeros_like(scores, dtype=torch.bool).scatter(1, chosen, True)  # (N, experts)
            threshold = torch.where(is_in, kth_if_in, kth_if_out)  # (N, experts)
            normal = torch.distributions.Normal(0.0, 1.0)
            load = normal.cdf((clean - threshold) / noise_std).sum(0)  # (experts,)
        else:
            load = torch.zeros(experts, device=x.device).index_add_(0, chosen.flatten(),
                                                                    torch.ones(chosen.numel(), device=x.device))
        return gates, chosen, load

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., dim) -> (..., dim); each example is computed only by the experts it was sent to."""
        shape = x.shape
        x = x.reshape(-1, shape[-1])  # (N, dim)
        gates, chosen, load = self.gate(x)
        # The N k (example, expert) pairs, sorted by expert: each expert's examples form one slice.
        pair_expert = chosen.flatten()  # (N k,)
        order = pair_expert.argsort(stable=True)
        rows = order // self.k  # (N k,) each sorted pair's example
        counts = torch.bincount(pair_expert, minlength=len(self.experts))  # (experts,) examples per expert
        slices = x[rows].split(counts.tolist())
        outputs = torch.cat([expert(examples) for expert, examples in zip(self.experts, slices)])  # (N k, dim)
        pair_gate = gates[rows, pair_expert[order]].unsqueeze(1)  # (N k, 1): G(x)_i of each pair
        out = torch.zeros_like(x).index_add_(0, rows, pair_gate * outputs)  # y = sum_i G(x)_i E_i(x)
        self.tokens_per_expert = counts.float()
        importance = gates.sum(0)  # (experts,)
        self.balance_loss = self.w_importance * cv_squared(importance) + self.w_load * cv_squared(load)
        return out.view(shape)


def expert_parameters(layer: MixtureOfExperts) -> int:
    """All the layer's weights: what grows with the number of experts."""
    return sum(p.numel() for p in layer.parameters())


def active_parameters(layer: MixtureOfExperts) -> int:
    """The weights one example passes through: the gate and k experts. What the compute scales with."""
    per_expert = sum(p.numel() for p in layer.experts[0].parameters())
    return layer.k * per_expert + layer.w_gate.numel() + (layer.w_noise.numel() if layer.noisy else 0)

