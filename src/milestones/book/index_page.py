"""The front page (index.html): what the project is, how far it has come, the timeline figure and
its legend, the essays, and every paper grouped by era with its lineage.
"""

from __future__ import annotations

from milestones import catalog
from milestones.book.layout import Site, badge_dot, esc, page, paper_href, paper_link, rel
from milestones.book.sources import Sources
from milestones.book.timeline import ERA_COLORS, FALLBACK_COLOR, SHAPES, STATUS_LABELS, legend_icon, timeline_svg


def legend() -> str:
    """The key to the timeline: colour is the era, shape the constraint lifted, fill and ring the status."""
    eras = "".join(f'<li><span class="swatch" style="background:{c}"></span>{esc(catalog.ERAS.get(e, e))}</li>'
                   for e, c in ERA_COLORS.items())
    shapes = "".join(f"<li>{legend_icon(s)}{esc(c)}</li>" for c, s in SHAPES.items())
    statuses = "".join(f'<li>{legend_icon("circle", "#555555", s)}{esc(label)}</li>'
                       for s, label in STATUS_LABELS.items())
    return (f'<div class="legend"><div><h4>Era (colour)</h4><ul>{eras}</ul></div>'
            f'<div><h4>Constraint it lifted (shape)</h4><ul>{shapes}</ul></div>'
            f'<div><h4>Status (fill and ring)</h4><ul>{statuses}</ul></div></div>')


def era_tables(sources: Sources, here: str) -> str:
    """One table per era: each paper with its status, the constraint it lifted, its parents and children."""
    sections = []
    for era, title in catalog.ERAS.items():
        members = [p for p in sources.papers if p.era == era]
        if not members:
            continue
        rows = []
        for p in members:
            kids = sources.children(p)
            rows.append(
                f'<tr><td class="num">{p.year}</td><td>{badge_dot(sources.status(p))}'
                f'{paper_link(here, p, p.title)}<div class="muted small">{esc(p.short_authors)} &middot; '
                f'{esc(p.venue)}</div></td>'
                f'<td>{legend_icon(SHAPES.get(p.constraint, "circle"))}{esc(p.constraint)}</td>'
                f'<td>{", ".join(paper_link(here, q) for q in map(sources.by_id, p.builds_on) if q) or "&ndash;"}</td>'
                f'<td>{", ".join(paper_link(here, q) for q in kids) or "&ndash;"}</td></tr>')
        color = ERA_COLORS.get(era, FALLBACK_COLOR)
        sections.append(f'<section class="era" id="era-{esc(era)}" style="--era:{color}"><h3>{esc(title)}</h3>'
                        '<table class="papers"><thead><tr><th>year</th><th>paper</th><th>lifted</th>'
                        '<th>builds on</th><th>built upon by</th></tr></thead><tbody>'
                        + "".join(rows) + "</tbody></table></section>")
    return "".join(sections)


def write_index_page(sources: Sources, site: Site) -> None:
    here = "index.html"
    counts = sources.counts()
    built = counts["holds"] + counts["fails"] + counts["error"] + counts["implemented"]
    svg = timeline_svg(sources.papers, sources.status, paper_href, catalog.ERAS)
    essays = "".join(f'<a class="card" href="{rel(here, f"essays/{e.slug}.html")}">'
                     f'<span class="card-kicker">Essay {n}</span><strong>{esc(e.title)}</strong></a>'
                     for n, e in enumerate(sources.lessons, 1))
    essays += ('<a class="card" href="report.html"><span class="card-kicker">The reproduce report</span>'
               "<strong>Every claim, its verdict, margin and wall time</strong></a>")
    stats = (f'<ul class="stats"><li><strong>{len(sources.papers)}</strong> papers in the catalog</li>'
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
{legend()}
</section>
<section id="read"><h2>Read</h2><div class="cards">{essays}</div></section>
<section id="papers"><h2>The papers and their lineage</h2>
<p class="muted">Grouped by era, in the order they appeared. "Builds on" is the lineage the code follows: a
paper's module imports only from the modules of the papers listed there.</p>
{era_tables(sources, here)}
</section>
</div>"""
    site.write(here, page(here, "milestones: the history of deep learning as working code", body))
