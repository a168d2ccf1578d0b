"""A synthetic corpus whose generating process has known analogies and known multi-word names.

Every *entity* word is made of two attributes, and each attribute has its own little set of
context words. A sentence about an entity mentions it among context words drawn from its two
attributes, with frequent function words ("the", "of", ...) and some unrelated filler words mixed
in. Because an entity's contexts are the union of its attributes' contexts, a good word embedding
should place it near "attribute 1 + attribute 2", and so the famous offsets hold by construction:

- royalty and gender: king : queen = man : woman, built from a role (crown, hunting, school, ...)
  and a gender (he, his, ... / she, her, ...);
- countries and capitals: france : paris = japan : tokyo, built from a nation and a kind (country,
  border, ... / city, mayor, ...); some capitals are two-word names ("buenos aires");
- singular and plural: dog : dogs = car : cars, built from a thing and a number.

Entities are drawn with Zipfian frequencies, so some are common and some rare (the words whose
vectors need the help of subsampling the frequent ones). Analogy questions pair every two members
of a family in both directions, as in the questions-words file of word2vec, and spell multi-word
names with "_" (the form phrase detection produces).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

GENDER = [("king", "queen", "crown"), ("prince", "princess", "heir"), ("man", "woman", "adult"),
          ("boy", "girl", "child"), ("father", "mother", "parent"), ("son", "daughter", "offspring"),
          ("brother", "sister", "sibling"), ("uncle", "aunt", "relative"), ("husband", "wife", "marriage"),
          ("lord", "lady", "manor")]
CAPITALS = [("france", "paris"), ("italy", "rome"), ("japan", "tokyo"), ("germany", "berlin"),
            ("spain", "madrid"), ("russia", "moscow"), ("egypt", "cairo"), ("china", "beijing"),
            ("greece", "athens"), ("canada", "ottawa"), ("india", "new delhi"), ("argentina", "buenos aires"),
            ("malaysia", "kuala lumpur"), ("ethiopia", "addis ababa")]
PLURALS = [("dog", "dogs"), ("car", "cars"), ("tree", "trees"), ("house", "houses"), ("apple", "apples"),
           ("bird", "birds"), ("river", "rivers"), ("book", "books"), ("horse", "horses"), ("ship", "ships")]
# The context words of the attributes each family shares.
SHARED = {"male": ["he", "him", "his", "himself"], "female": ["she", "her", "hers", "herself"],
          "country": ["border", "population", "government", "province"],
          "capital": ["city", "mayor", "streets", "downtown"],
          "singular": ["one", "single", "lone", "each"], "plural": ["many", "several", "few", "all"]}
FUNCTION_WORDS = ["the", "of", "and", "a", "to", "in", "was", "that"]  # Zipfian: "the" is the most frequent


@dataclass
class AnalogyCorpus:
    sentences: list[list[str]]  # tokenized, lower case; multi-word names appear as separate tokens
    questions: dict[str, list[tuple[str, str, str, str]]]  # section -> (a, b, c, d): a is to b as c is to d
    names: list[tuple[str, ...]]  # the multi-word names, e.g. ("buenos", "aires")

    def questions_text(self) -> str:
        """The questions in word2vec's questions-words.txt format (": section" headers)."""
        lines = []
        for section, items in self.questions.items():
            lines.append(f": {section}")
            lines += [" ".join(q) for q in items]
        return "\n".join(lines) + "\n"

    @property
    def n_words(self) -> int:
        return sum(len(s) for s in self.sentences)


def _entities() -> list[tuple[str, str, str]]:
    """(entity, attribute 1, attribute 2) for every entity word; an attribute is a topic name."""
    entities = []
    for male, female, role in GENDER:
        entities += [(male, f"role:{role}", "male"), (female, f"role:{role}", "female")]
    for country, capital in CAPITALS:
        entities += [(country, f"nation:{country}", "country"), (capital, f"nation:{country}", "capital")]
    for one, many in PLURALS:
        entities += [(one, f"thing:{one}", "singular"), (many, f"thing:{one}", "plural")]
    return entities


def _topics() -> dict[str, list[str]]:
    """Context words of every attribute; the topics of single pairs get made-up but readable words."""
    topics = dict(SHARED)
    for *_, role in GENDER:
        topics[f"role:{role}"] = [role] + [f"{role}{k}" for k in range(1, 4)]
    for country, _ in CAPITALS:
        topics[f"nation:{country}"] = [f"{country}{k}" for k in ("lang", "food", "coin", "flag")]
    for one, _ in PLURALS:
        topics[f"thing:{one}"] = [f"{one}{k}" for k in ("look", "use", "part", "kind")]
    return topics


def _pairs(pairs: list[tuple[str, str]]) -> list[tuple[str, str, str, str]]:
    return [(a, b, c, d) for a, b in pairs for c, d in pairs if a != c]


def make_analogy_corpus(n_sentences: int = 20000, seed: int = 0, context_words: int = 4,
                        function_rate: float = 1.0, filler_rate: float = 0.3, n_fillers: int = 300,
                        zipf_exponent: float = 1.0) -> AnalogyCorpus:
    """Sample the corpus. Each sentence: one entity (Zipfian over a shuffled entity list), and
    `context_words` words from its two attributes (each word from either, at random), in random
    order; after every content word, a Poisson-ish number (mean `function_rate`) of function words
    and (with probability `filler_rate`) one of `n_fillers` unrelated filler words."""
    rng = random.Random(seed)
    entities, topics = _entities(), _topics()
    order = list(range(len(entities)))
    rng.shuffle(order)  # which entities are common and which rare is random, not by family
    weights = [0.0] * len(entities)
    for rank, index in enumerate(order):
        weights[index] = 1.0 / (rank + 3) ** zipf_exponent
    function_weights = [1.0 / (k + 1) for k in range(len(FUNCTION_WORDS))]
    fillers = [f"filler{k}" for k in range(n_fillers)]

    sentences = []
    for entity, first, second in rng.choices(entities, weights, k=n_sentences):
        content = [entity.split()] + [[rng.choice(topics[rng.choice((first, second))])] for _ in range(context_words)]
        rng.shuffle(content)
        sentence = []
        for words in content:
            sentence += words
            while rng.random() < function_rate / (1 + function_rate):  # geometric, mean function_rate
                sentence.append(rng.choices(FUNCTION_WORDS, function_weights)[0])
            if rng.random() < filler_rate:
                sentence.append(rng.choice(fillers))
        sentences.append(sentence)

    def token(name: str) -> str:
        return name.replace(" ", "_")

    questions = {
        "royalty-and-gender": _pairs([(m, f) for m, f, _ in GENDER]),
        "country-capital": _pairs([(c, token(k)) for c, k in CAPITALS]),
        "plurals": _pairs([(one, many) for one, many in PLURALS]),
    }
    names = [tuple(k.split()) for _, k in CAPITALS if " " in k]
    return AnalogyCorpus(sentences, questions, names)
