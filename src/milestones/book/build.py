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
"""

from __future__ import annotations

import html
import json
import posixpath
import re
import shutil
import time
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable, Iterable

from milestones import catalog
from milestones import papers as paper_files
from milestones.book import markup
from milestones.book.timeline import (ERA_COLORS, FALLBACK_COLOR, SHAPES, STATUS_LABELS, legend_icon,
                                      timeline_svg)
from milestones.core.errors import UserError

MARKER = ".milestones-book"  # marks a folder as ours, so a rebuild may replace it
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}
TEXT_EXTS = {".txt", ".md", ".json", ".jsonl", ".csv", ".tsv", ".log"}
TEXT_PREVIEW_CHARS = 6000
LESSONS = Path(__file__).resolve().parent / "lessons"
_PAPER_LINK = re.compile(r"^(?:\.\./)*(?:(?P<era>[a-z_]+)/)?(?P<id>[a-z0-9_]+)/(?P<file>[\w.-]*)$")
_MACRO = re.compile(r"<!--\s*book:(?P<name>[a-z-]+)(?:\s+(?P<arg>[\w-]+))?\s*-->")
_MACRO_TOKEN = re.compile(r"(?:<p>\s*)?BOOKXMACRO(\d+)X(?:\s*</p>)?")

esc = html.escape


# ------------------------------------------------------------------------------------ inputs

@dataclass
class RunRecord:
    """The latest result.json of one paper and the folder it lives in."""

    result: dict
    folder: Path

    @property
    def verdict(self) -> str:
        return str(self.result.get("verdict", ""))


def latest_runs(root: Path) -> dict[str, RunRecord]:
    """Like `papers.latest_results`, but keeps each result's folder (its artifacts are beside it)."""
    found: dict[str, tuple[float, RunRecord]] = {}
    for path in sorted(root.glob("**/result.json")) if root.is_dir() else ():
        try:
            result = json.loads(path.read_text())
            paper, mtime = result["paper"], path.stat().st_mtime
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(paper, str) and (paper not in found or mtime > found[paper][0]):
            found[paper] = (mtime, RunRecord(result, path.parent))
    return {paper: record for paper, (_, record) in found.items()}


def crashed_runs(root: Path, have: dict[str, RunRecord]) -> dict[str, dict]:
    """Papers whose newest reproduce run crashed (summary.json rows with verdict "error") and that
    have no newer result.json."""
    out: dict[str, tuple[float, dict]] = {}
    for path in root.glob("**/summary.json") if root.is_dir() else ():
        try:
            rows, mtime = json.loads(path.read_text())["papers"], path.stat().st_mtime
        except (OSError, ValueError, KeyError, TypeError):
            continue
        for row in rows if isinstance(rows, list) else ():
            if not isinstance(row, dict) or row.get("verdict") != "error" or not isinstance(row.get("paper"), str):
                continue
            rec = have.get(row["paper"])
            if rec and (rec.folder / "result.json").stat().st_mtime >= mtime:
                continue
            if row["paper"] not in out or mtime > out[row["paper"]][0]:
                out[row["paper"]] = (mtime, row)
    return {k: v for k, (_, v) in out.items()}


@dataclass
class Lesson:
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


# ------------------------------------------------------------------------------------ the site

@dataclass
class Book:
    out: Path
    papers: tuple[catalog.Paper, ...]
    runs: dict[str, RunRecord]
    crashed: dict[str, dict]
    locate: Callable[[catalog.Paper], Path]
    tests_dir: Path
    lessons: list[Lesson]
    runs_root: Path
    eras: dict[str, str] = field(default_factory=lambda: dict(catalog.ERAS))
    pages: list[Path] = field(default_factory=list)

    # ---- facts about papers
    def parts(self, p: catalog.Paper) -> dict[str, bool]:
        where = self.locate(p)
        return {"notes": (where / "notes.md").is_file(), "model": (where / "model.py").is_file(),
                "equivalence_test": (self.tests_dir / f"test_{p.id}.py").is_file(),
                "experiment": (where / "experiment.py").is_file()}

    def status(self, p: catalog.Paper) -> str:
        """One of timeline.STATUS_LABELS: holds, fails, error, implemented, partial, planned."""
        if p.id in self.runs:
            return {"holds": "holds", "does not hold": "fails"}.get(self.runs[p.id].verdict, "error")
        if p.id in self.crashed:
            return "error"
        parts = self.parts(p)
        if parts["experiment"] and parts["model"]:
            return "implemented"
        return "partial" if any(parts.values()) else "planned"

    def children(self, p: catalog.Paper) -> list[catalog.Paper]:
        return [q for q in self.papers if p.id in q.builds_on]

    def by_id(self, paper_id: str) -> catalog.Paper | None:
        return next((p for p in self.papers if p.id == paper_id), None)

    # ---- writing
    def write(self, rel: str, body: str) -> None:
        path = self.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
        self.pages.append(path)


