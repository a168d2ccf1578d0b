"""Two of Improved DDPM's findings in miniature, on sklearn's 8 x 8 digits: at low resolution the cosine
schedule samples better than the linear one at equal training (Section 3.2), and with learned variances
a strided sampler of few steps loses little against the full chain, while fixed variances lose more
(Section 4, Figure 8).

Data: the digits' training split scaled to [-1, 1], as in ../ddpm. Model: model.py's `ImprovedDDPM`, the
U-Net of ../ddpm (widths 16 and 32, attention at 4 x 4), T = 100 training steps. Three models, each from
the same initial weights (the learned-variance models have one more output channel), the same
minibatches and the same Adam steps at the same learning rate (the best of ../ddpm's sweep, not swept
again here):

- `cosine_learned`: cosine schedule, learned variances, the hybrid loss (the paper's recipe);
- `linear_learned`: DDPM's linear schedule (1e-4 .. 0.02 at T = 1000, scaled by 1000 / T), otherwise the
  same;
- `cosine_fixed`: cosine schedule, sigma_t^2 = beta_t fixed (DDPM's choice), trained on L_simple alone.

Every sampler clips the implied x_0 to [-1, 1]. Scores: FD-digits of `eval_samples` samples against the
held-out digits, with its floor and noise ceiling (milestones.core.generative). Checks:

1. `cosine_beats_linear`: FD-digits of cosine_learned below that of linear_learned, both with the full
   chain of T steps;
2. `learned_strided`: cosine_learned sampled with `strided` evenly spaced steps (the betas recomputed
   from the kept abar's) scores an FD-digits at most MAX_STRIDED_RATIO times its full chain's;
3. `fixed_strided_loses_more`: the same strided sampling costs cosine_fixed more FD-digits (strided
   minus full) than it costs cosine_learned.

`learned_strided` is at the edge at this scale: it holds on seeds 0 and 2 by 0.04 and 0.02 and fails on
seed 1 (notes.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from milestones.core import Result, Run, UserError, check, experiment, generative
from milestones.core.data import load_digits
from milestones.core.training import train
from milestones.generative.ddpm.experiment import draw_samples, to_pixels
from milestones.generative.improved_ddpm.model import ImprovedDDPM, ImprovedDDPMConfig

MAX_STRIDED_RATIO = 1.25  # FD-digits with `strided` steps / with all T steps, learned variances

CLAIM = (f"Section 3.2: at equal training on 8 x 8 digits the cosine schedule gives a lower FD-digits than the "
         f"linear one; Section 4 and Figure 8: with learned variances, sampling with a few strided steps gives "
         f"an FD-digits at most MAX_STRIDED_RATIO = {MAX_STRIDED_RATIO} times the full chain's, and it costs "
         f"fixed variances more than learned ones.")

MODELS = {"cosine_learned": ("cosine", True), "linear_learned": ("linear", True), "cosine_fixed": ("cosine", False)}


@dataclass
class Config:
    steps: int = 100  # T
    strided: int = 10  # the strided sampler's steps
    widths: str = "16,32"
    heads: int = 4
    train_steps: int = 400
    batch_size: int = 32
    lr: float = 1e-2  # Adam, cosine-decayed to zero; ../ddpm's best, used for every model
    eval_samples: int = 224


SCALES = {
    "smoke": Config(steps=10, strided=3, widths="8,16", heads=2, train_steps=10, batch_size=16),
    "quick": Config(),
    "full": Config(steps=1000, strided=50, widths="64,128,128", train_steps=20000, batch_size=128, lr=2e-4,
                   eval_samples=1024),
}


def model_config(cfg: Config, schedule: str, learned: bool) -> ImprovedDDPMConfig:
    widths = tuple(int(w) for w in cfg.widths.split(","))
    scale = 1000 / cfg.steps
    return ImprovedDDPMConfig(widths=widths, heads=cfg.heads, steps=cfg.steps, beta_first=1e-4 * scale,
                              beta_last=min(0.02 * scale, 0.999), variance="beta", schedule=schedule,
                              learn_variance=learned)


@experiment(CLAIM, Config, SCALES)
def run(cfg: Config, ctx: Run) -> Result:
    if min(cfg.heads, cfg.train_steps, cfg.batch_size) < 1 or not 2 <= cfg.strided < cfg.steps:
        raise UserError("heads, train_steps and batch_size must be positive, 2 <= strided < steps")
    try:
        model_config(cfg, "cosine", True)
    except ValueError:
        raise UserError(f"widths must be channels separated by commas (e.g. 16,32), got {cfg.widths!r}") from None
    if cfg.eval_samples < len(generative.held_out_halves()[1]):
        raise UserError(f"eval_samples must be at least {len(generative.held_out_halves()[1])} (FD-digits' size)")
    x = load_digits().x_train * 2 - 1

    ctx.reseed(1)
    initial = ImprovedDDPM(model_config(cfg, "cosine", True)).state_dict()
    scores, samples = {}, {}
    for name, (schedule, learned) in MODELS.items():
        model = ImprovedDDPM(model_config(cfg, schedule, learned))
        state = model.state_dict()  # its own schedule buffers, the shared initial weights
        schedule_buffers = ("beta", "alpha_bar", "posterior_var")
        state.update({k: v[:len(state[k])] for k, v in initial.items() if k not in schedule_buffers})  # head: eps row
        model.load_state_dict(state)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, foreach=True)  # as ../ddpm: same bits, faster
        schedule_lr = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cfg.train_steps)
        ctx.reseed(2)

        def batch(i: int):
            return (x[torch.randint(len(x), (cfg.batch_size,))],)

        def loss(net, x0, model=model):
            return model.hybrid_loss(x0)

        train(ctx, f"improved-ddpm-{name}", model, optimizer, cfg.train_steps, batch, loss, schedule=schedule_lr,
              data_parallel=False, log_every=max(1, cfg.train_steps // 10))
        if name == "cosine_learned":  # the paper's model: what `milestones generate` samples from
            ctx.save_trained(model.cfg, f"improved-ddpm-{name}")
        full = to_pixels(draw_samples(model, cfg.eval_samples, ctx.seed, clip=True))
        scores[name] = {"full": generative.fd_digits(full).as_dict()}
        samples[name] = full
        if name != "linear_learned":
            strided = to_pixels(draw_samples(model.respaced(cfg.strided), cfg.eval_samples, ctx.seed, clip=True))
            scores[name]["strided"] = generative.fd_digits(strided).as_dict()
            samples[f"{name}_strided"] = strided

    for name, images in samples.items():
        model_name, chain = name.removesuffix("_strided"), "strided" if name.endswith("_strided") else "full"
        shown = images[:40]
        generative.sample_grid(ctx.artifact(f"samples_{name}.png"), shown,
                               [f"judge: {int(c)}" for c in generative.judge_predictions(shown)],
                               title=f"{model_name.replace('_', ' ')}, {chain} chain: FD-digits "
                                     f"{scores[model_name][chain]['value']:.1f}")

    fd = {name: {k: v["value"] for k, v in s.items()} for name, s in scores.items()}
    learned_cost = fd["cosine_learned"]["strided"] - fd["cosine_learned"]["full"]
    fixed_cost = fd["cosine_fixed"]["strided"] - fd["cosine_fixed"]["full"]
    floor, ceiling = scores["cosine_learned"]["full"]["floor"], scores["cosine_learned"]["full"]["ceiling"]
    checks = [
        check(f"FD-digits of the cosine schedule, full chain (floor {floor:.1f}, noise {ceiling:.1f})",
              fd["cosine_learned"]["full"], "<", fd["linear_learned"]["full"], "FD-digits of the linear schedule",
              name="cosine_beats_linear"),
        check(f"learned variances: FD-digits with {cfg.strided} strided steps / with {cfg.steps} "
              f"({fd['cosine_learned']['strided']:.1f} / {fd['cosine_learned']['full']:.1f})",
              fd["cosine_learned"]["strided"] / fd["cosine_learned"]["full"], "<=", MAX_STRIDED_RATIO,
              "MAX_STRIDED_RATIO", name="learned_strided"),
        check(f"FD-digits lost to {cfg.strided} strided steps with fixed variances ({fd['cosine_fixed']['strided']:.1f}"
              f" vs {fd['cosine_fixed']['full']:.1f})", fixed_cost, ">", learned_cost,
              "the loss with learned variances", name="fixed_strided_loses_more"),
    ]
    return Result(checks=checks, metrics={"fd_digits": scores})
