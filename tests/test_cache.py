"""The shared cache (milestones.core.cache): built once, keyed by config and code, atomic, locked."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from milestones import cli
from milestones.core import cache
from milestones.core.data import shakespeare
from milestones.core.errors import UserError


@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MILESTONES_CACHE", str(tmp_path / "cache"))


def write_random(folder: Path, config: dict) -> None:
    (folder / "numbers.json").write_text(json.dumps(torch.rand(config["n"]).tolist()))


def test_an_entry_is_built_once_and_served_after():
    calls = []

    def build(folder, config):
        calls.append(config)
        write_random(folder, config)

    first = cache.cached("numbers", {"n": 3}, [shakespeare], build)
    second = cache.cached("numbers", {"n": 3}, [shakespeare], build)
    assert first == second and calls == [{"n": 3}]
    assert json.loads((first / cache.ENTRY_FILE).read_text())["recipe"] == "numbers"
    other = cache.cached("numbers", {"n": 4}, [shakespeare], build)  # another config is another entry
    assert other != first and len(calls) == 2
    assert [e["name"] for e in cache.entries()] == sorted([first.name, other.name])


def test_the_key_changes_with_the_code():
    assert cache.key("numbers", {"n": 3}, [shakespeare]) != cache.key("numbers", {"n": 3}, [cache])


def test_a_build_is_deterministic_and_leaves_the_callers_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(2)
    torch.manual_seed(123)
    folder = cache.cached("numbers", {"n": 3}, [shakespeare], write_random)
    assert torch.equal(torch.rand(2), expected)  # as if the cache had been warm
    built = json.loads((folder / "numbers.json").read_text())
    cache.clear()
    folder = cache.cached("numbers", {"n": 3}, [shakespeare], write_random)
    assert json.loads((folder / "numbers.json").read_text()) == built


def test_a_crashed_build_leaves_no_entry():
    def crash(folder, config):
        (folder / "half.json").write_text("{")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        cache.cached("numbers", {"n": 3}, [shakespeare], crash)
    assert cache.entries() == [] and list(cache.root().glob("*.building")) == []
    assert (cache.cached("numbers", {"n": 3}, [shakespeare], write_random) / "numbers.json").is_file()


def test_two_processes_asking_at_once_build_once(tmp_path):
    log = tmp_path / "builds.txt"
    script = f"""
import time
from pathlib import Path
from milestones.core import cache
from milestones.core.errors import UserError
from milestones.core.data import shakespeare
def build(folder, config):
    with open({str(log)!r}, "a") as f:
        f.write("built\\n")
    time.sleep(1.0)
    (folder / "done.txt").write_text("yes")
print(cache.cached("slow", {{}}, [shakespeare], build))
"""
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outputs[0] == outputs[1] and log.read_text() == "built\n"


def test_an_unwritable_cache_folder_is_a_user_error(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("MILESTONES_CACHE", str(blocker / "cache"))
    with pytest.raises(UserError, match="MILESTONES_CACHE"):
        cache.cached("numbers", {"n": 3}, [shakespeare], write_random)


def test_recording_names_the_entries_a_run_used():
    with cache.recording() as used:
        cache.cached("numbers", {"n": 3}, [shakespeare], write_random)
        cache.cached("numbers", {"n": 3}, [shakespeare], write_random)
    assert used == [cache.key("numbers", {"n": 3}, [shakespeare])]


def test_the_cache_command_lists_and_clears(capsys):
    name = cache.cached("numbers", {"n": 3}, [shakespeare], write_random).name
    assert cli.main(["cache", "list"]) == 0
    assert name in capsys.readouterr().out
    assert cli.main(["cache", "clear"]) == 0
    assert "removed 1 entries" in capsys.readouterr().out and cache.entries() == []


def test_prune_keeps_the_newest_build_of_each_recipe_and_config(capsys):
    old = cache.cached("numbers", {"n": 3}, [shakespeare], write_random).name
    other_config = cache.cached("numbers", {"n": 4}, [shakespeare], write_random).name
    new = cache.cached("numbers", {"n": 3}, [cache], write_random).name  # the same recipe after a code change
    assert cli.main(["cache", "prune"]) == 0
    assert old in capsys.readouterr().out
    assert {e["name"] for e in cache.entries()} == {new, other_config}
    assert not (cache.root() / f"{old}.lock").exists()
    assert cache.prune() == []


def test_a_build_asked_for_under_no_grad_still_trains():
    def build(folder, config):
        w = torch.ones(1, requires_grad=True)
        (w * 2).sum().backward()  # fails without gradients
        (folder / "grad.json").write_text(json.dumps(w.grad.item()))

    with torch.no_grad():
        folder = cache.cached("trains", {}, [shakespeare], build)
    assert json.loads((folder / "grad.json").read_text()) == 2.0
