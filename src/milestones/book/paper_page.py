"""One page per catalog paper (papers/<id>.html): its facts and lineage, its claim and the verdict of
its latest run, its notes beside its code (model, experiment, equivalence test), and its BibTeX.
"""

from __future__ import annotations

import re
from pathlib import Path

from milestones import catalog
from milestones.book import markup
from milestones.book.layout import (
    Site,
    badge,
    badge_dot,
    constraint_chip,
    era_chip,
    esc,
    page,
    paper_href,
    paper_link,
    rel,
)
from milestones.book.links import resolver
from milestones.book.results import (
    artifacts_html,
    checks_table,
    fmt,
    metrics_table,
    seeds_table,
    value_html,
    verdict_badge,
    verdict_notes,
)
from milestones.book.sources import Sources
from milestones.book.timeline import ERA_COLORS, FALLBACK_COLOR


def result_section(sources: Sources, site: Site, here: str, p: catalog.Paper) -> str:
    """The claim and what became of it: the latest run, a crash, not run yet, or no experiment yet."""
    status, parts = sources.status(p), sources.parts(p)
    head = '<section class="result" id="result"><h2>The claim, reproduced</h2>'
    if p.id in sources.runs:
        r = sources.runs[p.id].result
        config = r.get("config") if isinstance(r.get("config"), dict) else {}
        cfg = "".join(f"<tr><th>{esc(str(k))}</th><td>{value_html(v)}</td></tr>" for k, v in config.items())
        wall = r.get("wall_s")
        facts = (f'scale <strong>{esc(str(r.get("scale", "?")))}</strong>, seed {esc(str(r.get("seed", "?")))}, '
                 f'{esc(fmt(wall)) + " s" if isinstance(wall, (int, float)) else "time not recorded"}')
        return (head + f'<blockquote class="claim">{esc(str(r.get("claim", "")))}</blockquote>'
                f'<p class="verdict verdict-{status}">{verdict_badge(status, r)} <span class="muted">{facts}</span></p>'
                + verdict_notes(r) + checks_table(r)
                + (seeds_table(sources.over_seeds[p.id]) if p.id in sources.over_seeds else "")
                + artifacts_html(site, here, p.id, sources.runs[p.id])
                + metrics_table(r.get("metrics"))
                + (f'<details class="config"><summary>Configuration of this run</summary><table class="kv">{cfg}'
                   f"</table></details>" if cfg else "")
                + f'<p class="muted small">Run again with <code>milestones run {esc(p.id)}</code>.</p></section>')
    if p.id in sources.crashed:
        row = sources.crashed[p.id]
        return (head + f'<blockquote class="claim">{esc(str(row.get("claim", "")))}</blockquote>'
                f'<p class="verdict">{badge("error")}</p>'
                f'<pre class="sample">{esc(str(row.get("error", "")))}</pre></section>')
    claim = sources.claim(p)
    if parts["experiment"]:
        quoted = f'<blockquote class="claim">{esc(claim)}</blockquote>' if claim else ""
        return (head + quoted + f'<p class="verdict">{badge(status)} <strong>Not run yet.</strong> '
                f'Run <code>milestones run {esc(p.id)}</code> or <code>milestones reproduce</code>, '
                f"then rebuild the book.</p></section>")
    return (head + f'<p class="verdict">{badge(status)} The experiment for this paper is still to be '
            f"built; its claim will be tested here once it is.</p></section>")


def source_block(title: str, path: Path, anchor: str, prefix: str, open_: bool) -> str:
    """A highlighted source file, folded unless `open_`; "" when the file does not exist."""
    if not path.is_file():
        return ""
    code = markup.highlight_python(path.read_text(encoding="utf-8", errors="replace"), anchor_prefix=prefix)
    lines = path.read_text(errors="replace").count("\n")
    return (f'<details class="source" id="{anchor}"{" open" if open_ else ""}><summary><code>{esc(title)}</code> '
            f'<span class="muted">{lines} lines</span></summary>{code}</details>')


