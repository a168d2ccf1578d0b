"""RoBERTa's two ablations in miniature, on the toy verb-final language of BERT's experiments.

1. Dynamic masking (the paper's Table 1). A small model trained by masked language modelling for many
   epochs over a small story (a few hundred sentences), once with a fresh mask each time a window is
   drawn and once with BERT's static masks: every window masked `copies` times before training (BERT
   used 10). Both are scored by their MLM loss on a fresh story, with masks fixed once for both, and
   on the training text under a mask neither saw (how far each has memorised its own masks).
2. No next-sentence prediction (Table 2). An encoder pre-trained by MLM alone on full windows of running
   text (RoBERTa's FULL-SENTENCES input, one segment) against BERT's recipe (MLM + NSP on two segments,
   ../bert/pretraining.py, the very cache entry BERT's experiment uses), same text, steps, batch and
   optimizer; both fine-tuned on BERT's word-sense tagging (../bert/tagging.py) with the same labelled
   windows, head initialisation and batches, and scored on the same test windows.

Pre-trained models come from the shared cache (pretraining.py, milestones.core.cache).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from milestones.core import Result, Run, UserError, check, experiment, plots
from milestones.transformers.bert import language as toy
from milestones.transformers.bert.model import IGNORE
from milestones.transformers.bert.pretraining import pretrained_encoder
from milestones.transformers.bert.tagging import fine_tune
from milestones.transformers.roberta.pretraining import fixed_masks, full_windows, mlm_loss, pretrained

MASKING_TOLERANCE = 0.02  # held-out MLM loss (nats): dynamic may exceed static (10 copies) by at most this
NSP_TOLERANCE = 0.02  # test accuracy: MLM-only may fall short of MLM + NSP by at most this

CLAIM = (f"Dynamic masking: over many epochs of a small text, masking each window afresh whenever it is drawn "
         f"reaches a held-out MLM loss at least as low as BERT's static masking (each window masked 10 times "
         f"once and for all), within MASKING_TOLERANCE = {MASKING_TOLERANCE} nats (Table 1); and dropping "
         f"next-sentence prediction does not hurt: pre-trained by MLM alone on full windows of text, the encoder "
         f"fine-tunes to a word-sense tagging accuracy no lower than BERT's MLM + NSP encoder's minus "
         f"NSP_TOLERANCE = {NSP_TOLERANCE} (Table 2).")


@dataclass
class Config:
    # the language and the network: BERT's toy experiment's (../bert/experiment.py)
    nouns: int = 24
    verbs_per_frame: int = 1
    length: int = 32  # tokens per window, [CLS] included
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    intermediate: int = 256
    dropout: float = 0.1
    # 1. masking: many epochs over a small story (the paper: 40 epochs, static data duplicated 10 times)
    masking_sentences: int = 200  # about 200 windows; 600 steps x 16 windows is about 50 epochs
    masking_steps: int = 600
    masking_batch: int = 16
    copies: int = 10  # static masking: fixed masks per window
    heldout_windows: int = 500
    # 2. NSP: BERT's pre-training budget (the paper: 1M steps of 256 x 512 tokens; RoBERTa 500K x 8K)
    sentences: int = 60000
    pretrain_steps: int = 800
    pretrain_batch: int = 32
    pretrain_lr: float = 3e-3
    # fine-tuning: BERT's
    labelled: int = 128
    test_windows: int = 500
    finetune_steps: int = 200
    finetune_batch: int = 16
    finetune_lr: float = 1e-3


SCALES = {
    "smoke": Config(hidden=16, heads=2, intermediate=32, masking_sentences=40, masking_steps=3, masking_batch=4,
                    copies=2, heldout_windows=8, sentences=2000, pretrain_steps=3, pretrain_batch=4, labelled=8,
                    test_windows=8, finetune_steps=3, finetune_batch=4),
    "quick": Config(),
    "full": Config(nouns=96, verbs_per_frame=4, length=64, hidden=256, layers=4, intermediate=1024,
                   masking_sentences=2000, masking_steps=4000, masking_batch=128, heldout_windows=4000,
                   sentences=1_000_000, pretrain_steps=20000, pretrain_batch=128, pretrain_lr=5e-4, labelled=512,
                   test_windows=4000, finetune_steps=1000, finetune_lr=1e-4),
}


def validate(cfg: Config) -> None:
    if cfg.hidden % cfg.heads:
        raise UserError("heads must divide hidden")
    if cfg.length < 16:
        raise UserError("length must be at least 16 tokens: two segments of a few words each (BERT's arm)")
    if cfg.copies < 1 or cfg.masking_sentences < cfg.length:
        raise UserError("copies must be at least 1, and masking_sentences at least the window length")


def model_recipe(cfg: Config) -> dict:
    return {k: getattr(cfg, k) for k in ("nouns", "verbs_per_frame", "length", "hidden", "layers", "heads",
                                         "intermediate", "dropout")}


def masking_recipe(cfg: Config, masking: str, copies: int, seed: int) -> dict:
    return {"masking": masking, "copies": copies if masking == "static" else 0, "seed": seed,
            "story_seed": 3 * seed, **model_recipe(cfg), "sentences": cfg.masking_sentences,
            "steps": cfg.masking_steps, "batch": cfg.masking_batch, "lr": cfg.pretrain_lr}


def no_nsp_recipe(cfg: Config, seed: int) -> dict:
    """MLM alone, dynamic masking, on BERT's unlabelled story (its seed 3s), steps, batch and learning rate."""
    return {"masking": "dynamic", "copies": 0, "seed": seed, "story_seed": 3 * seed, **model_recipe(cfg),
            "sentences": cfg.sentences, "steps": cfg.pretrain_steps, "batch": cfg.pretrain_batch,
            "lr": cfg.pretrain_lr}


