"""A toy translation task with a known word alignment, for the encoder-decoder and attention papers.

The "source language" has `vocab` words (ids 0 .. vocab-1). A sentence translates by two rules:

- a fixed dictionary: every source word has one target word (a random bijection, the same for
  every call; `translation_dictionary` returns it);
- a local reordering, like adjective-noun order between French and English: the words of each
  adjacent pair swap places (positions 0,1 -> 1,0; 2,3 -> 3,2; ...); an odd final word stays put.

So a sentence of length L translates to one of length L, and target position t comes from source
position `alignment[t]` (t xor 1, or t itself for an odd final word): the ground truth against
which learned attention can be scored. Target ids 0 .. vocab-1 are words; id `vocab` is the
beginning-of-sentence token `BOS` that starts every decoder.

Sentences are generated on the fly from a seed (the same seed gives the same data), so a training
loop can draw a fresh batch per step and held-out sets come from seeds it never uses.
"""

from __future__ import annotations

import torch

DICTIONARY_SEED = 2014  # fixes the toy language itself, independent of any run's seed


def translation_dictionary(vocab: int) -> torch.Tensor:
    """(vocab,) the target word of each source word."""
    return torch.randperm(vocab, generator=torch.Generator().manual_seed(DICTIONARY_SEED + vocab))


def translation_alignment(length: int) -> torch.Tensor:
    """(length,) the source position each target position translates."""
    alignment = torch.arange(length) ^ 1
    if length % 2:
        alignment[-1] = length - 1
    return alignment


def toy_translation(n: int, length: int, vocab: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` source sentences of `length` words, (n, length), and their translations, (n, length)."""
    source = torch.randint(vocab, (n, length), generator=torch.Generator().manual_seed(seed))
    target = translation_dictionary(vocab)[source][:, translation_alignment(length)]
    return source, target
