"""Our GPT against Hugging Face's `GPT2LMHeadModel` with the same weights, for `milestones bench`.

Five rows: a training step (forward, loss and backward) against Hugging Face's; that step's achieved
FLOP/s against this machine's fp32 matmul peak (the time the step would take at the peak, from
`GPT.estimate_flops_per_token`: the slowdown is 1 / MFU); greedy generation of new tokens with the KV
cache against Hugging Face's `generate`; with the cache against without it; and the base model's
training step (base.py: its size, batch and precision, bf16 autocast where the CPU has AMX) in tokens
per second against Hugging Face's at the same configuration. Each pair of timings takes turns in one
process (`best_times`), so the machine's load falls on both alike.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from milestones.core.bench import best_times, matmul_peak_flops
from milestones.core.run import cpu_has_amx, keep_freed_memory
from milestones.transformers.gpt2 import base
from milestones.transformers.gpt2.model import GPT, GPTConfig


def training_step(model, logits_of, inputs: torch.Tensor, targets: torch.Tensor, bf16: bool = False):
    """One forward, loss and backward of `model` (ours, or HF's with `logits_of` reading its output)."""
    def run():
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            loss = F.cross_entropy(logits_of(model(inputs)).float().flatten(0, 1), targets.flatten())
        model.zero_grad(set_to_none=True)
        loss.backward()
    return run


def base_model_row(quick: bool) -> dict:
    """Tokens per second of the base model's training step, ours against HF's with the same weights."""
    recipe = base.RECIPES["small" if quick else "base"]
    keep_freed_memory()  # as in the build: the step's 67 MB of logits reuse the heap (for both models)
    ours = GPT(base.model_config(recipe, recipe.vocab_size))
    theirs = ours.to_hf()
    idx = torch.randint(recipe.vocab_size, (recipe.batch_size, recipe.context + 1))
    bf16 = cpu_has_amx()
    ours_s, theirs_s = best_times([training_step(model, logits_of, idx[:, :-1], idx[:, 1:], bf16)
                                   for model, logits_of in ((ours, lambda out: out), (theirs, lambda out: out.logits))])
    tokens = recipe.batch_size * recipe.context
    return {"case": f"base model training step ({'bf16 autocast' if bf16 else 'fp32'}, {recipe.n_layer} x "
                    f"{recipe.n_embd}, batch {recipe.batch_size} x {recipe.context})",
            "ours": tokens / ours_s / 1e3, "reference": tokens / theirs_s / 1e3,
            "reference_name": "HF GPT2LMHeadModel", "unit": "k tokens/s", "slowdown": ours_s / theirs_s}


def benchmark(quick: bool = False) -> list[dict]:
    layers, width, vocab, batch, context, new_tokens = (2, 64, 512, 2, 32, 16) if quick else (6, 384, 8192, 8, 256, 256)
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=vocab, block_size=2 * context + new_tokens, n_layer=layers, n_head=width // 64,
                       n_embd=width, embedding_dropout=0.0, attention_dropout=0.0, residual_dropout=0.0)
    ours = GPT(config)
    theirs = ours.to_hf()
    idx = torch.randint(vocab, (batch, context + 1))
    inputs, targets = idx[:, :-1], idx[:, 1:]

    ours_s, theirs_s = best_times([training_step(ours, lambda out: out, inputs, targets),
                                   training_step(theirs, lambda out: out.logits, inputs, targets)])
    shape = f"{layers} layers, width {width}, batch {batch} x {context} tokens"
    ideal_s = ours.estimate_flops_per_token(context) * batch * context / matmul_peak_flops()

    prompt = idx[:1, :context]
    ours.eval()
    theirs.eval()

    def ours_generate(use_cache: bool):
        return lambda: list(ours.generate(prompt, new_tokens, greedy=True, use_cache=use_cache))

    def theirs_generate():
        with torch.no_grad():
            theirs.generate(prompt, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                            pad_token_id=0, attention_mask=torch.ones_like(prompt))

    cached_s, hf_s, uncached_s = best_times([ours_generate(True), theirs_generate, ours_generate(False)], repeats=3)
    generation = f"greedy generation, {new_tokens} tokens after {context}"
    return [
        {"case": f"GPT training step (fp32), {shape}", "ours": 1e3 * ours_s, "reference": 1e3 * theirs_s,
         "reference_name": "HF GPT2LMHeadModel", "unit": "ms", "slowdown": ours_s / theirs_s},
        {"case": f"GPT training step against the fp32 peak (MFU {ideal_s / ours_s:.0%})",
         "ours": 1e3 * ours_s, "reference": 1e3 * ideal_s, "reference_name": "at the matmul peak", "unit": "ms",
         "slowdown": ours_s / ideal_s},
        {"case": f"GPT {generation}", "ours": 1e3 * cached_s, "reference": 1e3 * hf_s,
         "reference_name": "HF generate", "unit": "ms", "slowdown": cached_s / hf_s},
        {"case": f"GPT {generation}, KV cache", "ours": 1e3 * cached_s, "reference": 1e3 * uncached_s,
         "reference_name": "ours, no cache", "unit": "ms", "slowdown": cached_s / uncached_s},
        base_model_row(quick),
    ]