def bert_recipe(cfg: Config, seed: int) -> dict:
    """BERT's MLM + NSP recipe, key for key as ../bert/experiment.py builds it, so both share one cache entry."""
    model = {k: getattr(cfg, k) for k in ("nouns", "verbs_per_frame", "length", "hidden", "layers", "heads",
                                          "intermediate", "dropout", "sentences")}
    return {"objective": "mlm", "seed": seed, **model, "steps": cfg.pretrain_steps,
            "batch": cfg.pretrain_batch, "lr": cfg.pretrain_lr}


@experiment(CLAIM, Config, SCALES)
def run(cfg: Config, ctx: Run) -> Result:
    validate(cfg)
    device = ctx.device.type
    language = toy.toy_language(cfg.nouns, cfg.verbs_per_frame)

    # 1. dynamic against static masking: MLM loss on a fresh story, the same fixed masks for every arm
    test_story = toy.story(language, 8 * max(cfg.heldout_windows, cfg.test_windows) + 100, seed=3 * ctx.seed + 2)
    heldout = full_windows(test_story, cfg.length)[:cfg.heldout_windows]
    heldout_masked = [m[0] for m in fixed_masks(heldout, 1, len(language), seed=ctx.seed + 7)]
    train_story = toy.story(language, cfg.masking_sentences, seed=3 * ctx.seed)
    seen = full_windows(train_story, cfg.length)
    seen_masked = [m[0] for m in fixed_masks(seen, 1, len(language), seed=ctx.seed + 8)]  # a mask none of them saw
    arms = {"dynamic": ("dynamic", 0), f"static x{cfg.copies}": ("static", cfg.copies)}
    masking = {}
    for arm, (kind, copies) in arms.items():
        model = pretrained(masking_recipe(cfg, kind, copies, ctx.seed), device, ctx.quiet)
        masking[arm] = {"heldout_loss": mlm_loss(model, *heldout_masked),
                        "train_text_loss": mlm_loss(model, *seen_masked)}
    dynamic, static = (masking[arm]["heldout_loss"] for arm in arms)
    epochs = cfg.masking_steps * cfg.masking_batch / len(seen)

    # 2. MLM alone against MLM + NSP, fine-tuned on BERT's word-sense tagging
    labelled_story = toy.story(language, 8 * cfg.labelled + 100, seed=3 * ctx.seed + 1)
    train_set = toy.labelled_windows(labelled_story, cfg.labelled, cfg.length, seed=ctx.seed)
    test_set = toy.labelled_windows(test_story, cfg.test_windows, cfg.length, seed=ctx.seed + 1)
    encoders = {"MLM + NSP (BERT)": pretrained_encoder(bert_recipe(cfg, ctx.seed), device, ctx.quiet),
                "MLM alone (RoBERTa)": pretrained(no_nsp_recipe(cfg, ctx.seed), device, ctx.quiet).roberta}
    tagging = {}
    for arm, encoder in encoders.items():
        ctx.reseed(10)  # the same head initialisation and batches for both arms
        tagging[arm] = fine_tune(ctx, arm, copy.deepcopy(encoder), False, train_set, test_set, dropout=cfg.dropout,
                                 steps=cfg.finetune_steps, batch_size=cfg.finetune_batch, lr=cfg.finetune_lr)
    nsp, no_nsp = (tagging[arm]["accuracy"] for arm in encoders)

    plots.bars(ctx.artifact("masking.png"), {arm: masking[arm]["heldout_loss"] for arm in arms},
               f"Held-out MLM loss after {epochs:.0f} epochs of {len(seen)} windows", ylabel="MLM loss (nats)")
    plots.bars(ctx.artifact("nsp.png"), {f"{arm}\n{role}s": tagging[arm][f"{role}_accuracy"]
                                         for arm in encoders for role in ("subject", "object")},
               f"Sense accuracy on test nouns, {cfg.labelled} labelled windows", ylabel="test accuracy",
               reference=("chance", 1 / len(toy.CLASSES)))

    checks = [
        check(f"static (x{cfg.copies}) minus dynamic held-out MLM loss after {epochs:.0f} epochs ({static:.3f} vs "
              f"{dynamic:.3f} nats)", static - dynamic, ">=", -MASKING_TOLERANCE, "-MASKING_TOLERANCE",
              name="dynamic_masking"),
        check(f"MLM-only minus MLM + NSP tagging accuracy, {cfg.labelled} labelled windows ({no_nsp:.3f} vs "
              f"{nsp:.3f})", no_nsp - nsp, ">=", -NSP_TOLERANCE, "-NSP_TOLERANCE", name="no_nsp"),
    ]
    metrics = {"masking": masking, "epochs": epochs, "masking_windows": len(seen), "tagging": tagging,
               "heldout_masked_tokens": int((heldout_masked[1] != IGNORE).sum()),
               "pretraining_tokens": cfg.pretrain_steps * cfg.pretrain_batch * cfg.length,
               "vocabulary": len(language)}
    return Result(checks=checks, metrics=metrics)
