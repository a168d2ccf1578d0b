"""Words per second of our word2vec and gensim's, at the same settings and on the same corpus, with
the analogy accuracy each reaches (for `milestones bench`; gensim is optional)."""

from __future__ import annotations

import tempfile
import time

import torch

from milestones.core import Run
from milestones.core.data.analogies import make_analogy_corpus
from milestones.sequences.word2vec.experiment import accuracies, train_word2vec
from milestones.sequences.word2vec.model import Vocabulary, analogy_answers, join_phrases


def benchmark(quick: bool = False) -> list[dict]:
    """Skip-gram, negative sampling (k=5), subsampling 1e-3, window 5, 50 dimensions, on the synthetic
    analogy corpus. Words/s counts the corpus tokens times the epochs; our time is the training loop
    (examples prepared beforehand), gensim's the whole call, with one worker thread."""
    from gensim.models import Word2Vec as GensimWord2Vec

    sentences, epochs, dim, seed = (2000, 1, 50, 0) if quick else (20000, 5, 50, 0)
    corpus = make_analogy_corpus(sentences, seed=seed)
    text = join_phrases(corpus.sentences, set(corpus.names))
    vocab = Vocabulary(text, 5)
    words = corpus.n_words * epochs
    questions = [q for qs in corpus.questions.values() for q in qs]
    with tempfile.TemporaryDirectory() as out:
        ctx = Run(out + "/run", seed=seed, quiet=True)
        ctx.reseed(1)
        model, info = train_word2vec(ctx, "bench", vocab, text, "skipgram", dim=dim, window=5, negatives=5,
                                     sample=1e-3, epochs=epochs, batch=1024, lr=0.2)
    ours_accuracy = accuracies(model, vocab, corpus, set())["all"]
    start = time.perf_counter()
    theirs = GensimWord2Vec(text, sg=1, vector_size=dim, window=5, negative=5, sample=1e-3, epochs=epochs,
                            min_count=5, workers=1, seed=seed)
    seconds = time.perf_counter() - start
    outcomes, _ = analogy_answers(torch.from_numpy(theirs.wv.vectors), theirs.wv.key_to_index, questions)
    ours_rate, their_rate = words / info["seconds"], words / seconds
    return [{"case": f"skip-gram training; analogy accuracy ours {ours_accuracy:.3f}, "
                     f"gensim {sum(outcomes) / len(questions):.3f}",
             "ours": ours_rate, "reference": their_rate, "reference_name": "gensim", "unit": "words/s",
             "slowdown": their_rate / ours_rate}]
