"""The text a GPT learns from, tokenized once: the works of Shakespeare, or a text file of the user's.

A corpus is its BPE tokenizer (tokenizer.py) and every token id in one flat uint16 file (ids below
65,536), read through a memory map: a corpus of any size costs no memory until a batch touches it,
and it is tokenized once, not at every run. Documents are separated by <|endoftext|>. One block of
BLOCK tokens in HELD_OUT_EVERY is held out: no training window reads it.

- Shakespeare's tokenizer and tokens are an entry of the shared cache (milestones.core.cache),
  built on first use (about 5 s) and shared by every paper that trains on them.
- A user's file (`--set data=PATH`) is only read: its tokenizer and tokens are a cache entry too,
  keyed by the sha256 of the file's bytes (and the vocabulary size), not by its path or time stamp,
  so an edited file gets a new entry and the same text, touched or copied elsewhere, reuses its own.
  The tokenizer learns from the first TRAIN_CHARS characters; the whole file is encoded, a chunk of
  lines at a time.

`cloze` turns held-out text into a zero-shot test in the manner of LAMBADA (Paperno et al., 2016):
predict the last word of a passage, where that word already occurred earlier in the passage.
"""

from __future__ import annotations

import bisect
import collections
import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import regex
import torch

from milestones.core import cache
from milestones.core.data import shakespeare
from milestones.core.errors import UserError
from milestones.transformers.gpt2 import tokenizer as bpe
from milestones.transformers.gpt2.tokenizer import BPETokenizer

BLOCK = 8192  # tokens: the corpus is cut into blocks, and
HELD_OUT_EVERY = 20  # one block in 20 (5%) is held out, as GPT-2 tuned on a held-out 5% of WebText
TRAIN_CHARS = 20_000_000  # a user's tokenizer learns its merges from at most this much of the file
CHUNK_CHARS = 1_000_000  # a user's file is encoded this much at a time


