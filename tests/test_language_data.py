"""The GPT's data (gpt2/data.py): memory-mapped token files, a held-out split no batch reads, the user's
own text file (`--set data=PATH`), the LAMBADA-style cloze; and `milestones generate` on a run."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from milestones import cli
from milestones.core import cache
from milestones.core.errors import UserError
from milestones.transformers.gpt2 import data
from milestones.transformers.gpt2.base import paired_z
from milestones.transformers.gpt2.experiment import bigram_loss
from milestones.transformers.gpt2.experiment import run as run_gpt2

WORDS = ["castle", "Hamlet", "sword", "lady", "night", "crown", "king", "ghost", "poison", "queen"]


def write_text(path, seed=0, lines=4000):
    rng = np.random.default_rng(seed)
    path.write_text("".join(" ".join(rng.choice(WORDS, 8)) + ".\n" for _ in range(lines)), encoding="utf-8")
    return path


def test_a_text_file_is_tokenized_once_into_the_cache_by_its_content_and_left_alone(tmp_path):
    folder = tmp_path / "texts"
    folder.mkdir()
    path = write_text(folder / "plays.txt")
    corpus = data.text_file_corpus(path, vocab_size=300)
    assert isinstance(corpus.tokens, np.memmap) and corpus.tokens.dtype == np.uint16
    assert corpus.tokenizer.decode(corpus.tokens.tolist()) == path.read_text() + "<|endoftext|>"
    assert corpus.source == str(path)
    assert [p.name for p in folder.iterdir()] == ["plays.txt"]  # nothing written beside the user's file
    tokens_file = Path(corpus.tokens.filename)
    assert tokens_file.is_relative_to(cache.root()) and (tokens_file.parent / "tokenizer.json").is_file()
    built = tokens_file.stat().st_mtime_ns
    assert Path(data.text_file_corpus(path, vocab_size=300).tokens.filename) == tokens_file
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched: same text, new time stamp
    assert Path(data.text_file_corpus(path, vocab_size=300).tokens.filename) == tokens_file
    copy = shutil.copy(path, tmp_path / "copy.txt")  # the same text under another name
    assert Path(data.text_file_corpus(copy, vocab_size=300).tokens.filename) == tokens_file
    assert tokens_file.stat().st_mtime_ns == built  # not tokenized again
    write_text(path, seed=1)
    changed = data.text_file_corpus(path, vocab_size=300)
    assert Path(changed.tokens.filename) != tokens_file and tokens_file.stat().st_mtime_ns == built
    assert changed.tokenizer.decode(changed.tokens.tolist()).startswith(path.read_text()[:100])
    assert [p.name for p in folder.iterdir()] == ["plays.txt"]


def test_a_small_text_still_has_a_held_out_part_and_a_tiny_one_is_a_user_error(tmp_path):
    small = data.text_file_corpus(write_text(tmp_path / "small.txt", lines=300), vocab_size=300)
    assert len(small.tokens) < 20 * data.BLOCK and len(small.blocks(held_out=True)) >= 2
    assert small.held_out(16, 8)[0].shape == (8, 16) and small.batch(4, 16)[0].shape == (4, 16)
    tiny = data.text_file_corpus(write_text(tmp_path / "tiny.txt", lines=5), vocab_size=300)
    with pytest.raises(UserError, match="too short"):
        tiny.batch(4, 64)


@pytest.mark.parametrize("problem", ["missing", "empty", "vocab"])
def test_a_bad_text_file_is_a_user_error(tmp_path, problem):
    path = tmp_path / "plays.txt"
    if problem == "empty":
        path.write_text("  \n")
    elif problem == "vocab":
        write_text(path)
    with pytest.raises(UserError):
        data.text_file_corpus(path, vocab_size=70000 if problem == "vocab" else 300)


def test_no_training_window_reads_a_held_out_token(tmp_path):
    corpus = data.text_file_corpus(write_text(tmp_path / "plays.txt", lines=40000), vocab_size=300)
    held = data.Corpus(corpus.tokenizer, np.arange(len(corpus.tokens)), "positions")  # each token is its index
    held_out = {i for s, e in held.blocks(held_out=True) for i in range(s, e)}
    assert 0.03 < len(held_out) / len(held.tokens) < 0.07 and len(held.blocks(held_out=True)) >= 2
    torch.manual_seed(0)
    for _ in range(20):
        x, y = held.batch(64, 32)
        assert torch.equal(x[:, 1:], y[:, :-1]) and torch.equal(y - x, torch.ones_like(x))  # one contiguous window
        assert not held_out & set(y.flatten().tolist()) and not held_out & set(x.flatten().tolist())
    x, y = held.held_out(32, 16)
    assert set(x.flatten().tolist()) <= held_out and len(x) == 16


def test_cloze_passages_end_with_a_rare_word_they_already_contain(tmp_path):
    corpus = data.text_file_corpus(write_text(tmp_path / "plays.txt", lines=40000), vocab_size=300)
    test = data.cloze(corpus, length=40, count=50, common_words=3)
    assert 0 < len(test.words) <= 50 and test.inputs.shape == test.targets.shape == (len(test.words), 40)
    tokenizer = corpus.tokenizer
    for inputs, targets, mask, word in zip(test.inputs, test.targets, test.target_mask, test.words):
        assert torch.equal(inputs[1:], targets[:-1]) and mask[-1] and mask.sum() <= 4
        target = tokenizer.decode(targets[mask].tolist())
        passage = tokenizer.decode(inputs[:len(mask) - int(mask.sum()) + 1].tolist())
        assert target.strip() == word and len(word) >= 3 and word in passage.split()
        assert mask.sum() == len(tokenizer.encode(target))
    common = {"castle", "Hamlet", "sword", "lady", "night", "crown", "king", "ghost", "poison", "queen"}
    assert set(test.words) < common and len(set(test.words)) <= len(common) - 3  # the 3 most frequent never ask


def test_the_cloze_control_replaces_all_but_the_end_of_each_passage_with_the_next_ones():
    inputs = torch.arange(30).view(3, 10)  # three passages of 10 tokens
    mask = torch.zeros(3, 10, dtype=torch.bool)
    mask[:, -2:] = True  # targets of two tokens: the inputs hold the first, at position 9
    test = data.Cloze(inputs, inputs + 1, mask, ["a", "b", "c"])
    replaced = test.replaced(keep=3)  # positions 6, 7, 8 before the target stay, and the target's own 9
    assert torch.equal(replaced[:, 6:], inputs[:, 6:])
    assert torch.equal(replaced[:, :6], inputs.roll(-1, dims=0)[:, :6])  # the last passage takes the first's


def test_the_bigram_control_counts_pairs_and_beats_the_unigram(tmp_path):
    corpus = data.text_file_corpus(write_text(tmp_path / "plays.txt", lines=2000), vocab_size=300)
    held_out = corpus.held_out(32, 64)
    loss, strength = bigram_loss(corpus, held_out)
    unigram, _ = bigram_loss(corpus, held_out, strengths=(1e12,))  # smoothing this strong leaves the unigram
    assert strength in (0.1, 1.0, 10.0, 100.0) and 0 < loss < unigram - 0.5


def test_paired_z_is_the_mean_difference_in_standard_errors():
    differences = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    assert paired_z(differences) == pytest.approx(differences.mean() / (differences.std() / 6 ** 0.5))
    assert paired_z(torch.zeros(5)) == 0.0


def test_a_text_without_cloze_passages_stops_in_one_line_before_training(tmp_path):
    with pytest.raises(UserError, match="no passage for the zero-shot cloze"):  # its words are all common
        run_gpt2("smoke", tmp_path / "run", quiet=True,
                 overrides={"data": str(write_text(tmp_path / "plays.txt")), "vocab_size": "300"})
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_generate_streams_text_from_a_run_and_rejects_bad_input(tmp_path, capsys):
    rng = np.random.default_rng(0)
    names = ["".join(rng.choice(list("bcdfgklmnprst"), 5)).capitalize() for _ in range(300)]  # rare words
    text = tmp_path / "plays.txt"  # lines that name someone twice: passages for the cloze
    text.write_text("".join(f"{' '.join(rng.choice(WORDS, 6))}. {name} spoke, and {name} wept.\n"
                            for name in rng.choice(names, 8000)), encoding="utf-8")
    out = tmp_path / "run"
    run_gpt2("smoke", out, quiet=True, overrides={"data": str(text), "vocab_size": "300"})
    spec = json.loads((out / "model.json").read_text())
    assert (out / spec["checkpoint"]).is_file() and (out / "tokenizer.json").is_file()
    assert cli.main(["generate", str(out), "--prompt", "The king", "--tokens", "20", "--seed", "3"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("The king") and len(first) > len("The king") + 5
    assert cli.main(["generate", str(out), "--prompt", "The king", "--tokens", "20", "--seed", "3"]) == 0
    assert capsys.readouterr().out == first  # the seed decides the sample
    for argv, message in [(["--tokens", "0"], "at least 1"), (["--top-p", "1.5"], "(0, 1]"),
                          (["--prompt", "x" * 400], "reads at most")]:
        assert cli.main(["generate", str(out), *argv]) == 2
        assert message in capsys.readouterr().err
    (out / "model.json").unlink()
    assert cli.main(["generate", str(out)]) == 2 and "model.json" in capsys.readouterr().err
    assert cli.main(["generate", str(tmp_path)]) == 2 and "not a run folder" in capsys.readouterr().err


def test_generate_refuses_runs_of_papers_that_make_no_samples(tmp_path, capsys):
    (tmp_path / "result.json").write_text(json.dumps({"paper": "backprop"}))
    assert cli.main(["generate", str(tmp_path)]) == 2 and "make no samples" in capsys.readouterr().err
