"""What the book is built from, read once before any page is written: the catalog's papers and
their files (`papers.parts`), the latest run of each (`papers.latest_runs`), the reproduce runs that
crashed, the claims of experiments that have not run yet, and the essays of lessons/*.md.

The pages ask `Sources` their questions (a paper's status, its parents and children, its line of
descent); nothing here writes HTML.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from milestones import catalog
from milestones import papers as paper_files
from milestones.book.timeline import STATUS_LABELS

LESSONS = Path(__file__).resolve().parent / "lessons"
VERDICT_STATUS = {"holds": "holds", "does not hold": "fails"}  # a run with any other verdict went wrong


@dataclass
class Lesson:
    """One essay: lessons/<NN>-<slug>.md, titled by its first heading."""

    slug: str
    title: str
    source: Path


def find_lessons(folder: Path) -> list[Lesson]:
    lessons = []
    for path in sorted(folder.glob("*.md")) if folder.is_dir() else ():
        text = path.read_text()
        m = re.search(r"^#\s+(.+)$", text, re.M)
        slug = re.sub(r"^\d+[-_]", "", path.stem)
        lessons.append(Lesson(slug, m.group(1).strip() if m else slug.replace("-", " ").title(), path))
    return lessons


def summary_rows(root: Path, key: str):
    """(modification time, row) for every row of a paper in the `key` list of each reproduce summary.json
    under `root` ("papers": one row a run; "over_seeds": one row a paper, `papers.over_seeds`)."""
    for path in root.glob("**/summary.json") if root.is_dir() else ():
        try:
            rows, mtime = json.loads(path.read_text())[key], path.stat().st_mtime
        except (OSError, ValueError, KeyError, TypeError):
            continue
        for row in rows if isinstance(rows, list) else ():
            if isinstance(row, dict) and isinstance(row.get("paper"), str):
                yield mtime, row


def crashed_runs(root: Path, have: dict[str, paper_files.LatestRun]) -> dict[str, dict]:
    """Papers whose newest reproduce run crashed (summary.json rows with verdict "error") and that
    have no newer result.json."""
    out: dict[str, tuple[float, dict]] = {}
    for mtime, row in summary_rows(root, "papers"):
        if row.get("verdict") != "error":
            continue
        run = have.get(row["paper"])
        if run and (run.folder / "result.json").stat().st_mtime >= mtime:
            continue
        if row["paper"] not in out or mtime > out[row["paper"]][0]:
            out[row["paper"]] = (mtime, row)
    return {k: v for k, (_, v) in out.items()}


def seed_verdicts(root: Path) -> dict[str, dict]:
    """Each paper's verdict over seeds from the newest reproduce run with `--seeds` that ran it."""
    out: dict[str, tuple[float, dict]] = {}
    for mtime, row in summary_rows(root, "over_seeds"):
        if isinstance(row.get("checks"), list) and (row["paper"] not in out or mtime > out[row["paper"]][0]):
            out[row["paper"]] = (mtime, row)
    return {k: v for k, (_, v) in out.items()}


def declared_claim(experiment: Path) -> str:
    """The CLAIM constant of an experiment that has not run (a run records its own claim), or "".

    It is read from the source rather than imported through `papers.load_experiment`: the book must
    build where torch is missing or an experiment does not import, and a fixture catalog's
    experiments are files outside the package that no import can reach.
    """
    try:
        tree = ast.parse(experiment.read_text(errors="replace"))
    except (OSError, SyntaxError):
        return ""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "CLAIM" for t in node.targets):
            try:
                claim = ast.literal_eval(node.value)
            except ValueError:  # built from names or an f-string: not known without running it
                return ""
            return claim if isinstance(claim, str) else ""
    return ""


@dataclass
class Sources:
    """The papers of one book and everything known about them."""

    papers: tuple[catalog.Paper, ...]
    runs: dict[str, paper_files.LatestRun]
    crashed: dict[str, dict]
    over_seeds: dict[str, dict]  # paper -> its verdict over seeds (`seed_verdicts`)
    locate: Callable[[catalog.Paper], Path]  # paper -> its source folder
    tests_dir: Path
    lessons: list[Lesson]
    runs_root: Path

    def parts(self, p: catalog.Paper) -> dict[str, bool]:
        return paper_files.parts(p, self.locate(p), self.tests_dir)

    def status(self, p: catalog.Paper) -> str:
        """One of timeline.STATUS_LABELS: holds, fails, error, implemented, partial, planned."""
        if p.id in self.runs:
            verdict = str(self.runs[p.id].result.get("verdict", ""))
            # some of its checks failed, so the claim as a whole does not hold; the pages say which
            return "fails" if verdict.startswith(paper_files.PARTLY) else VERDICT_STATUS.get(verdict, "error")
        if p.id in self.crashed:
            return "error"
        parts = self.parts(p)
        if parts["experiment"] and parts["model"]:
            return "implemented"
        return "partial" if any(parts.values()) else "planned"

    def counts(self) -> dict[str, int]:
        """How many papers have each status."""
        counts = {s: 0 for s in STATUS_LABELS}
        for p in self.papers:
            counts[self.status(p)] += 1
        return counts

    def claim(self, p: catalog.Paper) -> str:
        """The claim its experiment declares, for a paper without a run."""
        return declared_claim(self.locate(p) / "experiment.py")

    def by_id(self, paper_id: str) -> catalog.Paper | None:
        return next((p for p in self.papers if p.id == paper_id), None)

    def children(self, p: catalog.Paper) -> list[catalog.Paper]:
        return [q for q in self.papers if p.id in q.builds_on]

    def ancestry(self, p: catalog.Paper) -> list[catalog.Paper]:
        """The longest chain of builds_on links from a root down to p."""
        memo: dict[str, list[catalog.Paper]] = {}

        def longest(q: catalog.Paper) -> list[catalog.Paper]:
            if q.id not in memo:
                best: list[catalog.Paper] = []
                for parent_id in q.builds_on:
                    parent = self.by_id(parent_id)
                    if parent is not None:
                        chain = longest(parent)
                        best = chain if len(chain) > len(best) else best
                memo[q.id] = best + [q]
            return memo[q.id]

        return longest(p)


def read_sources(papers: tuple[catalog.Paper, ...], runs_root: Path, locate: Callable[[catalog.Paper], Path],
                 tests_dir: Path, lessons_dir: Path) -> Sources:
    """Everything the book of `papers` shows; runs of papers outside `papers` are left out."""
    ids = {p.id for p in papers}
    runs = {paper: run for paper, run in paper_files.latest_runs(runs_root).items() if paper in ids}
    return Sources(papers=papers, runs=runs, crashed=crashed_runs(runs_root, runs),
                   over_seeds=seed_verdicts(runs_root), locate=locate,
                   tests_dir=tests_dir, lessons=find_lessons(lessons_dir), runs_root=runs_root)
