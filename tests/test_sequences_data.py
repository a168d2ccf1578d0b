"""The procedural sequence tasks in milestones.core.data.sequences: shapes, targets, grammar, seeds."""

import random
import re

import pytest
import torch

from milestones.core.data import (
    ADDING_BASELINE_MSE,
    IGNORE,
    REBER_SYMBOLS,
    adding_problem,
    continual_embedded_reber,
    copy_task,
    delayed_recall,
    embedded_reber,
    embedded_reber_strings,
    reverse_task,
    windowed_parity,
)

# The Reber grammar written independently of the module, as a regular expression.
FROM_4 = r"(?:XT*VP)*(?:S|XT*VV)"  # from the node reached by TS*X or by ...VP
REBER = rf"B(?:TS*X{FROM_4}|PT*V(?:V|P{FROM_4}))E"


def test_copy_and_reverse():
    source, target = copy_task(5, 7, vocab=4, seed=1)
    assert source.shape == (5, 7) and torch.equal(source, target) and int(source.max()) < 4
    source_r, target_r = reverse_task(5, 7, vocab=4, seed=1)
    assert torch.equal(source_r, source) and torch.equal(target_r[:, 0], source[:, -1])
    assert torch.equal(target_r.flip(1), source)


def test_delayed_recall_targets_the_token_lag_steps_back():
    x, y = delayed_recall(4, 10, lag=3, vocab=5, seed=2)
    assert (y[:, :3] == IGNORE).all()
    assert torch.equal(y[:, 3:], x[:, :7])


def test_windowed_parity():
    x, y = windowed_parity(6, 12, window=3, seed=3)
    assert (y[:, :2] == IGNORE).all()
    for t in range(2, 12):
        assert torch.equal(y[:, t], (x[:, t - 2] + x[:, t - 1] + x[:, t]) % 2)


def test_adding_problem_follows_experiment_4():
    x, y = adding_problem(2000, 50, seed=4)
    assert x.shape == (2000, 50, 2) and y.shape == (2000,)
    values, markers = x[..., 0], x[..., 1]
    assert values.min() >= -1 and values.max() <= 1 and values.min() < -0.99 and values.max() > 0.99
    marked = markers == 1
    assert torch.equal(marked.sum(1), torch.full((2000,), 2))
    assert marked[:, :10].any(1).all() and not marked[:, 24:].any()  # first among 10, second among 24
    assert (markers[:, -1] == -1).all() and ((markers[:, 0] == -1) | marked[:, 0]).all()
    assert torch.allclose(0.5 + (values * marked).sum(1) / 4, y)
    assert y.min() >= 0 and y.max() <= 1
    assert abs(((y - 0.5) ** 2).mean().item() - ADDING_BASELINE_MSE) < 0.005
    assert torch.equal(adding_problem(8, 20, seed=5)[0], adding_problem(8, 20, seed=5)[0])


def test_tasks_are_reproducible_from_the_seed():
    assert torch.equal(adding_problem(8, 20, seed=5)[0], adding_problem(8, 20, seed=5)[0])
    assert not torch.equal(adding_problem(8, 20, seed=5)[0], adding_problem(8, 20, seed=6)[0])
    assert torch.equal(continual_embedded_reber(20, seed=1).symbols, continual_embedded_reber(20, seed=1).symbols)


@pytest.mark.parametrize("seed", range(3))
def test_embedded_reber_strings_obey_the_grammar(seed):
    rng = random.Random(seed)
    for _ in range(200):
        symbols, successors = embedded_reber(rng)
        assert len(successors) == len(symbols)
        assert re.fullmatch(r"B([TP])" + REBER + r"\1E", symbols), symbols
        for nxt, following in zip(successors, symbols[1:]):  # each actual next symbol is a legal one
            assert following in nxt
        assert successors[-3] == symbols[1]  # after the inner E only the remembered branch may come


def test_both_branches_and_long_strings_occur():
    rng = random.Random(0)
    strings = [embedded_reber(rng)[0] for _ in range(500)]
    assert {s[1] for s in strings} == {"T", "P"}
    assert max(map(len, strings)) >= 15


def test_continual_stream_joins_strings_without_resets():
    stream = continual_embedded_reber(30, seed=0)
    text = "".join(REBER_SYMBOLS[i] for i in stream.symbols)
    ends = stream.string_ends.nonzero().squeeze(1)
    assert len(ends) == 30 and text.endswith("E")
    # after every end the legal next symbol is B, and B does follow
    assert (stream.next_symbols[ends] == torch.tensor([1.0, 0, 0, 0, 0, 0, 0])).all()
    assert all(text[i + 1] == "B" for i in ends[:-1].tolist())
    # each target row allows the symbol that actually comes next
    nxt = stream.symbols[1:]
    assert (stream.next_symbols[:-1].gather(1, nxt[:, None]) == 1).all()
    assert int(stream.critical.sum()) == 30
    # separate strings end with an empty successor set instead
    single = embedded_reber_strings(3, seed=0)
    assert all(s.next_symbols[-1].sum() == 0 for s in single)
