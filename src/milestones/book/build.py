"""`milestones book`: the static HTML book. It works from disk: no server, no CDN, no JavaScript.

    build/book/
      index.html            what the project is, the timeline, the essays, every paper and its lineage
      report.html           every claim with its verdict, margin and wall time
      essays/<slug>.html    the essays of lessons/*.md
      papers/<id>.html      one page per catalog paper: facts, claim and verdict, notes, code, BibTeX
      runs/<id>/...         the artifacts (plots, samples) of each paper's latest run, copied
      assets/               style.css and the Pygments stylesheet

Everything a run wrote (claims, check names, metrics, samples) is HTML-escaped before it is shown.
Math in notes and essays is rendered to MathML here, at build time.

The builder, by job: `sources` reads what the book is built from; `layout` holds the page shell and
the output folder; `links` resolves links and copies artifacts; `results` shows a run's result;
`index_page`, `paper_page`, `report_page` and `essays` (with its `macros`) write the pages.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from milestones import catalog
from milestones import papers as paper_files
from milestones.book.essays import write_essay_page
from milestones.book.index_page import write_index_page
from milestones.book.layout import new_site, write_stylesheets
from milestones.book.paper_page import write_paper_page
from milestones.book.report_page import write_report_page
from milestones.book.sources import LESSONS, find_lessons, read_sources
from milestones.core.errors import UserError

__all__ = ["LESSONS", "Built", "build_book", "find_lessons"]  # tests find the essays through build


@dataclass
class Built:
    index: Path
    pages: list[Path]
    seconds: float


def build_book(out: Path = Path("build/book"), runs: Path = Path("runs"),
               papers: Iterable[catalog.Paper] | None = None,
               locate: Callable[[catalog.Paper], Path] | None = None,
               tests_dir: Path | None = None, lessons_dir: Path | None = None) -> Built:
    """Write the whole book into `out` (replacing an earlier book there) and return its index path.

    `runs` is a folder searched recursively for result.json files (the runs/ folder, or one
    reproduce folder); `papers`, `locate` (paper -> its source folder) and `tests_dir` default to the
    real catalog and source tree, and exist so that tests can build a book from a fixture catalog.
    """
    started = time.perf_counter()
    papers = tuple(papers if papers is not None else catalog.PAPERS)
    if not papers:
        raise UserError("the catalog is empty; there is nothing to put in a book")
    site = new_site(Path(out))
    sources = read_sources(papers, Path(runs), locate or paper_files.folder, tests_dir or paper_files.TESTS,
                           lessons_dir or LESSONS)
    write_stylesheets(site)
    write_index_page(sources, site)
    write_report_page(sources, site)
    for lesson in sources.lessons:
        write_essay_page(sources, site, lesson)
    for i, p in enumerate(papers):
        write_paper_page(sources, site, i, p)
    return Built(site.out / "index.html", site.pages, time.perf_counter() - started)