@dataclass
class Corpus:
    tokenizer: BPETokenizer
    tokens: np.ndarray  # (N,) uint16, memory-mapped
    source: str  # what the text is, for the run's record

    def __post_init__(self):
        # Blocks are BLOCK tokens long, or shorter in a small corpus, which still gets two held-out blocks.
        size = max(1, min(BLOCK, len(self.tokens) // (2 * HELD_OUT_EVERY)))
        starts = range(0, len(self.tokens), size)
        self._blocks = {held_out: [(s, min(s + size, len(self.tokens))) for k, s in enumerate(starts)
                                   if (k % HELD_OUT_EVERY == HELD_OUT_EVERY // 2) == held_out]
                        for held_out in (False, True)}  # computed once: `batch` asks at every step

    def blocks(self, held_out: bool) -> list[tuple[int, int]]:
        """The (start, end) of every training block, or of every held-out one: one block in HELD_OUT_EVERY,
        spread through the corpus, so that both halves hold the same mix of text."""
        return self._blocks[held_out]

    def text(self, held_out: bool) -> str:
        """The training text, or the held-out text, decoded (the blocks one after another)."""
        return "".join(self.tokenizer.decode(self.tokens[s:e].tolist()) for s, e in self.blocks(held_out))

    def tokens_per_character(self) -> float:
        """Tokens per character of the held-out text: loss per token times this is loss per character,
        which compares models with different tokenizers (a character-level model's is 1)."""
        return sum(e - s for s, e in self.blocks(held_out=True)) / len(self.text(held_out=True))

    def batch(self, batch_size: int, context: int, generator: torch.Generator | None = None):
        """Random training windows: inputs (B, context) and their next tokens (B, context), int64."""
        blocks = self._long_enough(context, held_out=False)
        chosen = torch.randint(len(blocks), (batch_size,), generator=generator).tolist()
        offsets = torch.rand(batch_size, generator=generator).tolist()
        starts = [blocks[b][0] + int(u * (blocks[b][1] - blocks[b][0] - context)) for b, u in zip(chosen, offsets)]
        return self._windows(starts, context)

    def held_out(self, context: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`count` held-out windows, as `batch` gives them, evenly spaced in the held-out blocks (always the same)."""
        blocks = self._long_enough(context, held_out=True)
        per_block = -(-count // len(blocks))
        starts = [int(x) for s, e in blocks for x in np.linspace(s, e - context - 1, per_block)]
        return self._windows(starts[:count], context)

    def _long_enough(self, context: int, held_out: bool) -> list[tuple[int, int]]:
        blocks = [(s, e) for s, e in self.blocks(held_out) if e - s > context]
        if not blocks:
            raise UserError(f"{self.source} is too short for windows of {context} tokens: it has "
                            f"{len(self.tokens):,} tokens and needs about {2 * HELD_OUT_EVERY * (context + 1):,}")
        return blocks

    def _windows(self, starts: list[int], context: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.from_numpy(np.stack([self.tokens[s:s + context + 1] for s in starts]).astype(np.int64))
        return rows[:, :-1], rows[:, 1:]


def shakespeare_corpus(vocab_size: int) -> Corpus:
    folder = cache.cached("shakespeare-bpe", {"vocab_size": vocab_size}, [bpe, shakespeare, sys.modules[__name__]],
                          _build_shakespeare)
    return _open(folder / "tokenizer.json", folder / "tokens.u16", "the works of Shakespeare (shksprdata)")


def _build_shakespeare(folder: Path, config: dict) -> None:
    works = shakespeare.shakespeare_works()
    tokenizer = BPETokenizer.train("\n".join(works), config["vocab_size"])
    tokenizer.save(folder / "tokenizer.json")
    _write_tokens(folder / "tokens.u16", ([*tokenizer.encode(work), tokenizer.end_of_text] for work in works))


def text_file_corpus(path: str | Path, vocab_size: int) -> Corpus:
    """The corpus of a UTF-8 text file, tokenized into the cache on first use (and again when its text changes).
    Nothing is written beside the file: the user's folder may be read-only, or shared."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"--set data={path}: no such file; give a UTF-8 text file")
    if vocab_size > 2**16:
        raise UserError(f"vocab_size {vocab_size} does not fit the uint16 token file; use at most 65536")
    try:
        with open(path, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()  # read in chunks: any size costs no memory
    except OSError as e:
        raise UserError(f"--set data={path}: cannot read the file ({e.strerror})") from None
    # The key holds what the text is, not where it lies: the build reads the file from `path`.
    folder = cache.cached("text-bpe", {"sha256": digest, "vocab_size": vocab_size}, [bpe, sys.modules[__name__]],
                          lambda folder, config: _build_text_file(path, folder, config))
    return _open(folder / "tokenizer.json", folder / "tokens.u16", str(path))


def _build_text_file(path: Path, folder: Path, config: dict) -> None:
    with open(path, encoding="utf-8", errors="replace") as f:
        sample = f.read(TRAIN_CHARS)
    if not sample.strip():
        raise UserError(f"--set data={path}: the file holds no text")
    tokenizer = BPETokenizer.train(sample, config["vocab_size"])

    def chunks():
        with open(path, encoding="utf-8", errors="replace") as f:
            while lines := f.readlines(CHUNK_CHARS):  # whole lines, about CHUNK_CHARS at a time
                yield tokenizer.encode("".join(lines))
        yield [tokenizer.end_of_text]

    tokenizer.save(folder / "tokenizer.json")
    _write_tokens(folder / "tokens.u16", chunks())


def _write_tokens(path: Path, chunks) -> None:
    """Write the chunks' ids as one uint16 file, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        for ids in chunks:
            f.write(np.asarray(ids, dtype=np.uint16).tobytes())
    os.replace(tmp, path)


def _open(tokenizer_path: Path, tokens_path: Path, source: str) -> Corpus:
    tokenizer = BPETokenizer.load(tokenizer_path)
    tokens = np.memmap(tokens_path, dtype=np.uint16, mode="r")
    return Corpus(tokenizer, tokens, source)


# ------------------------------------------------------------------------------- the cloze test
@dataclass
class Cloze:
    """Passages of held-out text, each ending just before a word it already contains."""

    inputs: torch.Tensor  # (P, T): the passage and the target word but its last token
    targets: torch.Tensor  # (P, T): the next token at each position
    target_mask: torch.Tensor  # (P, T) bool: the positions whose next token is part of the target word
    words: list[str]

    def replaced(self, keep: int) -> torch.Tensor:
        """The inputs with each passage replaced by the next one's (the last, the first's), all but the `keep`
        tokens before the target word: the control that shows whether a model reads the passage. The target
        and its immediate context stay, so what is lost is only what the passage said earlier."""
        start = self.inputs.shape[1] - self.target_mask.sum(1) - keep + 1  # (P,) the first kept position
        kept = torch.arange(self.inputs.shape[1]) >= start[:, None]  # (P, T)
        return torch.where(kept, self.inputs, self.inputs.roll(-1, dims=0))


def cloze(corpus: Corpus, length: int, count: int, min_letters: int = 3, common_words: int = 100) -> Cloze:
    """Up to `count` passages of `length` tokens from the held-out text, disjoint and evenly spread, each ending with a
    word of at least `min_letters` letters that occurred earlier in the passage (as a word of its own,
    in the same case) and is not among the `common_words` most frequent words of the held-out text
    (which a model could guess without reading the passage)."""
    tokenizer = corpus.tokenizer
    texts = [tokenizer.decode(corpus.tokens[s:e].tolist()) for s, e in corpus.blocks(held_out=True)]
    pieces = [regex.findall(tokenizer.pattern, text) for text in texts]
    words = [[piece.strip() if regex.fullmatch(r" ?\p{L}+", piece) else None for piece in block] for block in pieces]
    frequent = {w for w, _ in collections.Counter(w.lower() for block in words for w in block if w)
                .most_common(common_words)}
    candidates = []  # (the block's ids, the passage's first token, the target's token count, the word)
    for block_pieces, word_of in zip(pieces, words):
        ids, starts = [], []  # the block's tokens, and where each piece's tokens start
        for piece in block_pieces:
            starts.append(len(ids))
            ids.extend(tokenizer.encode(piece))
        last_end = -1
        for i, word in enumerate(word_of):
            if not word or len(word) < min_letters or word.lower() in frequent:
                continue
            target_length = len(tokenizer.encode(block_pieces[i]))
            begin = starts[i] + target_length - length - 1  # the passage: `length` + 1 tokens ending with the word
            if begin > last_end and word in word_of[bisect.bisect_left(starts, begin):i]:  # disjoint passages
                candidates.append((ids, begin, target_length, word))
                last_end = begin + length
    chosen = [candidates[int(j)] for j in np.linspace(0, len(candidates) - 1, min(count, len(candidates)))]
    rows = torch.tensor([ids[begin:begin + length + 1] for ids, begin, _, _ in chosen], dtype=torch.int64)
    rows = rows.view(len(chosen), length + 1)  # also when a text holds no such passage
    mask = torch.zeros(len(chosen), length, dtype=torch.bool)
    for row, (_, _, target_length, _) in enumerate(chosen):
        mask[row, length - target_length:] = True
    return Cloze(rows[:, :-1], rows[:, 1:], mask, [word for *_, word in chosen])
