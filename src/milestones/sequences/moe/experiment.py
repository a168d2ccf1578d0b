"""The mixture-of-experts claims in miniature, on a regression task made of many regimes.

The data: `regimes` clusters in a 16-dimensional input space, each with its own random linear map
from input to target (plus a shared nonlinearity), so a net must in effect learn many different
functions, one per region. Examples are drawn fresh every step, so what limits the loss is
capacity, not data, as in the paper's language models trained on billions of words.

1. Capacity at constant compute (the paper's Figure 2 and Table 1): mixture-of-experts layers with
   2, 8 and 32 experts, each example sent to k = 2 of them, so every example is computed by two
   experts of the same size whatever the number of experts. More experts, more parameters, and a
   lower test loss at the same cost per example.
2. Balancing (the paper's Table 6, Appendix A): the 32-expert layer trained again without the
   importance and load losses. We measure the coefficient of variation of the number of test
   examples each expert receives, with and without them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from milestones.core import Result, Run, check, experiment, plots
from milestones.core.training import evaluating, fused_kernel, train
from milestones.sequences.moe.model import MixtureOfExperts, active_parameters, expert_parameters

CLAIM = ("At equal computation per example (each sent to k = 2 experts), a sparsely-gated mixture-of-experts "
         "layer with more experts, and so more parameters, reaches a lower loss (the paper's Figure 2 and "
         "Table 1, here on a many-regime regression task); and without the importance and load balancing "
         "losses the gate sends most examples to a few experts (Appendix A, Table 6), measured by the "
         "coefficient of variation of the expert load.")


@dataclass
class Config:
    dim: int = 16
    regimes: int = 64  # clusters, each with its own linear map
    expert_hidden: int = 64
    k: int = 2
    expert_counts: tuple[int, ...] = (2, 8, 32)
    w_balance: float = 0.1  # w_importance = w_load, as in the paper's Table 6
    steps: int = 600  # the ladder is in place by step 500 (test MSE 0.25 / 0.16 / 0.10 at seed 0); 1,500 only widens it
    batch_size: int = 256
    lr: float = 3e-3  # Adam
    test_examples: int = 8192


SCALES = {
    "smoke": Config(regimes=8, expert_counts=(2, 4), steps=20, test_examples=512),
    "quick": Config(),
    "full": Config(dim=32, regimes=512, expert_hidden=128, expert_counts=(4, 16, 64, 256), steps=20000,
                   batch_size=1024, lr=1e-3, test_examples=65536),
}


class ManyRegimes:
    """x = center_c + noise; y = tanh(A_c x) for a regime c chosen uniformly: a fixed random teacher."""

    def __init__(self, dim: int, regimes: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.centers = 2.0 * torch.randn(regimes, dim, generator=g)  # (C, dim), well apart
        self.maps = torch.randn(regimes, dim, dim, generator=g) / dim ** 0.5  # (C, dim, dim)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        c = torch.randint(len(self.centers), (n,), generator=generator)
        x = self.centers[c] + torch.randn(n, self.centers.shape[1], generator=generator)  # (n, dim)
        y = torch.tanh(torch.einsum("nij,nj->ni", self.maps[c], x))  # (n, dim)
        return x, y


def train_layer(ctx: Run, name: str, layer: MixtureOfExperts, data: ManyRegimes, cfg: Config, test: tuple) -> list:
    def loss(net: MixtureOfExperts, x: torch.Tensor, y: torch.Tensor):
        mse = F.mse_loss(net(x), y)
        return mse + layer.balance_loss, {"mse": mse.detach()}

    # torch's Adam is proven equal to ours in tests/equivalence/test_adam.py; fused, it updates the
    # 130 small tensors of 32 experts in one kernel (a third off a CPU step) instead of one by one
    optimizer = torch.optim.Adam(layer.parameters(), lr=cfg.lr, fused=fused_kernel(ctx.device))
    log = train(ctx, name, layer, optimizer, cfg.steps, lambda i: data.sample(cfg.batch_size), loss,
                log_every=max(1, cfg.steps // 30), evaluate=lambda: {"test_mse": evaluate(layer, *test)[0]})
    return log.series("test_mse")


def evaluate(layer: MixtureOfExperts, x: torch.Tensor, y: torch.Tensor) -> tuple[float, torch.Tensor]:
    """Test MSE (no gate noise) and the number of test examples each expert received."""
    with evaluating(layer):
        mse = F.mse_loss(layer(x), y).item()
    return mse, layer.tokens_per_expert.clone()


def load_cv(tokens_per_expert: torch.Tensor) -> float:
    """Coefficient of variation (std / mean) of the examples per expert: 0 when perfectly even."""
    return (tokens_per_expert.std() / tokens_per_expert.mean()).item()


@experiment(CLAIM, Config, SCALES)
def run(cfg: Config, ctx: Run) -> Result:
    data = ManyRegimes(cfg.dim, cfg.regimes, seed=ctx.seed)
    test = data.sample(cfg.test_examples, generator=torch.Generator().manual_seed(ctx.seed + 10_000))
    baseline = F.mse_loss(test[1].mean(0).expand_as(test[1]), test[1]).item()  # predict the mean target

    runs = [(n, cfg.w_balance) for n in cfg.expert_counts] + [(max(cfg.expert_counts), 0.0)]
    curves, results = {}, {}
    for j, (experts, w) in enumerate(runs):
        ctx.reseed(j)
        layer = MixtureOfExperts(cfg.dim, cfg.expert_hidden, experts, cfg.k, w_importance=w, w_load=w)
        name = f"{experts} experts" + ("" if w else ", no balancing losses")
        curves[name] = train_layer(ctx, f"moe-{experts}" + ("" if w else "-unbalanced"), layer, data, cfg, test)
        mse, tokens = evaluate(layer, *test)
        results[name] = {"experts": experts, "test_mse": mse, "load_cv": load_cv(tokens),
                         "idle_experts": int((tokens == 0).sum()),
                         "tokens_per_expert": tokens.tolist(), "parameters": expert_parameters(layer),
                         "active_parameters": active_parameters(layer)}

    most = max(cfg.expert_counts)
    balanced, unbalanced = results[f"{most} experts"], results[f"{most} experts, no balancing losses"]
    plots.curves(ctx.artifact("test_loss.png"), curves, f"Many-regime regression, k = {cfg.k} experts per example",
                 ylabel="test MSE", logy=True, hlines={"predict the mean": baseline})
    plots.bars(ctx.artifact("load_balanced.png"), {str(i): v for i, v in enumerate(balanced["tokens_per_expert"])},
               f"{most} experts with balancing losses: test examples per expert (CV {balanced['load_cv']:.2f})",
               ylabel="examples")
    plots.bars(ctx.artifact("load_unbalanced.png"),
               {str(i): v for i, v in enumerate(unbalanced["tokens_per_expert"])},
               f"{most} experts without balancing losses: test examples per expert (CV {unbalanced['load_cv']:.2f})",
               ylabel="examples")

    counts = list(cfg.expert_counts)
    mse = [results[f"{n} experts"]["test_mse"] for n in counts]
    checks = [check(f"test MSE with {b} experts", mse[i + 1], "<", mse[i], f"test MSE with {a} experts")
              for i, (a, b) in enumerate(zip(counts, counts[1:]))]
    checks += [
        check(f"active parameters per example, {most} experts / {min(counts)} experts",
              balanced["active_parameters"] / results[f"{min(counts)} experts"]["active_parameters"], "<", 1.5,
              "roughly equal compute (1.5x)", control=True),
        check("load CV without balancing losses", unbalanced["load_cv"], ">", 2 * balanced["load_cv"],
              "twice the load CV with them"),
        check("load CV with balancing losses", balanced["load_cv"], "<", 0.5, "an even load (0.5)"),
    ]
    return Result(checks=checks, metrics={"baseline_mse": baseline} | {
        name.replace(" ", "_").replace(",", ""): values for name, values in results.items()})
