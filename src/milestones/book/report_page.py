"""The reproduce report (report.html): every implemented paper's claim on one page, with its verdict,
its checks, the smallest margin, the wall time and the scale; then the papers still to come.
"""

from __future__ import annotations

from milestones import catalog
from milestones.book.layout import Site, badge, esc, page, paper_link
from milestones.book.results import fmt, fmt_margin, smallest_margin, verdict_badge, verdict_notes
from milestones.book.sources import Sources


def run_row(sources: Sources, here: str, p: catalog.Paper) -> str:
    """The row of a paper that has run: its claim with its checks folded, verdict, margin, time, scale."""
    status, r = sources.status(p), sources.runs[p.id].result
    wall = r.get("wall_s")
    checks = "".join(
        f'<li class="{"ok" if c.get("holds") is True else "bad"}">{esc(str(c.get("what", "")))}: '
        f'<span class="num">{esc(fmt(c.get("value", "")))}</span> {esc(str(c.get("op", "")))} '
        f'<span class="num">{esc(fmt(c.get("reference", "")))}</span> '
        f'<span class="muted">(margin {fmt_margin(c.get("margin"))})</span></li>'
        for c in r.get("checks") or [] if isinstance(c, dict))
    return (f'<tr class="row-{status}"><td>{paper_link(here, p)}<div class="muted small">{p.year}</div></td>'
            f'<td>{esc(str(r.get("claim", "")))}<details><summary>checks</summary><ul class="checklist">{checks}'
            f"</ul></details></td><td>{verdict_badge(status, r)}{verdict_notes(r)}</td>"
            f'<td class="num">{fmt_margin(smallest_margin(r))}</td>'
            f'<td class="num">{esc(fmt(wall)) + " s" if isinstance(wall, (int, float)) else "&ndash;"}</td>'
            f'<td>{esc(str(r.get("scale", "")))}</td></tr>')


def unrun_row(sources: Sources, here: str, p: catalog.Paper) -> str:
    """The row of an implemented paper without a result: its declared claim, and its crash if it had one."""
    status = sources.status(p)
    note = esc(str(sources.crashed.get(p.id, {}).get("error", ""))) or "not run yet"
    return (f'<tr class="row-{status}"><td>{paper_link(here, p)}<div class="muted small">{p.year}'
            f'</div></td><td>{esc(sources.claim(p))}</td><td>{badge(status)}</td>'
            f'<td class="num">&ndash;</td><td class="num">&ndash;</td><td class="muted">{note}</td></tr>')


def write_report_page(sources: Sources, site: Site) -> None:
    here = "report.html"
    rows, total_wall, n_run = [], 0.0, 0
    for p in sources.papers:
        if p.id in sources.runs:
            wall = sources.runs[p.id].result.get("wall_s")
            n_run += 1
            total_wall += wall if isinstance(wall, (int, float)) else 0.0
            rows.append(run_row(sources, here, p))
        elif sources.status(p) in ("error", "implemented"):
            rows.append(unrun_row(sources, here, p))
    counts = sources.counts()
    planned = [p for p in sources.papers if sources.status(p) in ("planned", "partial")]
    todo = ", ".join(paper_link(here, p) for p in planned) or "none"
    table = ('<table class="report"><thead><tr><th>paper</th><th>claim</th><th>verdict</th><th>smallest margin</th>'
             '<th>wall time</th><th>scale</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table>"
             if rows else '<p class="muted">No paper has been run yet: run <code>milestones reproduce</code>, '
                          "then <code>milestones book</code>.</p>")
    body = f"""<div class="wrap">
<h1>The reproduce report</h1>
<p class="lede">Every implemented paper's central claim, tested in miniature. A claim holds when every one of its
checks holds; the margin says how far the measured number sits on the right side of its threshold (negative: the
wrong side). The smallest margin is the check that came closest to failing (controls, true by construction, are \
left out).</p>
<ul class="stats"><li><strong>{counts["holds"]}</strong> claims hold</li>
<li><strong>{counts["fails"]}</strong> do not hold</li><li><strong>{counts["error"]}</strong> crashed</li>
<li><strong>{counts["implemented"]}</strong> not run yet</li>\
<li><strong>{total_wall:.1f} s</strong> of experiments</li></ul>
{table}
<p class="muted small">Results: the latest <code>result.json</code> of each paper under \
<code>{esc(str(sources.runs_root))}</code>
({n_run} run{"s" if n_run != 1 else ""}). Reproduce them with <code>milestones reproduce</code>.</p>
<h2>Still to come</h2><p>{len(planned)} papers have no experiment yet: {todo}.</p>
</div>"""
    site.write(here, page(here, "The reproduce report · milestones", body))
