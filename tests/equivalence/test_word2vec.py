"""word2vec against autograd (the loss and its gradients) and against gensim (subsampling, the noise
distribution, phrases, analogy evaluation, and the quality of the trained vectors)."""

import tempfile

import pytest
import torch
import torch.nn.functional as F
from gensim.models import Phrases
from gensim.models import Word2Vec as GensimWord2Vec
from torch.testing import assert_close

from milestones.core import Run
from milestones.core.data.analogies import make_analogy_corpus
from milestones.sequences.word2vec.experiment import accuracies, train_word2vec
from milestones.sequences.word2vec.model import (
    Vocabulary,
    Word2Vec,
    analogy_answers,
    detect_phrases,
    join_phrases,
    keep_probability,
    noise_distribution,
    phrase_scores,
)


@pytest.fixture(scope="module")
def corpus():
    return make_analogy_corpus(8000, seed=3)


@pytest.fixture(scope="module")
def joined(corpus):
    return join_phrases(corpus.sentences, set(corpus.names))


def reference_loss(v, u, inputs, targets, negatives, mask=None):
    """The same objective as logistic regression with built-ins: label 1 for the target, 0 for noise."""
    h = v[inputs] if mask is None else (v[inputs] * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    logits = torch.cat([(u[targets] * h).sum(-1, keepdim=True), torch.einsum("bkd,bd->bk", u[negatives], h)], 1)
    labels = torch.zeros_like(logits)
    labels[:, 0] = 1
    weights = torch.cat([torch.ones_like(targets[:, None]), negatives != targets[:, None]], 1).to(v.dtype)
    return F.binary_cross_entropy_with_logits(logits, labels, weight=weights, reduction="sum")


@pytest.mark.parametrize("architecture", ["skipgram", "cbow"])
def test_loss_and_gradients_match_autograd_reference(architecture):
    torch.manual_seed(0)
    vocab, dim, batch, k = 30, 8, 16, 5
    model = Word2Vec(vocab, dim, architecture).double()
    with torch.no_grad():  # output vectors start at zero; randomize them so every term is exercised
        model.output_vectors.weight.normal_(0, 0.5)
        model.input_vectors.weight.normal_(0, 0.5)
    targets = torch.randint(vocab, (batch,))
    negatives = torch.randint(vocab, (batch, k))
    negatives[0, :2] = targets[0]  # noise equal to the target must be skipped
    if architecture == "skipgram":
        inputs, mask = torch.randint(vocab, (batch,)), None
    else:
        inputs, mask = torch.randint(vocab, (batch, 6)), torch.rand(batch, 6) < 0.7
        mask[:, 0] = True
    loss = model(inputs, targets, negatives, mask)
    loss.backward()
    v = model.input_vectors.weight.detach().clone().requires_grad_()
    u = model.output_vectors.weight.detach().clone().requires_grad_()
    expected = reference_loss(v, u, inputs, targets, negatives, None if mask is None else mask.double())
    expected.backward()
    assert_close(loss, expected, rtol=1e-12, atol=1e-12)
    assert_close(model.input_vectors.weight.grad.to_dense(), v.grad, rtol=1e-12, atol=1e-12)
    assert_close(model.output_vectors.weight.grad.to_dense(), u.grad, rtol=1e-12, atol=1e-12)


def test_sgd_step_is_plain_sgd_for_rows_used_once_and_averages_repeated_rows():
    torch.manual_seed(1)
    model = Word2Vec(20, 4).double()
    with torch.no_grad():
        model.output_vectors.weight.normal_()
    inputs = torch.tensor([3, 3, 7])  # row 3 used twice, row 7 once
    targets, negatives = torch.tensor([1, 2, 4]), torch.tensor([[5], [6], [8]])
    before = model.input_vectors.weight.detach().clone()
    out_before = model.output_vectors.weight.detach().clone()
    model(inputs, targets, negatives).backward()
    grad_in = model.input_vectors.weight.grad.to_dense()
    grad_out = model.output_vectors.weight.grad.to_dense()
    model.sgd_step(0.1, inputs, targets, negatives)
    expected = before.clone()
    expected[3] -= 0.1 * grad_in[3] / 2
    expected[7] -= 0.1 * grad_in[7]
    assert_close(model.input_vectors.weight.detach(), expected, rtol=1e-12, atol=1e-12)
    assert_close(model.output_vectors.weight.detach(), out_before - 0.1 * grad_out, rtol=1e-12, atol=1e-12)
    assert not torch.equal(model.input_vectors.weight[3], before[3])


def test_subsampling_and_noise_distribution_match_gensim(joined):
    vocab = Vocabulary(joined, min_count=5)
    reference = GensimWord2Vec(joined, vector_size=8, min_count=5, sample=1e-3, negative=5, ns_exponent=0.75,
                               epochs=1, workers=1, seed=0)
    order = [reference.wv.key_to_index[w] for w in vocab.words]
    assert sorted(reference.wv.index_to_key) == sorted(vocab.words)
    gensim_keep = torch.tensor([reference.wv.get_vecattr(w, "sample_int") / 2**32 for w in vocab.words],
                               dtype=torch.float64)
    ours = keep_probability(vocab.counts, 1e-3)
    assert_close(ours, gensim_keep, rtol=0, atol=1e-9)
    assert ours.min() < 0.2  # the function words really are thinned
    cum = torch.tensor(reference.cum_table, dtype=torch.float64)
    gensim_noise = torch.diff(cum, prepend=torch.zeros(1, dtype=torch.float64)) / cum[-1]
    assert_close(noise_distribution(vocab.counts)[torch.tensor(order).argsort()], gensim_noise, rtol=0, atol=1e-8)


def test_phrases_match_gensim(corpus):
    delta, threshold = 10, 10
    reference = Phrases(corpus.sentences, min_count=delta, threshold=threshold, scoring="default")
    gensim_found = reference.export_phrases()
    ours = phrase_scores(corpus.sentences, delta)
    found = detect_phrases(corpus.sentences, delta, threshold)
    assert {"_".join(p) for p in found} == set(gensim_found)
    assert found == set(corpus.names)
    for phrase, score in gensim_found.items():
        assert ours[tuple(phrase.split("_"))] == pytest.approx(score, rel=1e-12)
    frozen = reference.freeze()
    for sentence in corpus.sentences[:2000]:
        assert join_phrases([sentence], found)[0] == frozen[sentence]


@pytest.fixture(scope="module")
def trained(corpus, joined):
    """Ours and gensim's skip-gram, same corpus and settings, 5 epochs."""
    settings = dict(dim=32, window=5, negatives=5, sample=1e-3, epochs=5)
    vocab = Vocabulary(joined, 5)
    with tempfile.TemporaryDirectory() as out:
        ctx = Run(out + "/run", seed=0, quiet=True)
        ctx.reseed(1)
        ours, _ = train_word2vec(ctx, "sg", vocab, joined, "skipgram", batch=1024, lr=0.2, **settings)
    theirs = GensimWord2Vec(joined, sg=1, vector_size=32, window=5, negative=5, sample=1e-3, epochs=5,
                            min_count=5, alpha=0.025, workers=1, seed=0)
    return vocab, ours, theirs


def test_analogy_evaluation_matches_gensim(corpus, trained, tmp_path):
    _, _, theirs = trained
    path = tmp_path / "questions.txt"
    path.write_text(corpus.questions_text())
    gensim_score, sections = theirs.wv.evaluate_word_analogies(str(path), case_insensitive=False)
    questions = [q for qs in corpus.questions.values() for q in qs]
    outcomes, skipped = analogy_answers(torch.from_numpy(theirs.wv.vectors), theirs.wv.key_to_index, questions)
    assert skipped == 0
    assert sum(outcomes) / len(outcomes) == pytest.approx(gensim_score, abs=1e-12)
    assert 0.05 < gensim_score  # the vectors learned something, so the comparison is not 0 == 0


def test_our_vectors_are_as_good_as_gensims(corpus, trained):
    """Same corpus, same settings: our analogy accuracy is within 0.10 of gensim's (or better)."""
    vocab, ours, theirs = trained
    our_accuracy = accuracies(ours, vocab, corpus, set())["all"]
    questions = [q for qs in corpus.questions.values() for q in qs]
    outcomes, _ = analogy_answers(torch.from_numpy(theirs.wv.vectors), theirs.wv.key_to_index, questions)
    gensim_accuracy = sum(outcomes) / len(questions)
    print(f"analogy accuracy: ours {our_accuracy:.3f}, gensim {gensim_accuracy:.3f}")
    assert our_accuracy >= gensim_accuracy - 0.10
