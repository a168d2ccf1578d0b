"""Where each paper's files live, and its status computed from them (never typed by hand)."""

from __future__ import annotations

import difflib
import importlib
import json
from dataclasses import dataclass
from pathlib import Path

from milestones import catalog
from milestones.core.errors import UserError

PACKAGE = Path(__file__).resolve().parent  # src/milestones
TESTS = PACKAGE.parents[1] / "tests" / "equivalence"  # present in a source checkout


def lookup(paper_id: str) -> catalog.Paper:
    """The catalog entry, or a `UserError` that suggests the closest ids."""
    try:
        return catalog.get(paper_id)
    except KeyError:
        close = difflib.get_close_matches(paper_id, catalog.ids(), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; `milestones list` shows them all"
        raise UserError(f"unknown paper {paper_id!r}{hint}") from None


def folder(paper: catalog.Paper) -> Path:
    return PACKAGE / paper.era / paper.id


def parts(paper: catalog.Paper, where: Path | None = None, tests: Path = TESTS) -> dict[str, bool]:
    """Which of the four parts exist. `where` (the paper's source folder, default `folder(paper)`) and
    `tests` exist so that the book can be built from a fixture catalog kept outside the package."""
    where = where or folder(paper)
    return {
        "notes": (where / "notes.md").is_file(),
        "model": (where / "model.py").is_file(),
        "equivalence_test": (tests / f"test_{paper.id}.py").is_file(),
        "experiment": (where / "experiment.py").is_file(),
    }


def status(paper: catalog.Paper, results: dict | None = None) -> dict:
    """Which of the four parts exist, and the verdict of the paper's latest run (None if never run)."""
    latest = (results or {}).get(paper.id)
    found = parts(paper)
    return found | {"implemented": all(found.values()), "verdict": verdict_text(latest) if latest else None}


PARTLY = "partly reproduces"  # the start of a partial verdict, "partly reproduces (K of N checks)"
CUSTOM_CONFIG = "custom config, not the reference run"  # the mark of a run with --set overrides


def failing_checks(result: dict) -> list[str]:
    """The names of a result.json's failing checks (what they measure, for a check with no name)."""
    return [str(c.get("name") or c.get("what", "")) for c in result.get("checks") or []
            if isinstance(c, dict) and c.get("holds") is not True]


def verdict_text(result: dict) -> str:
    """A result.json's verdict as the command line shows it: the failing checks of a partial verdict
    by name, and a mark on a run whose config was changed with --set."""
    text = str(result.get("verdict"))
    if text.startswith(PARTLY):
        text += f"; fails {', '.join(failing_checks(result))}"
    if result.get("overrides"):
        text += f"; {CUSTOM_CONFIG}"
    return text


def over_seeds(runs: list[dict]) -> dict:
    """One paper's runs on several seeds (result.json dicts, or reproduce's rows of crashed runs, each with
    its "seed"), folded into one verdict: how many seeds each check holds on, and

        "holds on N of N seeds"                         every check holds on every seed;
        "partly reproduces: K of M checks on every seed"  the same checks hold on every seed, not all;
        "does not hold on any of N seeds"               no evidence check holds, or a control fails, on every seed;
        "unstable: X holds on 1 of 3; ..."              a check's outcome depends on the seed;
        "error on seeds ..."                            a run crashed.

    Checks are matched by their place in the list (a check's text may hold a number that varies with the
    seed) and named as on the first seed that ran. `stable` is what the seed rule of CONTRIBUTING.md asks for."""
    seeds = [run.get("seed") for run in runs]
    crashed = [run.get("seed") for run in runs if run.get("verdict") == "error"]

    def held(run: dict, k: int) -> bool:
        found = run.get("checks") or []  # a crashed run has none
        return k < len(found) and found[k].get("holds") is True

    first = next((run["checks"] for run in runs if run.get("checks")), [])
    checks = [{"check": str(c.get("name") or c.get("what", "")), "control": bool(c.get("control")),
               "holds_on": sum(held(run, k) for run in runs)} for k, c in enumerate(first)]
    n = len(runs)
    unstable = [c for c in checks if 0 < c["holds_on"] < n]
    if crashed:
        verdict = f"error on seed{'s' if len(crashed) > 1 else ''} {', '.join(map(str, crashed))}"
    elif unstable:
        verdict = "unstable: " + "; ".join(f"{c['check']} holds on {c['holds_on']} of {n}" for c in unstable)
    else:
        evidence = [c for c in checks if not c["control"]]
        always = sum(c["holds_on"] == n for c in evidence)  # evidence checks that hold on every seed
        if checks and all(c["holds_on"] == n for c in checks):
            verdict = f"holds on {n} of {n} seeds"
        elif always == 0 or any(c["control"] and c["holds_on"] == 0 for c in checks):
            verdict = f"does not hold on any of {n} seeds"
        else:
            verdict = f"partly reproduces: {always} of {len(evidence)} checks on every seed"
    return {"seeds": seeds, "verdict": verdict, "stable": not crashed and not unstable, "checks": checks}


def implemented() -> list[catalog.Paper]:
    """Papers with an experiment, in history order."""
    return [p for p in catalog.PAPERS if (folder(p) / "experiment.py").is_file()]


def load_experiment(paper: catalog.Paper):
    """The paper's decorated `run` function (see `milestones.core.experiment`)."""
    if not (folder(paper) / "experiment.py").is_file():
        raise UserError(f"{paper.id} is in the catalog but has no experiment yet; "
                        "`milestones list` marks the implemented papers")
    return importlib.import_module(f"{paper.module}.experiment").run


@dataclass(frozen=True)
class LatestRun:
    """A paper's most recent result.json and the run folder that holds it (and the run's artifacts)."""

    result: dict
    folder: Path


def latest_runs(root: Path = Path("runs")) -> dict[str, LatestRun]:
    """The most recent result.json of each paper under `root`, by file modification time (sorted
    paths make a tie go the same way on every machine)."""
    found: dict[str, tuple[float, LatestRun]] = {}
    for path in sorted(root.glob("**/result.json")) if root.is_dir() else ():
        try:
            result = json.loads(path.read_text())
            paper, mtime = result["paper"], path.stat().st_mtime
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a damaged or foreign file is not a result
        if isinstance(paper, str) and (paper not in found or mtime > found[paper][0]):
            found[paper] = (mtime, LatestRun(result, path.parent))
    return {paper: run for paper, (_, run) in found.items()}


def latest_results(root: Path = Path("runs")) -> dict[str, dict]:
    """The most recent result.json of each paper under `root` (see `latest_runs`)."""
    return {paper: run.result for paper, run in latest_runs(root).items()}
