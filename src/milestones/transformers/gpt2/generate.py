"""Text from a trained run: what `milestones generate RUN_DIR` does for the GPT papers.

A run folder of gpt2 holds `model.json` (the model's config, which checkpoint holds its weights, and
the tokenizer file), written by the experiment. `load` rebuilds the model from it; `generate`
streams the continuation of a prompt as text, a piece at a time, as the tokens are chosen.
`milestones generate gpt2` samples the pretrained base model (base.py), whose cache entry is laid out
as a run folder: `pretrained_run` builds it if the cache lacks it and names its folder.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path

import torch

from milestones.core.errors import UserError
from milestones.core.run import load_trained, pick_device
from milestones.transformers.gpt2.model import GPT, GPTConfig
from milestones.transformers.gpt2.tokenizer import BPETokenizer


def load(run_dir: Path, device: torch.device) -> tuple[GPT, BPETokenizer]:
    """The trained GPT of a run folder (in eval mode, on `device`) and its tokenizer."""
    model, spec = load_trained(run_dir, lambda config: GPT(GPTConfig(**config)), device, "gpt2")
    return model, BPETokenizer.load(run_dir / spec["tokenizer"])


def pretrained_run() -> Path:
    """The base model's folder in the cache (built on first use, about 5 minutes on two cores)."""
    from milestones.transformers.gpt2 import base  # base.py loads its models through `load`

    return base.entry("base")


def generate(run_dir: Path, prompt: str, tokens: int = 200, temperature: float = 0.8, top_k: int | None = None,
             top_p: float | None = None, seed: int = 0, device: str = "auto") -> Iterator[str]:
    """The prompt's continuation, as text pieces, as soon as they are decided (sampled with `seed`)."""
    if tokens < 1:
        raise UserError(f"--tokens must be at least 1, not {tokens}")
    if temperature < 0:
        raise UserError(f"--temperature must be 0 (greedy) or more, not {temperature}")
    if top_k is not None and top_k < 1:
        raise UserError(f"--top-k must be at least 1, not {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise UserError(f"--top-p must be in (0, 1], not {top_p}")
    where = pick_device(device)
    model, tokenizer = load(run_dir, where)
    ids = tokenizer.encode(prompt) or [tokenizer.end_of_text]  # no prompt: start as a new document does
    if len(ids) > model.config.block_size:
        raise UserError(f"the prompt is {len(ids)} tokens; this model reads at most {model.config.block_size}")
    generator = torch.Generator(where).manual_seed(seed)
    text = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character may span two tokens
    stream = model.generate(torch.tensor([ids], device=where), tokens, temperature=temperature, top_k=top_k,
                            top_p=top_p, generator=generator)
    for token in stream:
        piece = text.decode(tokenizer.decode_bytes(token.tolist()))
        if piece:
            yield piece
    yield text.decode(b"", final=True)
