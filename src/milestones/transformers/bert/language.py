"""A toy verb-final language in which most nouns have two meanings, for BERT's experiments.

The language has four kinds of thing (CLASSES), nouns and verbs. Every noun has two senses, two of
the four classes (as "bat" is an animal or a club), and every verb says which class its subject and
its object belong to (as "eats" wants food for its object). A sentence puts the verb last, as
Japanese, Turkish or Latin often do, with optional filler words before each noun:

    [fillers] subject [fillers] object verb .          e.g.  "the bako big tumi resa ."

So which sense a noun has in a sentence is written in the verb, which comes after it. Sentences are
linked into a story: each sentence's subject is the object of the sentence before, in the same
sense (the verb is drawn among those whose subject class is that sense). That gives the text
structure across sentences (what next-sentence prediction can learn), and gives a subject its sense
from the left as well: a reader going left to right learns a subject's sense from the previous verb,
but an object's only from the verb that follows it.

The words are made-up syllable pairs ("bako", "tumi"): the names carry no meaning, only the
distribution of the words does, which is what pre-training on unlabelled text can pick up. The
language itself (its words, senses and verbs) is fixed by LANGUAGE_SEED; a story is drawn from its
own seed, so the unlabelled, labelled and test texts of a run are independent draws.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from milestones.transformers.bert.model import IGNORE

CLASSES = ("person", "animal", "food", "place")
FILLERS = ("the", "old", "big")
SPECIALS = ("[PAD]", "[CLS]", "[SEP]", "[MASK]")
PAD, CLS, SEP, MASK = range(len(SPECIALS))
FULL_STOP = "."
FILLER_RATE = 0.3  # before each noun, fillers follow one another with this probability
LANGUAGE_SEED = 2018


@dataclass(frozen=True)
class Language:
    words: tuple[str, ...]  # the vocabulary: the special tokens, ".", the fillers, the nouns, the verbs
    senses: dict[str, tuple[int, int]]  # noun -> its two classes
    verbs: dict[str, tuple[int, int]]  # verb -> (subject class, object class)

    def __len__(self) -> int:
        return len(self.words)

    def ids(self, words: list[str]) -> list[int]:
        index = {word: i for i, word in enumerate(self.words)}
        return [index[word] for word in words]

    def decode(self, ids) -> str:
        return " ".join(self.words[i] for i in torch.as_tensor(ids).tolist() if i != PAD)

    def nouns_of(self, kind: int) -> list[str]:
        return [noun for noun, senses in self.senses.items() if kind in senses]


def toy_language(nouns: int = 24, verbs_per_frame: int = 1) -> Language:
    """`nouns` nouns with two random senses each; `verbs_per_frame` verbs for each of the 16 (subject
    class, object class) frames."""
    rng = random.Random(LANGUAGE_SEED)
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    pairs = [a + b for a in syllables for b in syllables if a != b]
    made_up = iter(rng.sample(pairs, nouns + len(CLASSES) ** 2 * verbs_per_frame))  # distinct words
    senses = {next(made_up): tuple(rng.sample(range(len(CLASSES)), 2)) for _ in range(nouns)}
    verbs = {next(made_up): (s, o) for s in range(len(CLASSES)) for o in range(len(CLASSES))
             for _ in range(verbs_per_frame)}
    missing = [CLASSES[k] for k in range(len(CLASSES)) if not any(k in pair for pair in senses.values())]
    if missing:
        raise ValueError(f"no noun can mean a {missing[0]}: use more nouns")
    words = SPECIALS + (FULL_STOP,) + FILLERS + tuple(senses) + tuple(verbs)
    return Language(words, senses, verbs)


@dataclass
class Story:
    ids: torch.Tensor  # (N,) the token ids of the sentences, one after another
    senses: torch.Tensor  # (N,) the class of each noun in its sentence; IGNORE for every other word
    starts: torch.Tensor  # (S,) where each sentence begins


def story(language: Language, sentences: int, seed: int) -> Story:
    """`sentences` linked sentences: each subject is the previous sentence's object, in the same sense."""
    rng = random.Random(seed)
    verbs_by_subject = [[verb for verb, (s, _) in language.verbs.items() if s == k] for k in range(len(CLASSES))]
    kind = rng.randrange(len(CLASSES))
    subject = rng.choice(language.nouns_of(kind))
    words, senses, starts = [], [], []
    for _ in range(sentences):
        verb = rng.choice(verbs_by_subject[kind])
        object_kind = language.verbs[verb][1]
        obj = rng.choice(language.nouns_of(object_kind))
        starts.append(len(words))
        for noun, sense in ((subject, kind), (obj, object_kind)):
            while rng.random() < FILLER_RATE:
                words.append(rng.choice(FILLERS))
                senses.append(IGNORE)
            words.append(noun)
            senses.append(sense)
        words += [verb, FULL_STOP]
        senses += [IGNORE, IGNORE]
        subject, kind = obj, object_kind
    return Story(torch.tensor(language.ids(words)), torch.tensor(senses), torch.tensor(starts))


def window_starts(text: Story, length: int) -> torch.Tensor:
    """The sentence starts from which `length` tokens fit in the text."""
    return text.starts[text.starts <= len(text.ids) - length]


def windows(text: Story, starts: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[CLS] + the `length - 1` tokens from each start: ids (n, length) and noun senses (n, length)."""
    offsets = starts[:, None] + torch.arange(length - 1)
    first = torch.full((len(starts), 1), CLS)
    return (torch.cat([first, text.ids[offsets]], 1),
            torch.cat([torch.full_like(first, IGNORE), text.senses[offsets]], 1))


def labelled_windows(text: Story, count: int, length: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` windows from random sentence starts (drawn from `seed`, not the global RNG)."""
    starts = window_starts(text, length)
    pick = torch.randint(len(starts), (count,), generator=torch.Generator().manual_seed(seed))
    return windows(text, starts[pick], length)