def _rel(from_page: str, to: str) -> str:
    """The relative URL from one site path (e.g. "papers/relu.html") to another."""
    target, _, frag = to.partition("#")
    url = posixpath.relpath(target, posixpath.dirname(from_page) or ".") if target else ""
    return url + (f"#{frag}" if frag else "")


def _page(book: Book, here: str, title: str, body: str, description: str = "") -> str:
    nav = [("index.html", "Home"), ("index.html#timeline", "Timeline"), ("index.html#papers", "Papers"),
           ("index.html#read", "Essays"), ("report.html", "Report")]
    links = "".join(f'<a href="{_rel(here, href)}"{" aria-current=page" if href == here else ""}>{esc(label)}</a>'
                    for href, label in nav)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<meta name="description" content="{esc(description or title)}">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{_rel(here, 'assets/style.css')}">
<link rel="stylesheet" href="{_rel(here, 'assets/pygments.css')}">
</head>
<body>
<header class="site-header"><div class="wrap">
<a class="brand" href="{_rel(here, 'index.html')}"><span class="brand-mark">&#9672;</span> milestones</a>
<nav>{links}</nav>
</div></header>
<main>
{body}
</main>
<footer class="site-footer"><div class="wrap">
<p><strong>milestones</strong>: the history of deep learning as working, tested PyTorch code.
Built by <code>milestones book</code>; every verdict on these pages is computed by an experiment, never typed by hand.</p>
</div></footer>
</body>
</html>
"""


def _paper_href(p: catalog.Paper) -> str:
    return f"papers/{p.id}.html"


def _paper_link(book: Book, here: str, p: catalog.Paper, text: str | None = None) -> str:
    return (f'<a href="{_rel(here, _paper_href(p))}" class="paper-link">'
            f'{esc(text if text is not None else p.id)}</a>')


def _badge(status: str) -> str:
    return f'<span class="badge badge-{status}">{esc(STATUS_LABELS.get(status, status))}</span>'


def _era_chip(book: Book, p: catalog.Paper) -> str:
    color = ERA_COLORS.get(p.era, FALLBACK_COLOR)
    return f'<span class="chip" style="--c:{color}">{esc(book.eras.get(p.era, p.era))}</span>'


def _constraint_chip(p: catalog.Paper) -> str:
    return (f'<span class="chip chip-constraint">{legend_icon(SHAPES.get(p.constraint, "circle"))}'
            f'lifted: {esc(p.constraint)}</span>')


def _fmt(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _fmt_margin(value) -> str:
    return f"{value:+.4g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "&ndash;"


def _smallest_margin(result: dict) -> float | None:
    margins = [c.get("margin") for c in result.get("checks") or [] if isinstance(c, dict)]
    margins = [m for m in margins if isinstance(m, (int, float)) and not isinstance(m, bool)]
    return min(margins) if margins else None


# ------------------------------------------------------------------------------------ link resolving

def _resolver(book: Book, here: str, source: Path, paper: catalog.Paper | None) -> markup.Resolver:
    """Map a link written in a markdown file to a page of the book; None drops it."""
    lesson_slugs = {e.source.name: e.slug for e in book.lessons} | {e.slug: e.slug for e in book.lessons}

    def resolve(kind: str, target: str) -> str | None:
        if target.startswith(("http://", "https://", "mailto:")):
            return target if kind == "a" else None  # never load an image from the network
        if target.startswith("#"):
            return target
        path, _, frag = target.partition("#")
        frag_suffix = f"#{frag}" if frag else ""
        if kind == "img":
            return _image(book, here, source, paper, path)
        if path in ("report", "report.html"):
            return _rel(here, "report.html") + frag_suffix
        if path in ("index", "index.html", "timeline"):
            return _rel(here, "index.html") + (frag_suffix or ("#timeline" if path == "timeline" else ""))
        name = posixpath.basename(path)
        if name in lesson_slugs and "/" not in path.strip("./"):
            return _rel(here, f"essays/{lesson_slugs[name]}.html") + frag_suffix
        m = _PAPER_LINK.match(path)
        if m and book.by_id(m.group("id")):
            anchor = {"notes.md": "notes", "model.py": "implementation",
                      "experiment.py": "experiment-code"}.get(m.group("file"), "")
            return _rel(here, f"papers/{m.group('id')}.html") + (frag_suffix or (f"#{anchor}" if anchor else ""))
        if paper is not None and path in ("notes.md", "model.py", "experiment.py"):
            return {"notes.md": "#notes", "model.py": "#implementation", "experiment.py": "#experiment-code"}[path]
        return None

    return resolve


def _safe_relative(name: str) -> bool:
    parts = Path(name).parts
    return bool(parts) and not Path(name).is_absolute() and ".." not in parts and "\\" not in name


def _image(book: Book, here: str, source: Path, paper: catalog.Paper | None, path: str) -> str | None:
    """An image a markdown file shows: a figure of the paper's latest run, or a file beside the source."""
    if not _safe_relative(path) or Path(path).suffix.lower() not in IMAGE_EXTS:
        return None
    if paper is not None and paper.id in book.runs:
        copied = _copy_artifact(book, paper.id, book.runs[paper.id].folder, posixpath.basename(path))
        if copied:
            return _rel(here, copied)
    local = (source.parent / path).resolve()
    if local.is_file() and source.parent.resolve() in local.parents:
        site = f"assets/figures/{(paper.id if paper else source.stem)}/{posixpath.basename(path)}"
        (book.out / site).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, book.out / site)
        return _rel(here, site)
    return None


