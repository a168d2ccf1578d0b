"""One cache for what several papers build and then share: tokenizers, tokenized corpora, pretrained models.

The paper that introduces a thing owns its recipe (a function that builds it into a folder); this
module owns where it is kept and when it is rebuilt. An entry is a folder

    $MILESTONES_CACHE/<recipe>-<digest>/      (default ~/.cache/milestones)
        entry.json                            the recipe's name, config, code files, build time
        ...                                   whatever the recipe wrote (safetensors, JSON, token files)

whose digest hashes the recipe's config and the source of the code that builds it, so a change to
either builds a new entry instead of serving a stale one. An entry is built once: the builder holds
an exclusive file lock (two test processes asking at once build it once, the second waits and reads
it), writes into a temporary folder and renames it into place, so a crash leaves no half entry.
The build runs with its own seeded random state, so a run that finds the entry built behaves exactly
like one that had to build it. `milestones cache list|prune|clear` shows the cache, deletes the
entries that newer code superseded, or empties it; each `result.json` lists the entries its run used.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from types import ModuleType

import torch

from milestones.core.errors import UserError

ENTRY_FILE = "entry.json"
_used: list[str] | None = None  # the entries used since `recording()` began, or None outside a run


def root() -> Path:
    return Path(os.environ.get("MILESTONES_CACHE") or Path.home() / ".cache" / "milestones")


def key(recipe: str, config: dict, code: Sequence[ModuleType]) -> str:
    """`recipe-digest`, the digest covering the config and the source files of the code that builds it."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for module in code:
        digest.update(Path(inspect.getsourcefile(module)).read_bytes())
    return f"{recipe}-{digest.hexdigest()[:12]}"


def cached(recipe: str, config: dict, code: Sequence[ModuleType], build: Callable[[Path, dict], None]) -> Path:
    """The folder of the entry for (recipe, config, code), calling `build(folder, config)` first if absent.

    `build` must be deterministic given the config; it runs under `torch.manual_seed(0)` with the
    caller's torch random state saved and restored around it, and with gradients enabled whatever the
    caller's mode (a model first asked for inside `torch.no_grad()` still trains).
    """
    name = key(recipe, config, code)
    folder = root() / name
    if not (folder / ENTRY_FILE).is_file():
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create the cache folder {folder.parent} ({e.strerror}); "
                            "set MILESTONES_CACHE to a writable folder") from None
        with exclusive(folder.parent / f"{name}.lock"):
            if not (folder / ENTRY_FILE).is_file():  # another process may have built it while we waited
                _build(folder, recipe, config, code, build)
    if _used is not None and name not in _used:
        _used.append(name)
    return folder


@contextlib.contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_path` (created if absent) for the block: one process at a time builds.
    The operating system releases it when the file closes, also when the process dies."""
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _build(folder: Path, recipe: str, config: dict, code: Sequence[ModuleType],
           build: Callable[[Path, dict], None]) -> None:
    tmp = folder.with_name(folder.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)  # the remains of a build that crashed
    tmp.mkdir()
    start = time.perf_counter()
    try:
        with torch.random.fork_rng(devices=[]), torch.enable_grad():  # a caller under no_grad may ask
            torch.manual_seed(0)
            build(tmp, config)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    entry = {"recipe": recipe, "config": config, "code": [m.__name__ for m in code],
             "created": datetime.now().isoformat(timespec="seconds"),
             "build_s": round(time.perf_counter() - start, 2)}
    (tmp / ENTRY_FILE).write_text(json.dumps(entry, indent=2) + "\n")
    shutil.rmtree(folder, ignore_errors=True)  # an entry folder without entry.json is not an entry
    os.replace(tmp, folder)


@contextlib.contextmanager
def recording() -> Iterator[list[str]]:
    """Collect the names of the entries used inside the block (the experiment wrapper puts them in result.json)."""
    global _used
    outer, _used = _used, []
    try:
        yield _used
    finally:
        _used = outer


def entries() -> list[dict]:
    """Every complete entry: its entry.json plus "name" and "bytes"."""
    found = []
    for folder in sorted(root().glob("*")) if root().is_dir() else []:
        path = folder / ENTRY_FILE
        if folder.is_dir() and path.is_file():
            size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
            found.append(json.loads(path.read_text()) | {"name": folder.name, "bytes": size})
    return found


def clear() -> int:
    """Delete the whole cache; returns how many entries it held."""
    count = len(entries())
    shutil.rmtree(root(), ignore_errors=True)
    return count


def prune() -> list[str]:
    """Delete every entry that a later build of the same recipe and config superseded (its code changed
    since: the entries of older checkouts); returns the names removed, the newest of each kept."""
    def built_at(entry: dict) -> int:
        return (root() / entry["name"] / ENTRY_FILE).stat().st_mtime_ns

    kept, removed = set(), []
    for entry in sorted(entries(), key=built_at, reverse=True):
        group = (entry["recipe"], json.dumps(entry["config"], sort_keys=True))
        if group in kept:
            shutil.rmtree(root() / entry["name"], ignore_errors=True)
            (root() / f"{entry['name']}.lock").unlink(missing_ok=True)
            removed.append(entry["name"])
        kept.add(group)
    return removed
