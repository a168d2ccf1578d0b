"""The seq2seq decoders do what they claim: beam search with one hypothesis is greedy decoding, with
a beam wide enough to hold every sentence it is exhaustive search, and the scores it reports are
the model's own log-likelihoods; teacher forcing equals step-by-step decoding; reversing the
source is exactly reading it backwards; the Markov toy language the experiment trains on follows its
grammar and its dictionary. (The LSTM stacks are nn.LSTM, which our from-scratch LSTM equals:
tests/equivalence/test_lstm.py.)"""

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from milestones.core.data import markov_translation, translation_alignment, translation_dictionary
from milestones.core.data.translation import grammar_successors
from milestones.sequences.seq2seq.experiment import accuracy_by_position
from milestones.sequences.seq2seq.model import Seq2Seq

VOCAB = 3  # target words; id 3 is BOS


def model(reverse_source=False, seed=0):
    torch.manual_seed(seed)
    # Large embeddings and a sharp readout make the model's choices far from uniform, so that
    # greedy and exhaustive search really differ on some sentences.
    m = Seq2Seq(4, VOCAB + 1, bos=VOCAB, embed_size=6, hidden_size=8, num_layers=2,
                reverse_source=reverse_source).double()
    with torch.no_grad():
        m.readout.weight.mul_(6.0)
        m.readout.bias[VOCAB] = -1e3  # BOS is never written
    return m


def test_teacher_forcing_equals_step_by_step_decoding():
    m = model()
    source, target = torch.randint(4, (3, 6)), torch.randint(VOCAB, (3, 5))
    all_at_once = m(source, target)
    state, previous, steps = m.encode(source), torch.full((3, 1), VOCAB), []
    for t in range(5):
        logits, state = m.decode(previous, state)
        steps.append(logits)
        previous = target[:, t:t + 1]
    assert_close(all_at_once, torch.cat(steps, dim=1), rtol=1e-12, atol=1e-12)


def test_log_likelihood_is_the_sum_of_word_log_probabilities():
    m = model()
    source, target = torch.randint(4, (2, 5)), torch.randint(VOCAB, (2, 4))
    log_probs = F.log_softmax(m(source, target), -1)
    expected = torch.stack([sum(log_probs[n, t, target[n, t]] for t in range(4)) for n in range(2)])
    assert_close(m.log_likelihood(source, target), expected, rtol=1e-12, atol=1e-12)


def test_reversing_the_source_is_reading_it_backwards():
    forward_reader, backward_reader = model(False), model(True)
    source, target = torch.randint(4, (3, 7)), torch.randint(VOCAB, (3, 4))
    assert_close(backward_reader(source, target), forward_reader(source.flip(1), target), rtol=0, atol=0)
    assert not torch.allclose(backward_reader(source, target), forward_reader(source, target))


@pytest.mark.parametrize("seed", range(3))
def test_beam_of_one_is_greedy(seed):
    m = model(seed=seed)
    source = torch.randint(4, (8, 5))
    words, scores = m.beam_search(source, 6, beam_size=1)
    greedy = m.translate(source, 6)
    assert torch.equal(words[:, 0], greedy)
    assert_close(scores[:, 0], m.log_likelihood(source, greedy), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("seed", range(3))
def test_a_beam_that_holds_every_sentence_is_exhaustive_search(seed):
    m = model(seed=seed)
    source, length = torch.randint(4, (6, 5)), 3
    every = torch.tensor(list(itertools.product(range(VOCAB), repeat=length)))  # all 27 translations
    k = len(every)
    words, scores = m.beam_search(source, length, beam_size=k)
    for n in range(len(source)):
        likelihood = m.log_likelihood(source[n:n + 1].expand(k, -1), every)  # (27,)
        best = likelihood.sort(descending=True)
        assert_close(scores[n], best.values, rtol=1e-10, atol=1e-10)  # the same scores, best first
        assert_close(m.log_likelihood(source[n:n + 1].expand(k, -1), words[n]), scores[n], rtol=1e-10, atol=1e-10)
        assert {tuple(w) for w in words[n].tolist()} == {tuple(w) for w in every.tolist()}


def test_beam_search_beats_greedy_somewhere_and_never_loses_here():
    """On this untrained, sharp model a beam of 3 finds more likely translations than greedy for some
    sentences (the search matters), and the beam's reported scores are its translations' likelihoods."""
    m = model(seed=5)
    source = torch.randint(4, (64, 6))
    greedy = m.log_likelihood(source, m.translate(source, 7))
    words, scores = m.beam_search(source, 7, beam_size=3)
    assert_close(m.log_likelihood(source, words[:, 0]), scores[:, 0], rtol=1e-10, atol=1e-10)
    assert (scores[:, :-1] >= scores[:, 1:]).all()  # best first
    assert (scores[:, 0] > greedy + 1e-9).any()
    assert (scores[:, 0] >= greedy - 1e-9).all()


def test_markov_translation_follows_its_grammar_and_the_dictionary():
    """The seq2seq experiment's language: every target word is an allowed successor of the one before,
    each successor is drawn, the source is the word-by-word translation with pairs swapped, and a
    seed fixes the sentences."""
    vocab, branching = 10, 3
    source, target = markov_translation(400, 9, vocab=vocab, seed=4, branching=branching)
    successors = grammar_successors(vocab, branching)
    assert source.shape == target.shape == (400, 9)
    assert all(len(set(row)) == branching for row in successors.tolist())
    allowed = torch.zeros(vocab, vocab, dtype=torch.bool)
    allowed[torch.arange(vocab).unsqueeze(1), successors] = True
    assert allowed[target[:, :-1], target[:, 1:]].all()
    follows = torch.zeros(vocab, vocab)
    follows.index_put_((target[:, :-1].flatten(), target[:, 1:].flatten()), torch.ones(400 * 8), accumulate=True)
    assert (follows[allowed] > 0).all()  # every allowed pair occurs: the choice among successors is random
    assert torch.equal(translation_dictionary(vocab)[source][:, translation_alignment(9)], target)
    assert torch.equal(markov_translation(400, 9, vocab=vocab, seed=4, branching=branching)[0], source)
    assert not torch.equal(markov_translation(400, 9, vocab=vocab, seed=5, branching=branching)[0], source)


def test_accuracy_by_position_counts_only_sentences_that_reach_the_position():
    right = [torch.tensor([[True, False], [True, True]]), torch.tensor([[False, True, True]])]
    assert accuracy_by_position(right) == pytest.approx([2 / 3, 2 / 3, 1.0])
