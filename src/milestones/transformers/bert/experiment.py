"""BERT's two claims in miniature, on a toy verb-final language whose nouns have two meanings.

The language (language.py): four classes of thing, nouns that each have two of them as senses, verbs
that fix the class of their subject and their object, sentences "subject object verb ." linked into a
story (each subject is the previous object). The labelled task is word-sense tagging: for each noun
of a window of text, which of the four classes it means in its sentence. Its answer lies in the verb,
which stands to the right of the noun (and, for a subject, also in the verb of the sentence before).

1. Pre-training transfers (the paper's Section 4, Tables 1 and 2). An encoder pre-trained by masked
   language modelling and next-sentence prediction on an unlabelled story (pretraining.py), then
   fine-tuned on a few labelled windows, against the same encoder fine-tuned from random weights on
   the same windows, with the same steps and batches. The unlabelled text holds what the labels are
   too few to teach: which verbs go with which nouns, and so which sense each verb selects.
2. Bidirectional beats left-to-right (Table 5, "LTR & No NSP"). The same network pre-trained for the
   same steps as a left-to-right language model, and fine-tuned with its causal mask, as OpenAI's GPT
   was: its tag for a noun can use only the words up to that noun, so an object's verb is out of its
   sight, and only pre-training both ways lets the representation of a word carry what follows it.

Each encoder is pre-trained once per seed and kept in the shared cache (milestones.core.cache); the
fine-tuning runs at every size in `labelled` and is scored on `test_windows` windows of a fresh story.
Accuracy is reported for subjects and objects apart: a left-to-right reader can know a subject's
sense from the previous verb, an object's only by guessing between its two senses.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from milestones.core import Result, Run, UserError, check, experiment, plots
from milestones.transformers.bert import language as toy
from milestones.transformers.bert.model import IGNORE, Bert
from milestones.transformers.bert.pretraining import model_config, pretrained_encoder
from milestones.transformers.bert.tagging import fine_tune

MIN_TRANSFER_GAIN = 0.1  # test accuracy: pre-trained BERT over the same encoder from scratch
MIN_BIDIRECTIONAL_GAIN = 0.1  # test accuracy: pre-trained BERT over the pre-trained left-to-right model
ARMS = ("bert", "ltr", "scratch")

CLAIM = (f"Pre-training transfers: fine-tuned on a few labelled windows of a word-sense tagging task, an encoder "
         f"pre-trained by masked language modelling and next-sentence prediction on unlabelled text beats the same "
         f"encoder trained from scratch by at least MIN_TRANSFER_GAIN = {MIN_TRANSFER_GAIN} of test accuracy "
         f"(Section 4); and it beats a left-to-right model of the same size and pre-training steps, on a task whose "
         f"answer lies to the right, by at least MIN_BIDIRECTIONAL_GAIN = {MIN_BIDIRECTIONAL_GAIN} (Table 5).")


@dataclass
class Config:
    # the language and the network (BERT-base: WordPiece 30K, 512 positions, H = 768, 12 layers, 12 heads)
    nouns: int = 24
    verbs_per_frame: int = 1  # verbs per (subject class, object class) pair: 16 verbs
    length: int = 32  # tokens per input, [CLS] and [SEP]s included
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    intermediate: int = 256
    dropout: float = 0.1
    # pre-training (the paper: 1M steps of 256 x 512 tokens, Adam at 1e-4 with 10K warm-up steps)
    sentences: int = 60000  # the unlabelled story
    pretrain_steps: int = 800
    pretrain_batch: int = 32
    pretrain_lr: float = 3e-3
    # fine-tuning (the paper: 2-4 epochs at 2e-5 .. 5e-5, batch 16 or 32)
    labelled: tuple[int, ...] = (128,)  # labelled windows (several: a curve); the checks use the largest
    test_windows: int = 500
    finetune_steps: int = 200
    finetune_batch: int = 16
    finetune_lr: float = 1e-3


SCALES = {
    "smoke": Config(hidden=16, heads=2, intermediate=32, sentences=2000, pretrain_steps=3, pretrain_batch=4,
                    labelled=(4, 8), test_windows=8, finetune_steps=3, finetune_batch=4),
    "quick": Config(),
    "full": Config(nouns=96, verbs_per_frame=4, length=64, hidden=256, layers=4, intermediate=1024,
                   sentences=1_000_000, pretrain_steps=20000, pretrain_batch=128, pretrain_lr=5e-4,
                   labelled=(32, 128, 512, 2048), test_windows=4000, finetune_steps=1000, finetune_lr=1e-4),
}


def validate(cfg: Config) -> None:
    """What `--set` may get wrong, as one-line errors."""
    if cfg.hidden % cfg.heads:
        raise UserError("heads must divide hidden")
    if cfg.length < 16:
        raise UserError("length must be at least 16 tokens: two segments of a few words each")
    if not cfg.labelled or min(cfg.labelled) < 1:
        raise UserError("labelled needs one or more positive numbers of labelled windows, e.g. --set labelled=32,128")


def recipe(cfg: Config, objective: str, seed: int) -> dict:
    """The pre-training recipe of the cache (pretraining.py) for one objective and seed."""
    model = {k: getattr(cfg, k) for k in ("nouns", "verbs_per_frame", "length", "hidden", "layers", "heads",
                                          "intermediate", "dropout", "sentences")}
    return {"objective": objective, "seed": seed, **model, "steps": cfg.pretrain_steps,
            "batch": cfg.pretrain_batch, "lr": cfg.pretrain_lr}


@experiment(CLAIM, Config, SCALES)
def run(cfg: Config, ctx: Run) -> Result:
    validate(cfg)
    language = toy.toy_language(cfg.nouns, cfg.verbs_per_frame)
    sizes = sorted(set(cfg.labelled))
    labelled_story = toy.story(language, 8 * sizes[-1] + 100, seed=3 * ctx.seed + 1)
    test_story = toy.story(language, 8 * cfg.test_windows + 100, seed=3 * ctx.seed + 2)
    pool = toy.labelled_windows(labelled_story, sizes[-1], cfg.length, seed=ctx.seed)  # nested: the first n
    test_set = toy.labelled_windows(test_story, cfg.test_windows, cfg.length, seed=ctx.seed + 1)

    device = ctx.device.type
    encoders = {"bert": pretrained_encoder(recipe(cfg, "mlm", ctx.seed), device, ctx.quiet),
                "ltr": pretrained_encoder(recipe(cfg, "ltr", ctx.seed), device, ctx.quiet)}
    ctx.reseed(1)
    encoders["scratch"] = Bert(model_config(recipe(cfg, "mlm", ctx.seed)))

    rows = []
    for i, n in enumerate(sizes):
        row = {"labelled_windows": n, "labelled_nouns": int((pool[1][:n] != IGNORE).sum())}
        for arm in ARMS:
            ctx.reseed(10 + i)  # the same head initialisation and batches for the three arms
            result = fine_tune(ctx, f"{arm}-{n}", copy.deepcopy(encoders[arm]), arm == "ltr",
                               (pool[0][:n], pool[1][:n]), test_set, dropout=cfg.dropout, steps=cfg.finetune_steps,
                               batch_size=cfg.finetune_batch, lr=cfg.finetune_lr)
            row |= {f"{arm}_{key}": value for key, value in result.items()}
        rows.append(row)

    top = rows[-1]
    n = top["labelled_windows"]
    names = {"bert": "BERT", "ltr": "LTR", "scratch": "scratch"}
    by_role = {f"{names[arm]}\n{role}s": top[f"{arm}_{role}_accuracy"]
               for arm in ARMS for role in ("subject", "object")}
    plots.bars(ctx.artifact("subjects_and_objects.png"), by_role,
               f"Sense accuracy on test nouns, {n} labelled windows", ylabel="test accuracy",
               reference=("chance", 1 / len(toy.CLASSES)))
    if len(sizes) > 1:
        plots.curves(ctx.artifact("transfer.png"),
                     {names[arm]: (sizes, [row[f"{arm}_accuracy"] for row in rows]) for arm in ARMS},
                     "Word-sense tagging: test accuracy after fine-tuning", xlabel="labelled windows",
                     ylabel="test accuracy", logx=True, marker="o", hlines={"chance": 1 / len(toy.CLASSES)})

    checks = [
        check(f"pre-trained minus from-scratch test accuracy, {n} labelled windows ({top['bert_accuracy']:.3f} vs "
              f"{top['scratch_accuracy']:.3f})", top["bert_accuracy"] - top["scratch_accuracy"], ">=",
              MIN_TRANSFER_GAIN, "MIN_TRANSFER_GAIN", name="transfer"),
        check(f"bidirectional minus left-to-right test accuracy, {n} labelled windows ({top['bert_accuracy']:.3f} vs "
              f"{top['ltr_accuracy']:.3f})", top["bert_accuracy"] - top["ltr_accuracy"], ">=",
              MIN_BIDIRECTIONAL_GAIN, "MIN_BIDIRECTIONAL_GAIN", name="bidirectional"),
    ]
    metrics = {"rows": rows, "test_windows": cfg.test_windows, "vocabulary": len(language),
               "example": language.decode(test_set[0][0][1:]), "classes": list(toy.CLASSES),
               "pretraining_tokens": cfg.pretrain_steps * cfg.pretrain_batch * cfg.length,
               "parameters": sum(p.numel() for p in encoders["bert"].parameters())}
    return Result(checks=checks, metrics=metrics)
