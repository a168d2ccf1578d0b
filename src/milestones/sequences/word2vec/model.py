"""word2vec (Mikolov et al. 2013): skip-gram and CBOW with negative sampling, subsampling of
frequent words, and phrase detection.

The two log-linear models of the first paper keep nothing of a neural language model but two
tables of vectors: an *input* vector v_w and an *output* vector u_w for every word w.

- Skip-gram predicts each context word c from the centre word w:  score(w, c) = u_c . v_w
- CBOW predicts the centre word w from the mean of its context:   score(w, ctx) = u_w . mean_c v_c

The second paper replaces the softmax over the whole vocabulary by *negative sampling*: for each
true (input, target) pair, draw k "noise" words n_1..n_k from the unigram distribution raised to
the 3/4 power, and maximise

    log sigma(u_target . h) + sum_i log sigma(-u_{n_i} . h)          (h: the input's vector)

i.e. logistic regression telling the true target from noise. It also *subsamples* frequent
words: each occurrence of a word of corpus frequency f (as a fraction of all tokens) is kept with
probability

    P_keep(w) = (sqrt(f / t) + 1) * t / f          (capped at 1; t = `sample`, e.g. 1e-3)

which is the formula of the released C code and of gensim; the paper writes the discard
probability as 1 - sqrt(t / f), which has the same shape. And it joins word pairs that occur
together much more often than chance into single tokens ("new york" -> "new_york"), by the score

    score(a, b) = (count(a b) - delta) / (count(a) * count(b))

where the discount delta keeps pairs of rare words from scoring high by accident.

Everything is vectorized: training pairs for a whole epoch are built with tensor operations, and
one optimizer step updates a batch of pairs at once.
Checked against autograd and gensim in tests/equivalence/test_word2vec.py.
"""

from __future__ import annotations

from collections import Counter

import torch
import torch.nn.functional as F
from torch import nn

# --- the vocabulary, subsampling and the noise distribution ------------------------------------