def _copy_artifact(book: Book, paper_id: str, folder: Path, name: str) -> str | None:
    """Copy one artifact of a run into runs/<id>/ of the site; its site path, or None if unsafe/absent."""
    if not _safe_relative(name):
        return None
    src = (folder / name).resolve()
    if not src.is_file() or folder.resolve() not in src.parents:
        return None
    site = f"runs/{paper_id}/{Path(name).as_posix()}"
    dest = book.out / site
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    return site


# ------------------------------------------------------------------------------------ results

def _checks_table(result: dict) -> str:
    rows = []
    for c in result.get("checks") or []:
        if not isinstance(c, dict):
            continue
        ok = c.get("holds") is True
        rows.append(
            f'<tr class="{"ok" if ok else "bad"}"><td class="mark">{"&#10003;" if ok else "&#10007;"}</td>'
            f'<td>{esc(str(c.get("what", "")))}</td><td class="num">{esc(_fmt(c.get("value", "")))}</td>'
            f'<td class="op">{esc(str(c.get("op", "")))}</td>'
            f'<td>{esc(str(c.get("reference_what", "")))} <span class="num">'
            f'({esc(_fmt(c.get("reference", "")))})</span></td>'
            f'<td class="num">{_fmt_margin(c.get("margin"))}</td></tr>')
    if not rows:
        return '<p class="muted">This run recorded no checks.</p>'
    return ('<table class="checks"><thead><tr><th></th><th>measured</th><th>value</th><th></th>'
            '<th>against</th><th>margin</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table>")


def _value_html(value) -> str:
    if isinstance(value, (bool, int, float)) or value is None:
        return f'<span class="num">{esc(_fmt(value))}</span>'
    if isinstance(value, str) and "\n" not in value and len(value) <= 120:
        return f"<code>{esc(value)}</code>"
    text = value if isinstance(value, str) else json.dumps(value, indent=1, default=str)
    return f'<pre class="sample">{esc(text[:TEXT_PREVIEW_CHARS])}</pre>'


def _metrics_table(metrics) -> str:
    if not isinstance(metrics, dict) or not metrics:
        return ""
    rows = "".join(f"<tr><th>{esc(str(k))}</th><td>{_value_html(v)}</td></tr>" for k, v in metrics.items())
    return f'<details class="metrics" open><summary>All metrics</summary><table class="kv">{rows}</table></details>'


def _artifacts_html(book: Book, here: str, paper_id: str, record: RunRecord) -> str:
    figures, texts, others = [], [], []
    for name in record.result.get("artifacts") or []:
        if not isinstance(name, str):
            continue
        site = _copy_artifact(book, paper_id, record.folder, name)
        if site is None:
            others.append(f'<li><code>{esc(name)}</code> <span class="muted">(missing from the run folder)</span></li>')
            continue
        url = esc(_rel(here, site), quote=True)
        suffix = Path(name).suffix.lower()
        if suffix in IMAGE_EXTS:
            figures.append(f'<figure><a href="{url}"><img src="{url}" alt="{esc(name, quote=True)}">'
                           f'</a><figcaption><code>{esc(name)}</code></figcaption></figure>')
        elif suffix in TEXT_EXTS:
            text = (book.out / site).read_text(encoding="utf-8", errors="replace")
            more = "\n…" if len(text) > TEXT_PREVIEW_CHARS else ""
            texts.append(f'<div class="artifact-text"><p><a href="{url}"><code>{esc(name)}</code></a></p>'
                         f'<pre class="sample">{esc(text[:TEXT_PREVIEW_CHARS] + more)}</pre></div>')
        else:
            others.append(f'<li><a href="{url}"><code>{esc(name)}</code></a></li>')
    out = ""
    if figures:
        out += '<div class="figures">' + "".join(figures) + "</div>"
    out += "".join(texts)
    if others:
        out += '<ul class="artifacts">' + "".join(others) + "</ul>"
    return out


def _result_section(book: Book, here: str, p: catalog.Paper) -> str:
    status, parts = book.status(p), book.parts(p)
    head = '<section class="result" id="result"><h2>The claim, reproduced</h2>'
    if p.id in book.runs:
        r = book.runs[p.id].result
        config = r.get("config") if isinstance(r.get("config"), dict) else {}
        cfg = "".join(f"<tr><th>{esc(str(k))}</th><td>{_value_html(v)}</td></tr>" for k, v in config.items())
        wall = r.get("wall_s")
        facts = (f'scale <strong>{esc(str(r.get("scale", "?")))}</strong>, seed {esc(str(r.get("seed", "?")))}, '
                 f'{esc(_fmt(wall)) + " s" if isinstance(wall, (int, float)) else "time not recorded"}')
        return (head + f'<blockquote class="claim">{esc(str(r.get("claim", "")))}</blockquote>'
                f'<p class="verdict verdict-{status}">{_badge(status)} <span class="muted">{facts}</span></p>'
                + _checks_table(r) + _artifacts_html(book, here, p.id, book.runs[p.id]) + _metrics_table(r.get("metrics"))
                + (f'<details class="config"><summary>Configuration of this run</summary><table class="kv">{cfg}'
                   f"</table></details>" if cfg else "")
                + f'<p class="muted small">Run again with <code>milestones run {esc(p.id)}</code>.</p></section>')
    if p.id in book.crashed:
        row = book.crashed[p.id]
        return (head + f'<blockquote class="claim">{esc(str(row.get("claim", "")))}</blockquote>'
                f'<p class="verdict">{_badge("error")}</p><pre class="sample">{esc(str(row.get("error", "")))}</pre></section>')
    claim = _claim_from_source(book, p)
    if parts["experiment"]:
        quoted = f'<blockquote class="claim">{esc(claim)}</blockquote>' if claim else ""
        return (head + quoted + f'<p class="verdict">{_badge(status)} <strong>Not run yet.</strong> '
                f'Run <code>milestones run {esc(p.id)}</code> or <code>milestones reproduce</code>, '
                f"then rebuild the book.</p></section>")
    return (head + f'<p class="verdict">{_badge(status)} The experiment for this paper is still to be '
            f"built; its claim will be tested here once it is.</p></section>")


def _claim_from_source(book: Book, p: catalog.Paper) -> str:
    """The CLAIM string of an experiment that has not run, read from its source without importing it."""
    path = book.locate(p) / "experiment.py"
    if not path.is_file():
        return ""
    m = re.search(r"^CLAIM\s*=\s*\(?\s*((?:[rR]?\"[^\"\n]*\"\s*)+)\)?", path.read_text(errors="replace"), re.M)
    if not m:
        return ""
    return "".join(re.findall(r"\"([^\"\n]*)\"", m.group(1)))


# ------------------------------------------------------------------------------------ paper pages

def _source_block(title: str, path: Path, anchor: str, prefix: str, open_: bool) -> str:
    if not path.is_file():
        return ""
    code = markup.highlight_python(path.read_text(encoding="utf-8", errors="replace"), anchor_prefix=prefix)
    lines = path.read_text(errors="replace").count("\n")
    return (f'<details class="source" id="{anchor}"{" open" if open_ else ""}><summary><code>{esc(title)}</code> '
            f'<span class="muted">{lines} lines</span></summary>{code}</details>')


def paper_page(book: Book, i: int, p: catalog.Paper) -> None:
    here = _paper_href(p)
    where, parts, status = book.locate(p), book.parts(p), book.status(p)
    color = ERA_COLORS.get(p.era, FALLBACK_COLOR)
    prev_p = book.papers[i - 1] if i > 0 else None
    next_p = book.papers[i + 1] if i + 1 < len(book.papers) else None

    def neighbour(q, rel_name, arrow_left):
        if q is None:
            return f'<span class="pn-empty">{"start of the history" if arrow_left else "the latest paper"}</span>'
        label = f"{q.year} &middot; {esc(q.title)}"
        return (f'<a rel="{rel_name}" href="{_rel(here, _paper_href(q))}"><span class="pn-dir">'
                f'{"&larr; previous" if arrow_left else "next &rarr;"}</span><span class="pn-title">{label}</span></a>')

    prevnext = f'<nav class="prevnext">{neighbour(prev_p, "prev", True)}{neighbour(next_p, "next", False)}</nav>'
    parents = [book.by_id(x) for x in p.builds_on]
    parents = [q for q in parents if q]
    kids = book.children(p)

    def paper_list(items, empty):
        if not items:
            return f'<p class="muted">{empty}</p>'
        return "<ul class=\"lineage-list\">" + "".join(
            f'<li>{_badge_dot(book.status(q))}{_paper_link(book, here, q, q.title)} '
            f'<span class="muted">{esc(q.short_authors)}, {q.year}</span></li>' for q in items) + "</ul>"

    ancestry = _ancestry(book, p)
    chain = " &rarr; ".join(_paper_link(book, here, q) for q in ancestry)
    files = " ".join(f'<span class="part {"have" if ok else "lack"}">{"&#10003;" if ok else "&#9675;"} '
                     f'{esc(name.replace("_", " "))}</span>' for name, ok in parts.items())
    also = "".join(f' &middot; <a href="{esc(u, quote=True)}" class="external" rel="noopener">companion paper</a>'
                   for u in p.also)
    header = f"""<article class="paper" style="--era:{color}">
<div class="wrap">
{prevnext}
<header class="paper-head">
<p class="kicker">{_era_chip(book, p)} <span class="year">{p.year}</span> {_constraint_chip(p)} {_badge(status)}</p>
<h1>{esc(p.title)}</h1>
<p class="authors">{esc(", ".join(p.authors))}</p>
<p class="venue">{esc(p.venue)}, {p.year} &middot; <a href="{esc(p.url, quote=True)}" class="external" rel="noopener">read the paper</a>{also}</p>
<p class="idea">{esc(p.idea)}</p>
<p class="parts">{files}</p>
</header>
<section class="lineage" id="lineage">
<div><h3>Builds on</h3>{paper_list(parents, "Nothing earlier in this catalog: this is the root.")}</div>
<div><h3>Built upon by</h3>{paper_list(kids, "Nothing later in this catalog yet.")}</div>
{f'<div class="ancestry"><h3>Line of descent</h3><p>{chain}</p></div>' if len(ancestry) > 1 else ""}
</section>
{_result_section(book, here, p)}
</div>
"""
    notes_path = where / "notes.md"
    if notes_path.is_file():
        text = re.sub(r"\A\s*#\s+[^\n]*\n", "", notes_path.read_text(encoding="utf-8", errors="replace"), count=1)
        notes_html = markup.render_markdown(text, _resolver(book, here, notes_path, p))
    else:
        notes_html = ('<p class="muted">The notes for this paper are not written yet. Until then, its idea in '
                      f"one sentence: {esc(p.idea)}</p>")
    code = _source_block("model.py", where / "model.py", "implementation", "model", True)
    code += _source_block("experiment.py", where / "experiment.py", "experiment-code", "exp", False)
    code += _source_block(f"tests/equivalence/test_{p.id}.py", book.tests_dir / f"test_{p.id}.py",
                          "equivalence-test", "eq", False)
    if not code:
        code = '<p class="muted">No implementation yet.</p>'
    body = header + f"""<div class="notes-and-code">
<section class="notes prose" id="notes"><h2 class="section-label">Notes</h2>{notes_html}</section>
<section class="code" aria-label="implementation"><h2 class="section-label">The implementation</h2>
<p class="muted small">Read it beside the notes: the comments carry the equations.</p>{code}</section>
</div>
<div class="wrap">
<section class="cite" id="cite"><h2>Cite</h2><pre class="bibtex">{esc(catalog.bibtex(p))}</pre>
<p class="muted small">Also: <code>milestones cite {esc(p.id)}</code></p></section>
{prevnext}
</div>
</article>"""
    book.write(here, _page(book, here, f"{p.title} ({p.short_authors}, {p.year}) · milestones", body, p.idea))


def _badge_dot(status: str) -> str:
    return f'<span class="dot dot-{status}" title="{esc(STATUS_LABELS.get(status, status), quote=True)}"></span>'


def _ancestry(book: Book, p: catalog.Paper) -> list[catalog.Paper]:
    """The longest chain of builds_on links from a root down to p."""
    memo: dict[str, list[catalog.Paper]] = {}

    def longest(q: catalog.Paper) -> list[catalog.Paper]:
        if q.id not in memo:
            best: list[catalog.Paper] = []
            for parent_id in q.builds_on:
                parent = book.by_id(parent_id)
                if parent is not None:
                    chain = longest(parent)
                    best = chain if len(chain) > len(best) else best
            memo[q.id] = best + [q]
        return memo[q.id]

    return longest(p)


# ------------------------------------------------------------------------------------ index, report

def _legend() -> str:
    eras = "".join(f'<li><span class="swatch" style="background:{c}"></span>{esc(catalog.ERAS.get(e, e))}</li>'
                   for e, c in ERA_COLORS.items())
    shapes = "".join(f"<li>{legend_icon(s)}{esc(c)}</li>" for c, s in SHAPES.items())
    statuses = "".join(f'<li>{legend_icon("circle", "#555555", s)}{esc(label)}</li>'
                       for s, label in STATUS_LABELS.items())
    return (f'<div class="legend"><div><h4>Era (colour)</h4><ul>{eras}</ul></div>'
            f'<div><h4>Constraint it lifted (shape)</h4><ul>{shapes}</ul></div>'
            f'<div><h4>Status (fill and ring)</h4><ul>{statuses}</ul></div></div>')


def _counts(book: Book) -> dict[str, int]:
    counts = {s: 0 for s in STATUS_LABELS}
    for p in book.papers:
        counts[book.status(p)] += 1
    return counts


def index_page(book: Book) -> None:
    here = "index.html"
    counts = _counts(book)
    built = counts["holds"] + counts["fails"] + counts["error"] + counts["implemented"]
    svg = timeline_svg(book.papers, book.status, lambda p: _paper_href(p), book.eras)
    essays = "".join(f'<a class="card" href="{_rel(here, f"essays/{e.slug}.html")}"><span class="card-kicker">Essay {n}</span>'
                     f"<strong>{esc(e.title)}</strong></a>" for n, e in enumerate(book.lessons, 1))
    essays += (f'<a class="card" href="report.html"><span class="card-kicker">The reproduce report</span>'
               f"<strong>Every claim, its verdict, margin and wall time</strong></a>")
    sections = []
    for era, title in book.eras.items():
        members = [p for p in book.papers if p.era == era]
        if not members:
            continue
        rows = []
        for p in members:
            kids = book.children(p)
            rows.append(
                f'<tr><td class="num">{p.year}</td><td>{_badge_dot(book.status(p))}'
                f'{_paper_link(book, here, p, p.title)}<div class="muted small">{esc(p.short_authors)} &middot; '
                f'{esc(p.venue)}</div></td><td>{legend_icon(SHAPES.get(p.constraint, "circle"))}{esc(p.constraint)}</td>'
                f'<td>{", ".join(_paper_link(book, here, q) for q in map(book.by_id, p.builds_on) if q) or "&ndash;"}</td>'
                f'<td>{", ".join(_paper_link(book, here, q) for q in kids) or "&ndash;"}</td></tr>')
        color = ERA_COLORS.get(era, FALLBACK_COLOR)
        sections.append(f'<section class="era" id="era-{esc(era)}" style="--era:{color}"><h3>{esc(title)}</h3>'
                        '<table class="papers"><thead><tr><th>year</th><th>paper</th><th>lifted</th>'
                        '<th>builds on</th><th>built upon by</th></tr></thead><tbody>'
                        + "".join(rows) + "</tbody></table></section>")
    stats = (f'<ul class="stats"><li><strong>{len(book.papers)}</strong> papers in the catalog</li>'
             f"<li><strong>{built}</strong> implemented</li>"
             f'<li><strong>{counts["holds"]}</strong> claims hold</li>'
             f'<li><strong>{counts["fails"] + counts["error"]}</strong> do not (yet)</li></ul>')
    body = f"""<section class="hero"><div class="wrap">
<h1>The history of deep learning, as working code</h1>
<p class="lede">Each landmark paper, from backpropagation in 1986 to today's language and diffusion models,
gets four things here: notes in our own words, a small PyTorch implementation you can read top to bottom,
a test that proves it equal to a trusted reference, and the paper's central claim reproduced in miniature
on a laptop CPU, with the verdict computed from numbers.</p>
<p>Modules import only from the papers they build on, so the code's import graph draws the lineage you see
below. Read a paper's page for its notes beside its code, the <a href="report.html">report</a> for every
verdict at once, or the essays for what the whole history teaches.</p>
{stats}
</div></section>
<div class="wrap">
<section id="timeline"><h2>Timeline</h2>
<p class="muted">Every paper in the catalog, placed by the month it first appeared. Hover a paper to see what it
builds on; click it to open its page.</p>
<div class="timeline-frame">{svg}</div>
{_legend()}
</section>
<section id="read"><h2>Read</h2><div class="cards">{essays}</div></section>
<section id="papers"><h2>The papers and their lineage</h2>
<p class="muted">Grouped by era, in the order they appeared. "Builds on" is the lineage the code follows: a
paper's module imports only from the modules of the papers listed there.</p>
{"".join(sections)}
</section>
</div>"""
    book.write(here, _page(book, here, "milestones: the history of deep learning as working code", body))


def report_page(book: Book) -> None:
    here = "report.html"
    rows, total_wall, n_run = [], 0.0, 0
    for p in book.papers:
        status = book.status(p)
        if p.id in book.runs:
            r = book.runs[p.id].result
            wall = r.get("wall_s")
            n_run += 1
            total_wall += wall if isinstance(wall, (int, float)) else 0.0
            checks = "".join(
                f'<li class="{"ok" if c.get("holds") is True else "bad"}">{esc(str(c.get("what", "")))}: '
                f'<span class="num">{esc(_fmt(c.get("value", "")))}</span> {esc(str(c.get("op", "")))} '
                f'<span class="num">{esc(_fmt(c.get("reference", "")))}</span> '
                f'<span class="muted">(margin {_fmt_margin(c.get("margin"))})</span></li>'
                for c in r.get("checks") or [] if isinstance(c, dict))
            rows.append(
                f'<tr class="row-{status}"><td>{_paper_link(book, here, p)}<div class="muted small">{p.year}</div></td>'
                f'<td>{esc(str(r.get("claim", "")))}<details><summary>checks</summary><ul class="checklist">{checks}'
                f"</ul></details></td><td>{_badge(status)}</td>"
                f'<td class="num">{_fmt_margin(_smallest_margin(r))}</td>'
                f'<td class="num">{esc(_fmt(wall)) + " s" if isinstance(wall, (int, float)) else "&ndash;"}</td>'
                f'<td>{esc(str(r.get("scale", "")))}</td></tr>')
        elif status in ("error", "implemented"):
            note = esc(str(book.crashed.get(p.id, {}).get("error", ""))) or "not run yet"
            rows.append(f'<tr class="row-{status}"><td>{_paper_link(book, here, p)}<div class="muted small">{p.year}'
                        f'</div></td><td>{esc(_claim_from_source(book, p))}</td><td>{_badge(status)}</td>'
                        f'<td class="num">&ndash;</td><td class="num">&ndash;</td><td class="muted">{note}</td></tr>')
    counts = _counts(book)
    planned = [p for p in book.papers if book.status(p) in ("planned", "partial")]
    todo = ", ".join(_paper_link(book, here, p) for p in planned) or "none"
    source = esc(str(book.runs_root))
    table = ('<table class="report"><thead><tr><th>paper</th><th>claim</th><th>verdict</th><th>smallest margin</th>'
             '<th>wall time</th><th>scale</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table>"
             if rows else '<p class="muted">No paper has been run yet: run <code>milestones reproduce</code>, '
                          "then <code>milestones book</code>.</p>")
    body = f"""<div class="wrap">
<h1>The reproduce report</h1>
<p class="lede">Every implemented paper's central claim, tested in miniature. A claim holds when every one of its
checks holds; the margin says how far the measured number sits on the right side of its threshold (negative: the
wrong side). The smallest margin is the check that came closest to failing.</p>
<ul class="stats"><li><strong>{counts["holds"]}</strong> claims hold</li>
<li><strong>{counts["fails"]}</strong> do not hold</li><li><strong>{counts["error"]}</strong> crashed</li>
<li><strong>{counts["implemented"]}</strong> not run yet</li><li><strong>{total_wall:.1f} s</strong> of experiments</li></ul>
{table}
<p class="muted small">Results: the latest <code>result.json</code> of each paper under <code>{source}</code>
({n_run} run{"s" if n_run != 1 else ""}). Reproduce them with <code>milestones reproduce</code>.</p>
<h2>Still to come</h2><p>{len(planned)} papers have no experiment yet: {todo}.</p>
</div>"""
    book.write(here, _page(book, here, "The reproduce report · milestones", body))


# ------------------------------------------------------------------------------------ essays

def _macro(book: Book, here: str, name: str, arg: str | None) -> str:
    p = book.by_id(arg) if arg else None
    if name in ("claim", "verdict") and p is None:
        return f'<span class="dead-link">{esc(arg or "?")}</span>'
    if name == "verdict":
        status = book.status(p)
        return f'<a class="verdict-ref" href="{_rel(here, _paper_href(p) + "#result")}">{_badge(status)}</a>'
    if name == "claim":
        status = book.status(p)
        link = _paper_link(book, here, p, f"{p.title} ({p.short_authors}, {p.year})")
        if p.id in book.runs:
            r = book.runs[p.id].result
            return (f'<aside class="claim-box claim-{status}"><p class="claim-src">Our experiment: {link} '
                    f'{_badge(status)}</p><blockquote class="claim">{esc(str(r.get("claim", "")))}</blockquote>'
                    f'{_checks_table(r)}<p class="muted small">scale {esc(str(r.get("scale", "")))}, seed '
                    f'{esc(str(r.get("seed", "")))}, {esc(_fmt(r.get("wall_s", "")))} s</p></aside>')
        what = "not run yet" if status == "implemented" else "still to be built"
        return (f'<aside class="claim-box claim-{status}"><p class="claim-src">Our experiment: {link} '
                f'{_badge(status)}</p><p class="muted">This experiment is {what}; its verdict will appear '
                f"here once it has run.</p></aside>")
    if name == "constraints":
        rows = []
        for c in catalog.CONSTRAINTS:
            members = [q for q in book.papers if q.constraint == c]
            items = " ".join(f'<span class="item">{_badge_dot(book.status(q))}{_paper_link(book, here, q)}&nbsp;'
                             f'<span class="muted">{q.year}</span></span>' for q in members)
            rows.append(f"<tr><th>{legend_icon(SHAPES.get(c, 'circle'))}{esc(c)}</th>"
                        f'<td class="num">{len(members)}</td><td>{items or "&ndash;"}</td></tr>')
        return ('<table class="constraints"><thead><tr><th>constraint</th><th>papers</th><th>which (dot: status)'
                "</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
    if name == "progress":
        counts = _counts(book)
        held = [q for q in book.papers if book.status(q) == "holds"]
        failed = [q for q in book.papers if book.status(q) in ("fails", "error")]
        todo = [q for q in book.papers if book.status(q) in ("planned", "partial", "implemented")]
        def names(xs):
            return ", ".join(_paper_link(book, here, q) for q in xs) or "none"
        return (f'<aside class="progress"><p><strong>Where our experiments stand</strong> (computed when this book '
                f'was built): of {len(book.papers)} papers, {counts["holds"]} claims hold ({names(held)}); '
                f"{len(failed)} do not ({names(failed)}); {len(todo)} experiments are still to come or "
                f"not yet run.</p></aside>")
    if name == "longest-chain":
        chain = max((_ancestry(book, q) for q in book.papers), key=len)
        return ('<p class="chain">' + " &rarr; ".join(
            f'{_paper_link(book, here, q)}&nbsp;<span class="muted">{q.year}</span>' for q in chain) + "</p>")
    if name == "constraints-by-era":
        head = "".join(f"<th>{esc(c)}</th>" for c in catalog.CONSTRAINTS)
        rows = []
        for era, title in book.eras.items():
            members = [q for q in book.papers if q.era == era]
            cells = "".join(f'<td class="num">{sum(q.constraint == c for q in members) or ""}</td>'
                            for c in catalog.CONSTRAINTS)
            rows.append(f'<tr><th>{esc(title)}</th>{cells}<td class="num">{len(members)}</td></tr>')
        return (f'<table class="matrix"><thead><tr><th>era</th>{head}<th>all</th></tr></thead><tbody>'
                + "".join(rows) + "</tbody></table>")
    warnings.warn(f"unknown book macro {name!r}", stacklevel=2)
    return f'<span class="dead-link">[unknown macro {esc(name)}]</span>'


def essay_page(book: Book, lesson: Lesson) -> None:
    here = f"essays/{lesson.slug}.html"
    text = lesson.source.read_text(encoding="utf-8")
    rendered: list[str] = []

    def keep(m: re.Match) -> str:
        rendered.append(_macro(book, here, m.group("name"), m.group("arg")))
        return f"BOOKXMACRO{len(rendered) - 1}X"

    text = _MACRO.sub(keep, text)
    body_html = markup.render_markdown(text, _resolver(book, here, lesson.source, None))
    body_html = _MACRO_TOKEN.sub(lambda m: rendered[int(m.group(1))], body_html)
    n = book.lessons.index(lesson)
    prev_l = book.lessons[n - 1] if n else None
    next_l = book.lessons[n + 1] if n + 1 < len(book.lessons) else None
    nav = '<nav class="prevnext">'
    nav += (f'<a rel="prev" href="{prev_l.slug}.html"><span class="pn-dir">&larr; previous essay</span>'
            f'<span class="pn-title">{esc(prev_l.title)}</span></a>' if prev_l else '<span class="pn-empty"></span>')
    nav += (f'<a rel="next" href="{next_l.slug}.html"><span class="pn-dir">next essay &rarr;</span>'
            f'<span class="pn-title">{esc(next_l.title)}</span></a>' if next_l else '<span class="pn-empty"></span>')
    nav += "</nav>"
    body = f'<div class="wrap"><article class="essay prose">{body_html}</article>{nav}</div>'
    book.write(here, _page(book, here, f"{lesson.title} · milestones", body))


# ------------------------------------------------------------------------------------ entry point

@dataclass
class Built:
    index: Path
    pages: list[Path]
    seconds: float


def _prepare_out(out: Path) -> None:
    if out.exists():
        if not out.is_dir():
            raise UserError(f"{out} exists and is not a folder; choose another --out")
        if any(out.iterdir()) and not (out / MARKER).is_file():
            raise UserError(f"{out} is not empty and holds no book; choose another --out or empty it")
        shutil.rmtree(out)
    (out / "assets").mkdir(parents=True)
    (out / MARKER).write_text("built by `milestones book`; rebuilding replaces this folder\n")


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
    runs = Path(runs)
    if not papers:
        raise UserError("the catalog is empty; there is nothing to put in a book")
    out = Path(out)
    _prepare_out(out)
    found = {k: v for k, v in latest_runs(runs).items() if any(p.id == k for p in papers)}
    book = Book(out=out, papers=papers, runs=found, crashed=crashed_runs(runs, found),
                locate=locate or paper_files.folder, tests_dir=tests_dir or paper_files.TESTS,
                lessons=find_lessons(lessons_dir or LESSONS), runs_root=runs)
    style = resources.files("milestones.book").joinpath("style.css").read_text(encoding="utf-8")
    (out / "assets" / "style.css").write_text(style, encoding="utf-8")
    (out / "assets" / "pygments.css").write_text(markup.pygments_css(), encoding="utf-8")
    index_page(book)
    report_page(book)
    for lesson in book.lessons:
        essay_page(book, lesson)
    for i, p in enumerate(papers):
        paper_page(book, i, p)
    return Built(out / "index.html", book.pages, time.perf_counter() - started)
