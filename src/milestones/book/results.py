"""How a run's result.json is shown: its numbers, the checks that decide its verdict, its metrics,
and its artifacts (figures inline, text files previewed, anything else linked).

A result.json is data a run wrote, so every value in it is escaped and none is trusted to be of the
type it should be.
"""

from __future__ import annotations

import json
from pathlib import Path

from milestones import papers as paper_files
from milestones.book.layout import Site, esc, rel
from milestones.book.links import IMAGE_EXTS, copy_artifact
from milestones.book.sources import VERDICT_STATUS
from milestones.book.timeline import STATUS_LABELS

TEXT_EXTS = {".txt", ".md", ".json", ".jsonl", ".csv", ".tsv", ".log"}
TEXT_PREVIEW_CHARS = 6000


def fmt(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def fmt_margin(value) -> str:
    return f"{value:+.4g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "&ndash;"


def smallest_margin(result: dict) -> float | None:
    margins = [c.get("margin") for c in result.get("checks") or [] if isinstance(c, dict) and not c.get("control")]
    margins = [m for m in margins if isinstance(m, (int, float)) and not isinstance(m, bool)]
    return min(margins) if margins else None


def overrides(result: dict) -> dict:
    """The config a run changed with --set: {} for the reference run (and for results older than the field)."""
    changed = result.get("overrides")
    return changed if isinstance(changed, dict) else {}


def verdict_badge(status: str, result: dict) -> str:
    """The verdict as the run recorded it ("claim partly reproduces (2 of 3 checks)"); the status's
    wording when the result holds no verdict of a known kind."""
    verdict = result.get("verdict")
    known = isinstance(verdict, str) and (verdict in VERDICT_STATUS or verdict.startswith(paper_files.PARTLY))
    label = f"claim {verdict}" if known else STATUS_LABELS.get(status, status)
    return f'<span class="badge badge-{status}">{esc(label)}</span>'


def verdict_notes(result: dict) -> str:
    """What must be read with the verdict: the failing checks of a partial verdict (by name, or by
    what they measure where they have none), and the overrides of a run with a custom config."""
    notes = ""
    if str(result.get("verdict", "")).startswith(paper_files.PARTLY):
        notes += ('<p class="failing-checks">Failing: '
                  + ", ".join(f"<code>{esc(name)}</code>" for name in paper_files.failing_checks(result)) + "</p>")
    if overrides(result):
        changed = ", ".join(f"<code>{esc(str(k))}={esc(str(v))}</code>" for k, v in overrides(result).items())
        notes += f'<p class="custom-config"><strong>{esc(paper_files.CUSTOM_CONFIG)}</strong>: {changed}</p>'
    return notes


def checks_table(result: dict) -> str:
    """The checks that carry evidence, then the controls (true by construction), each marked as such."""
    rows = []
    checks = [c for c in result.get("checks") or [] if isinstance(c, dict)]
    for c in sorted(checks, key=lambda c: c.get("control") is True):
        ok = c.get("holds") is True
        control = ' <span class="muted small">(control: true by construction)</span>' if c.get("control") else ""
        rows.append(
            f'<tr class="{"ok" if ok else "bad"}"><td class="mark">{"&#10003;" if ok else "&#10007;"}</td>'
            f'<td>{esc(str(c.get("what", "")))}{control}</td><td class="num">{esc(fmt(c.get("value", "")))}</td>'
            f'<td class="op">{esc(str(c.get("op", "")))}</td>'
            f'<td>{esc(str(c.get("reference_what", "")))} <span class="num">'
            f'({esc(fmt(c.get("reference", "")))})</span></td>'
            f'<td class="num">{fmt_margin(c.get("margin"))}</td></tr>')
    if not rows:
        return '<p class="muted">This run recorded no checks.</p>'
    return ('<table class="checks"><thead><tr><th></th><th>measured</th><th>value</th><th></th>'
            '<th>against</th><th>margin</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table>")


def seeds_table(folded: dict) -> str:
    """A verdict over seeds (`papers.over_seeds`): on how many of the seeds each check held."""
    seeds = folded.get("seeds") if isinstance(folded.get("seeds"), list) else []
    rows = []
    for c in (c for c in folded.get("checks") or [] if isinstance(c, dict)):
        held, n = c.get("holds_on"), len(seeds)
        kind = "ok" if held == n else "bad" if held == 0 else "unstable"
        control = ' <span class="muted small">(control)</span>' if c.get("control") else ""
        rows.append(f'<tr class="{kind}"><td class="num">{esc(str(held))} of {n}</td>'
                    f'<td>{esc(str(c.get("check", "")))}{control}</td></tr>')
    return (f'<h3>Over seeds {esc(", ".join(map(str, seeds)))}</h3><p>The claim '
            f'<strong>{esc(str(folded.get("verdict", "")))}</strong> (<code>milestones reproduce --seeds</code>).</p>'
            '<table class="checks seeds"><thead><tr><th>holds on</th><th>check</th></tr></thead><tbody>'
            + "".join(rows) + "</tbody></table>")


def value_html(value) -> str:
    """A number, a short string, or a preview of a long text or a structure."""
    if isinstance(value, (bool, int, float)) or value is None:
        return f'<span class="num">{esc(fmt(value))}</span>'
    if isinstance(value, str) and "\n" not in value and len(value) <= 120:
        return f"<code>{esc(value)}</code>"
    text = value if isinstance(value, str) else json.dumps(value, indent=1, default=str)
    return f'<pre class="sample">{esc(text[:TEXT_PREVIEW_CHARS])}</pre>'


def metrics_table(metrics) -> str:
    if not isinstance(metrics, dict) or not metrics:
        return ""
    rows = "".join(f"<tr><th>{esc(str(k))}</th><td>{value_html(v)}</td></tr>" for k, v in metrics.items())
    return f'<details class="metrics" open><summary>All metrics</summary><table class="kv">{rows}</table></details>'


def artifacts_html(site: Site, here: str, paper_id: str, run: paper_files.LatestRun) -> str:
    """The run's artifacts, copied into the site: figures, then text previews, then other files."""
    figures, texts, others = [], [], []
    for name in run.result.get("artifacts") or []:
        if not isinstance(name, str):
            continue
        target = copy_artifact(site, paper_id, run.folder, name)
        if target is None:
            others.append(f'<li><code>{esc(name)}</code> <span class="muted">(missing from the run folder)</span></li>')
            continue
        url = esc(rel(here, target), quote=True)
        suffix = Path(name).suffix.lower()
        if suffix in IMAGE_EXTS:
            figures.append(f'<figure><a href="{url}"><img src="{url}" alt="{esc(name, quote=True)}">'
                           f'</a><figcaption><code>{esc(name)}</code></figcaption></figure>')
        elif suffix in TEXT_EXTS:
            text = (site.out / target).read_text(encoding="utf-8", errors="replace")
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
