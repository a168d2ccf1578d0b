"""BERT's toy language (bert/language.py): every noun takes one of its two senses, the one its verb
asks for; sentences link (a subject is the previous object, in the same sense); windows start at a
sentence start with [CLS] and carry their nouns' senses; and pre-training's learning-rate schedule."""

import torch

from milestones.transformers.bert import language as toy
from milestones.transformers.bert.model import IGNORE
from milestones.transformers.bert.pretraining import linear_warmup_decay


def sentences(language, text):
    """Each sentence as (nouns, their senses, verb), read back from the token ids."""
    bounds = text.starts.tolist() + [len(text.ids)]
    out = []
    for start, end in zip(bounds, bounds[1:]):
        words = [language.words[i] for i in text.ids[start:end].tolist()]
        senses = text.senses[start:end].tolist()
        assert words[-1] == toy.FULL_STOP
        nouns = [(w, s) for w, s in zip(words, senses) if s != IGNORE]
        assert [w for w in words if w in language.senses] == [w for w, _ in nouns]
        out.append((nouns, words[-2]))
    return out


def test_nouns_take_the_sense_their_verb_asks_for_and_subjects_link():
    language = toy.toy_language(nouns=24)
    assert len(set(language.words)) == len(language.words) == 4 + 1 + 3 + 24 + 16
    text = toy.story(language, 300, seed=5)
    previous_object = None
    for (subject, obj), verb in sentences(language, text):
        assert language.verbs[verb] == (subject[1], obj[1])
        assert subject[1] in language.senses[subject[0]] and obj[1] in language.senses[obj[0]]
        assert previous_object in (None, subject)
        previous_object = obj
    assert torch.equal(toy.story(language, 300, seed=5).ids, text.ids)  # a seed fixes the story
    assert not torch.equal(toy.story(language, 300, seed=6).ids, text.ids)


def test_windows_start_at_sentences_with_cls_and_keep_the_senses():
    language = toy.toy_language(nouns=24)
    text = toy.story(language, 200, seed=0)
    ids, senses = toy.labelled_windows(text, 50, 32, seed=1)
    assert ids.shape == senses.shape == (50, 32)
    assert (ids[:, 0] == toy.CLS).all() and (senses[:, 0] == IGNORE).all()
    starts = set(text.starts.tolist())
    for row, label_row in zip(ids, senses):
        at = next(s for s in starts if torch.equal(text.ids[s:s + 31], row[1:]))
        assert torch.equal(text.senses[at:at + 31], label_row[1:])


def test_learning_rate_rises_then_falls_linearly_to_zero():
    f = linear_warmup_decay(100)
    assert [round(f(i), 6) for i in (0, 4, 9)] == [0.1, 0.5, 1.0]
    assert f(10) == 1 and f(11) < 1 and abs(f(55) - 0.5) < 1e-9 and f(100) == 0