def write_paper_page(sources: Sources, site: Site, i: int, p: catalog.Paper) -> None:
    """The page of `p`, the i-th paper in history order (its neighbours are linked as previous/next)."""
    here = paper_href(p)
    where, parts, status = sources.locate(p), sources.parts(p), sources.status(p)
    color = ERA_COLORS.get(p.era, FALLBACK_COLOR)
    prev_p = sources.papers[i - 1] if i > 0 else None
    next_p = sources.papers[i + 1] if i + 1 < len(sources.papers) else None

    def neighbour(q, rel_name, arrow_left):
        if q is None:
            return f'<span class="pn-empty">{"start of the history" if arrow_left else "the latest paper"}</span>'
        label = f"{q.year} &middot; {esc(q.title)}"
        return (f'<a rel="{rel_name}" href="{rel(here, paper_href(q))}"><span class="pn-dir">'
                f'{"&larr; previous" if arrow_left else "next &rarr;"}</span><span class="pn-title">{label}</span></a>')

    prevnext = f'<nav class="prevnext">{neighbour(prev_p, "prev", True)}{neighbour(next_p, "next", False)}</nav>'
    parents = [sources.by_id(x) for x in p.builds_on]
    parents = [q for q in parents if q]
    kids = sources.children(p)

    def paper_list(items, empty):
        if not items:
            return f'<p class="muted">{empty}</p>'
        return "<ul class=\"lineage-list\">" + "".join(
            f'<li>{badge_dot(sources.status(q))}{paper_link(here, q, q.title)} '
            f'<span class="muted">{esc(q.short_authors)}, {q.year}</span></li>' for q in items) + "</ul>"

    ancestry = sources.ancestry(p)
    chain = " &rarr; ".join(paper_link(here, q) for q in ancestry)
    files = " ".join(f'<span class="part {"have" if ok else "lack"}">{"&#10003;" if ok else "&#9675;"} '
                     f'{esc(name.replace("_", " "))}</span>' for name, ok in parts.items())
    also = "".join(f' &middot; <a href="{esc(u, quote=True)}" class="external" rel="noopener">companion paper</a>'
                   for u in p.also)
    header = f"""<article class="paper" style="--era:{color}">
<div class="wrap">
{prevnext}
<header class="paper-head">
<p class="kicker">{era_chip(p)} <span class="year">{p.year}</span> {constraint_chip(p)} {badge(status)}</p>
<h1>{esc(p.title)}</h1>
<p class="authors">{esc(", ".join(p.authors))}</p>
<p class="venue">{esc(p.venue)}, {p.year} &middot; \
<a href="{esc(p.url, quote=True)}" class="external" rel="noopener">read the paper</a>{also}</p>
<p class="idea">{esc(p.idea)}</p>
<p class="parts">{files}</p>
</header>
<section class="lineage" id="lineage">
<div><h3>Builds on</h3>{paper_list(parents, "Nothing earlier in this catalog: this is the root.")}</div>
<div><h3>Built upon by</h3>{paper_list(kids, "Nothing later in this catalog yet.")}</div>
{f'<div class="ancestry"><h3>Line of descent</h3><p>{chain}</p></div>' if len(ancestry) > 1 else ""}
</section>
{result_section(sources, site, here, p)}
</div>
"""
    notes_path = where / "notes.md"
    if notes_path.is_file():
        # the page's own <h1> is the title, so the notes' first heading is dropped
        text = re.sub(r"\A\s*#\s+[^\n]*\n", "", notes_path.read_text(encoding="utf-8", errors="replace"), count=1)
        notes_html = markup.render_markdown(text, resolver(sources, site, here, notes_path, p))
    else:
        notes_html = ('<p class="muted">The notes for this paper are not written yet. Until then, its idea in '
                      f"one sentence: {esc(p.idea)}</p>")
    code = source_block("model.py", where / "model.py", "implementation", "model", True)
    code += source_block("experiment.py", where / "experiment.py", "experiment-code", "exp", False)
    code += source_block(f"tests/equivalence/test_{p.id}.py", sources.tests_dir / f"test_{p.id}.py",
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
    site.write(here, page(here, f"{p.title} ({p.short_authors}, {p.year}) · milestones", body, p.idea))