class Vocabulary:
    """Words seen at least `min_count` times, most frequent first (ties alphabetical), with counts."""

    def __init__(self, sentences: list[list[str]], min_count: int = 5):
        counts = Counter(word for sentence in sentences for word in sentence)
        self.words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        self.index = {word: i for i, word in enumerate(self.words)}
        self.counts = torch.tensor([counts[w] for w in self.words], dtype=torch.float64)  # (V,)

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, sentences: list[list[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        """All in-vocabulary tokens as one flat id tensor (N,), and the sentence each came from (N,).
        Out-of-vocabulary words are dropped before windows are taken, as in word2vec."""
        ids, sentence_ids = [], []
        for s, sentence in enumerate(sentences):
            kept = [self.index[w] for w in sentence if w in self.index]
            ids += kept
            sentence_ids += [s] * len(kept)
        return torch.tensor(ids, dtype=torch.int64), torch.tensor(sentence_ids, dtype=torch.int64)


def keep_probability(counts: torch.Tensor, sample: float) -> torch.Tensor:
    """P_keep(w) = (sqrt(f / t) + 1) t / f, capped at 1, with f = count / total; 1 for all if sample = 0."""
    if sample <= 0:
        return torch.ones_like(counts)
    threshold = sample * counts.sum()  # t in counts rather than frequencies
    return ((counts / threshold).sqrt() + 1).mul(threshold / counts).clamp(max=1.0)


def noise_distribution(counts: torch.Tensor, power: float = 0.75) -> torch.Tensor:
    """P_noise(w) = count(w)^(3/4) / sum_v count(v)^(3/4): flatter than the unigram distribution,
    so rare words are drawn as negatives more often than their frequency."""
    weights = counts.pow(power)
    return weights / weights.sum()


def draw_negatives(cumulative: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Ids drawn from the noise distribution, by inverting its cumulative sum (as gensim's cum_table)."""
    return torch.searchsorted(cumulative, torch.rand(shape, dtype=cumulative.dtype) * cumulative[-1], right=True)


# --- training examples for one epoch ----------------------------------------------------------


def subsample(ids: torch.Tensor, sentence_ids: torch.Tensor, keep: torch.Tensor,
              generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop each token with probability 1 - keep[token], before windows are taken: the words left
    become each other's neighbours, so the effective window widens past the dropped ones."""
    kept = torch.rand(len(ids), generator=generator, dtype=torch.float64) < keep[ids]
    return ids[kept], sentence_ids[kept]


def window_offsets(ids: torch.Tensor, sentence_ids: torch.Tensor, window: int,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """For every token, the positions of its context words: (N, 2*window) positions and a mask.

    As in word2vec, each centre word draws its own window size b uniformly from 1..window, so that
    near neighbours are used more often than far ones; windows do not cross sentence boundaries.
    """
    n = len(ids)
    reach = torch.randint(1, window + 1, (n,), generator=generator)  # (N,) b for each centre
    offsets = torch.cat([torch.arange(-window, 0), torch.arange(1, window + 1)])  # (2W,)
    positions = torch.arange(n)[:, None] + offsets  # (N, 2W)
    inside = (positions >= 0) & (positions < n)
    positions = positions.clamp(0, max(n - 1, 0))
    mask = inside & (sentence_ids[positions] == sentence_ids[:, None]) & (offsets.abs() <= reach[:, None])
    return positions, mask


def skipgram_examples(ids: torch.Tensor, sentence_ids: torch.Tensor, window: int,
                      generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (centre, context) pair of the epoch, in corpus order: two (P,) id tensors."""
    positions, mask = window_offsets(ids, sentence_ids, window, generator)
    centres = ids[:, None].expand_as(positions)
    return centres[mask], ids[positions][mask]


def cbow_examples(ids: torch.Tensor, sentence_ids: torch.Tensor, window: int,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every centre word with its context: centres (P,), context ids (P, 2W) and their mask (P, 2W);
    centres with no context word left (a one-word sentence) are skipped."""
    positions, mask = window_offsets(ids, sentence_ids, window, generator)
    has_context = mask.any(1)
    return ids[has_context], ids[positions][has_context], mask[has_context]


# --- the model ----------------------------------------------------------------------------------


class Word2Vec(nn.Module):
    """Input vectors v (the word vectors we keep) and output vectors u, trained by negative sampling.

    `architecture` is "skipgram" (the input is one centre word, the target one context word) or
    "cbow" (the input is the mean of the context words' vectors, the target the centre word).
    A step moves only the rows of the words in the batch: the others have a zero gradient. The tables
    are dense (as is their gradient) because our vocabularies are small, a few hundred words, where a
    dense (V, D) gradient costs less than a sparse one; a real vocabulary of millions would want
    `sparse=True` and the same step on the gradient's rows.
    """

    def __init__(self, vocab_size: int, dim: int, architecture: str = "skipgram"):
        super().__init__()
        if architecture not in ("skipgram", "cbow"):
            raise ValueError(f"architecture must be 'skipgram' or 'cbow', got {architecture!r}")
        self.architecture = architecture
        self.input_vectors = nn.Embedding(vocab_size, dim)  # v_w
        self.output_vectors = nn.Embedding(vocab_size, dim)  # u_w
        # The C code's initialisation: small random input vectors, zero output vectors.
        nn.init.uniform_(self.input_vectors.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.output_vectors.weight)

    def hidden(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """h: the input word's vector (B,) -> (B, D), or the mean of the context vectors (B, 2W) -> (B, D)."""
        if self.architecture == "skipgram":
            return self.input_vectors(inputs)
        weights = mask.to(self.input_vectors.weight.dtype)  # (B, 2W)
        total = (self.input_vectors(inputs) * weights[..., None]).sum(1)  # (B, D)
        return total / weights.sum(1, keepdim=True)

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor, negatives: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """The negative-sampling loss, summed over the batch (each pair weighs as one SGD step):

            -sum_pairs [ log sigma(u_target . h) + sum_k log sigma(-u_{n_k} . h) ]

        targets: (B,); negatives: (B, K). A noise word equal to the target is skipped, as in word2vec.
        """
        h = self.hidden(inputs, mask)  # (B, D)
        positive = (self.output_vectors(targets) * h).sum(-1)  # (B,)
        # a product and a sum, not bmm: on a CPU, bmm over B tiny (K, D) @ (D, 1) products is several times slower
        negative = (self.output_vectors(negatives) * h[:, None, :]).sum(-1)  # (B, K)
        not_target = (negatives != targets[:, None]).to(h.dtype)
        return -(F.logsigmoid(positive) + (F.logsigmoid(-negative) * not_target).sum(-1)).sum()

    @torch.no_grad()
    def sgd_step(self, lr: float, inputs: torch.Tensor, targets: torch.Tensor, negatives: torch.Tensor,
                 mask: torch.Tensor | None = None) -> None:
        """One SGD step on the rows the batch used; a row used m times moves by -lr times the *mean*
        of its m gradients.

        word2vec updates after every pair, so a frequent word's successive updates see each other.
        Summing a whole batch's gradients instead would move "the" by hundreds of steps at once and
        blow up; averaging per row keeps a rare word's update exactly the per-pair one and tames the
        frequent words' (see notes.md).
        """
        used_inputs = inputs if mask is None else inputs[mask]
        for table, used in ((self.input_vectors.weight, used_inputs),
                            (self.output_vectors.weight, torch.cat([targets, negatives.flatten()]))):
            uses = torch.bincount(used.flatten(), minlength=len(table)).clamp(min=1)  # (V,) 1 for unused rows
            table.sub_(table.grad / uses[:, None].to(table.dtype), alpha=lr)  # grad: (V, D), each row summed
            table.grad = None

    @torch.no_grad()
    def vectors(self) -> torch.Tensor:
        """The word vectors (V, D): the input table, as the paper keeps."""
        return self.input_vectors.weight.detach().clone()


class RowMeanSGD(torch.optim.Optimizer):
    """`Word2Vec.sgd_step` as a torch optimizer, so that the shared training loop and a learning-rate
    schedule drive it like any other. Its step needs the batch's rows: name them with `use` first."""

    def __init__(self, model: Word2Vec, lr: float):
        super().__init__(model.parameters(), {"lr": lr})
        self.model = model
        self.rows: tuple = ()

    def use(self, inputs: torch.Tensor, targets: torch.Tensor, negatives: torch.Tensor,
            mask: torch.Tensor | None = None) -> None:
        self.rows = (inputs, targets, negatives, mask)

    def step(self, closure=None) -> None:
        self.model.sgd_step(self.param_groups[0]["lr"], *self.rows)


# --- evaluation: analogies by vector offset -------------------------------------------------------


@torch.no_grad()
def analogy_answers(vectors: torch.Tensor, index: dict[str, int],
                    questions: list[tuple[str, str, str, str]]) -> tuple[list[bool], int]:
    """For each question "a is to b as c is to d" whose words are all known, whether the word whose
    unit vector has the largest cosine with  b - a + c  (unit vectors; a, b, c themselves excluded)
    is d ("3CosAdd", as the paper and gensim). Returns the outcomes and the number skipped."""
    known = [q for q in questions if all(w in index for w in q)]
    if not known:
        return [], len(questions)
    unit = F.normalize(vectors.double(), dim=1)  # (V, D)
    ids = torch.tensor([[index[w] for w in q] for q in known])  # (Q, 4)
    query = unit[ids[:, 1]] - unit[ids[:, 0]] + unit[ids[:, 2]]  # (Q, D)
    similarity = F.normalize(query, dim=1) @ unit.T  # (Q, V)
    similarity.scatter_(1, ids[:, :3], float("-inf"))
    return (similarity.argmax(1) == ids[:, 3]).tolist(), len(questions) - len(known)


# --- phrases --------------------------------------------------------------------------------------


def phrase_scores(sentences: list[list[str]], delta: float) -> dict[tuple[str, str], float]:
    """score(a, b) = (count(a b) - delta) / (count(a) count(b)) * S for every adjacent pair.

    S, the number of distinct words plus distinct pairs, is a constant (gensim's scaling) that only
    sets the unit of the threshold; the ranking of pairs is the paper's.
    """
    words = Counter(w for s in sentences for w in s)
    pairs = Counter(pair for s in sentences for pair in zip(s, s[1:]))
    scale = len(words) + len(pairs)
    return {(a, b): (n - delta) / (words[a] * words[b]) * scale for (a, b), n in pairs.items()}


def detect_phrases(sentences: list[list[str]], delta: float = 5, threshold: float = 10) -> set[tuple[str, str]]:
    """The pairs scoring above `threshold`. The paper runs 2-4 passes of detect-and-join with a
    falling threshold to grow longer phrases; one pass finds two-word names."""
    return {pair for pair, score in phrase_scores(sentences, delta).items() if score > threshold}


def join_phrases(sentences: list[list[str]], phrases: set[tuple[str, str]], delimiter: str = "_") -> list[list[str]]:
    """Replace each detected pair by one token "a_b", scanning left to right (a word joins at most once)."""
    joined = []
    for sentence in sentences:
        out, i = [], 0
        while i < len(sentence):
            if i + 1 < len(sentence) and (sentence[i], sentence[i + 1]) in phrases:
                out.append(sentence[i] + delimiter + sentence[i + 1])
                i += 2
            else:
                out.append(sentence[i])
                i += 1
        joined.append(out)
    return joined
