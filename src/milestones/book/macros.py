"""The macros an essay may use, `<!-- book:NAME [ARG] -->`, each replaced by HTML computed from the
book's sources when the book is built, so an essay never states a verdict or a count by hand:

    claim PAPER           the paper's claim, verdict and checks, in a box
    verdict PAPER         the paper's status badge, linked to its result
    constraints           each constraint the history lifted, with its papers
    constraints-by-era    how many papers lifted each constraint, era by era
    progress              how many claims hold, do not, or are still to come
    longest-chain         the longest line of descent in the catalog
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable

from milestones import catalog, papers
from milestones.book.layout import badge, badge_dot, esc, paper_href, paper_link, rel
from milestones.book.results import checks_table, fmt, overrides, verdict_badge, verdict_notes
from milestones.book.sources import Sources
from milestones.book.timeline import SHAPES, legend_icon

Macro = Callable[[Sources, str, "str | None"], str]  # (sources, the page's site path, ARG) -> HTML

_MACRO = re.compile(r"<!--\s*book:(?P<name>[a-z-]+)(?:\s+(?P<arg>[\w-]+))?\s*-->")
_TOKEN = re.compile(r"(?:<p>\s*)?BOOKXMACRO(\d+)X(?:\s*</p>)?")  # markdown wraps a lone token in <p>


def _dead(text: str) -> str:
    return f'<span class="dead-link">{esc(text)}</span>'


def _of_paper(macro: Callable[[Sources, str, catalog.Paper], str]) -> Macro:
    """A macro whose ARG names a paper; an unknown paper shows as a dead link."""

    def run(sources: Sources, here: str, arg: str | None) -> str:
        p = sources.by_id(arg) if arg else None
        return _dead(arg or "?") if p is None else macro(sources, here, p)

    return run


@_of_paper
def claim_box(sources: Sources, here: str, p: catalog.Paper) -> str:
    status = sources.status(p)
    link = paper_link(here, p, f"{p.title} ({p.short_authors}, {p.year})")
    if p.id in sources.runs:
        r = sources.runs[p.id].result
        return (f'<aside class="claim-box claim-{status}"><p class="claim-src">Our experiment: {link} '
                f'{verdict_badge(status, r)}</p>{verdict_notes(r)}'
                f'<blockquote class="claim">{esc(str(r.get("claim", "")))}</blockquote>{checks_table(r)}'
                f'<p class="muted small">scale {esc(str(r.get("scale", "")))}, seed '
                f'{esc(str(r.get("seed", "")))}, {esc(fmt(r.get("wall_s", "")))} s</p></aside>')
    what = "not run yet" if status == "implemented" else "still to be built"
    return (f'<aside class="claim-box claim-{status}"><p class="claim-src">Our experiment: {link} '
            f'{badge(status)}</p><p class="muted">This experiment is {what}; its verdict will appear '
            f"here once it has run.</p></aside>")


@_of_paper
def verdict_ref(sources: Sources, here: str, p: catalog.Paper) -> str:
    status = sources.status(p)
    if p.id not in sources.runs:
        return f'<a class="verdict-ref" href="{rel(here, paper_href(p) + "#result")}">{badge(status)}</a>'
    result = sources.runs[p.id].result
    custom = f' <span class="custom-config">({esc(papers.CUSTOM_CONFIG)})</span>' if overrides(result) else ""
    return (f'<a class="verdict-ref" href="{rel(here, paper_href(p) + "#result")}">'
            f"{verdict_badge(status, result)}</a>{custom}")


def constraints(sources: Sources, here: str, arg: str | None) -> str:
    rows = []
    for c in catalog.CONSTRAINTS:
        members = [q for q in sources.papers if q.constraint == c]
        items = " ".join(f'<span class="item">{badge_dot(sources.status(q))}{paper_link(here, q)}&nbsp;'
                         f'<span class="muted">{q.year}</span></span>' for q in members)
        rows.append(f"<tr><th>{legend_icon(SHAPES.get(c, 'circle'))}{esc(c)}</th>"
                    f'<td class="num">{len(members)}</td><td>{items or "&ndash;"}</td></tr>')
    return ('<table class="constraints"><thead><tr><th>constraint</th><th>papers</th><th>which (dot: status)'
            "</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def constraints_by_era(sources: Sources, here: str, arg: str | None) -> str:
    head = "".join(f"<th>{esc(c)}</th>" for c in catalog.CONSTRAINTS)
    rows = []
    for era, title in catalog.ERAS.items():
        members = [q for q in sources.papers if q.era == era]
        cells = "".join(f'<td class="num">{sum(q.constraint == c for q in members) or ""}</td>'
                        for c in catalog.CONSTRAINTS)
        rows.append(f'<tr><th>{esc(title)}</th>{cells}<td class="num">{len(members)}</td></tr>')
    return (f'<table class="matrix"><thead><tr><th>era</th>{head}<th>all</th></tr></thead><tbody>'
            + "".join(rows) + "</tbody></table>")


def progress(sources: Sources, here: str, arg: str | None) -> str:
    counts = sources.counts()
    held = [q for q in sources.papers if sources.status(q) == "holds"]
    failed = [q for q in sources.papers if sources.status(q) in ("fails", "error")]
    todo = [q for q in sources.papers if sources.status(q) in ("planned", "partial", "implemented")]

    def names(papers: list[catalog.Paper]) -> str:
        return ", ".join(paper_link(here, q) for q in papers) or "none"

    return (f'<aside class="progress"><p><strong>Where our experiments stand</strong> (computed when this book '
            f'was built): of {len(sources.papers)} papers, {counts["holds"]} claims hold ({names(held)}); '
            f"{len(failed)} do not ({names(failed)}); {len(todo)} experiments are still to come or "
            f"not yet run.</p></aside>")


def longest_chain(sources: Sources, here: str, arg: str | None) -> str:
    chain = max((sources.ancestry(q) for q in sources.papers), key=len)
    return ('<p class="chain">' + " &rarr; ".join(
        f'{paper_link(here, q)}&nbsp;<span class="muted">{q.year}</span>' for q in chain) + "</p>")


MACROS: dict[str, Macro] = {
    "claim": claim_box,
    "verdict": verdict_ref,
    "constraints": constraints,
    "constraints-by-era": constraints_by_era,
    "progress": progress,
    "longest-chain": longest_chain,
}


def render_macro(sources: Sources, here: str, name: str, arg: str | None) -> str:
    macro = MACROS.get(name)
    if macro is None:
        warnings.warn(f"unknown book macro {name!r}", stacklevel=2)
        return _dead(f"[unknown macro {name}]")
    return macro(sources, here, arg)


def render_with_macros(sources: Sources, here: str, text: str, render: Callable[[str], str]) -> str:
    """`render(text)` (markdown to HTML) with every macro in `text` replaced by its HTML. A macro is
    swapped for a plain token before `render` runs and its HTML put back after, so that markdown
    never rewrites the HTML a macro made."""
    rendered: list[str] = []

    def keep(m: re.Match) -> str:
        rendered.append(render_macro(sources, here, m.group("name"), m.group("arg")))
        return f"BOOKXMACRO{len(rendered) - 1}X"

    body = render(_MACRO.sub(keep, text))
    return _TOKEN.sub(lambda m: rendered[int(m.group(1))], body)
