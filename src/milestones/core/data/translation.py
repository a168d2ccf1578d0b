"""A toy translation task with a known word alignment, for the encoder-decoder and attention papers
(and a variant whose target language has Markov structure, for seq2seq).

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


GRAMMAR_SEED = 1409  # fixes the Markov language's grammar (which words may follow which), like DICTIONARY_SEED


def grammar_successors(vocab: int, branching: int) -> torch.Tensor:
    """(vocab, branching): the target words allowed to follow each target word, distinct in each row."""
    scores = torch.rand(vocab, vocab, generator=torch.Generator().manual_seed(GRAMMAR_SEED + 1000 * vocab + branching))
    return scores.argsort(dim=1)[:, :branching]


def markov_translation(n: int, length: int, vocab: int = 16, seed: int = 0,
                       branching: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Like `toy_translation`, but the target language has first-order Markov structure, like text.

    A grammar allows only `branching` of the `vocab` words after each target word
    (`grammar_successors`). A target sentence is a walk through it: y_0 is any word, and y_t is one
    of the successors of y_(t-1), each with probability 1 / branching. The source sentence is its
    word-by-word translation under the same dictionary and pair swap as `toy_translation`, so
    target[:, t] = dictionary[source[:, alignment[t]]] still holds. Each target word therefore
    depends on the previous target word (which words are allowed: log(vocab / branching) nats of it
    are free from the grammar) and on its aligned source word (which of them it is). A decoder that
    gets a word wrong then expects the successors of the wrong word, so an early error throws the
    following words off too, and a good start pays off.
    """
    generator = torch.Generator().manual_seed(seed)
    successors = grammar_successors(vocab, branching)
    words = [torch.randint(vocab, (n,), generator=generator)]
    for _ in range(length - 1):
        words.append(successors[words[-1], torch.randint(branching, (n,), generator=generator)])
    target = torch.stack(words, dim=1)  # (n, length)
    to_source = translation_dictionary(vocab).argsort()  # the inverse dictionary
    return to_source[target][:, translation_alignment(length)], target  # the pair swap is its own inverse
