"""The timeline figure: every catalog paper by date, one lane per era, drawn as hand-written SVG.

Colour is the era, the marker's shape is the constraint the paper lifted, and its fill and ring are
its status (not yet built: hollow; implemented: filled; claim holds: green ring; claim does not
hold: red dashed ring). Faint curves join each paper to the papers it builds on; hovering a paper
lights up its own (pure CSS, no JavaScript). Every marker links to the paper's page.
"""

from __future__ import annotations

import math
from html import escape

ERA_COLORS = {
    "foundations": "#2f6db5",
    "optimization": "#e07b24",
    "sequences": "#22907f",
    "transformers": "#7a52b3",
    "generative": "#c43f7a",
    "frontier": "#8a6a1f",
}
FALLBACK_COLOR = "#666666"
SHAPES = {  # constraint -> marker shape
    "data": "circle",
    "parameters": "square",
    "optimization & regularization": "diamond",
    "architecture": "triangle",
    "compute": "triangle-down",
    "compute efficiency": "hexagon",
    "alignment": "star",
}
STATUS_LABELS = {
    "holds": "claim holds",
    "fails": "claim does not hold",
    "error": "experiment crashed",
    "implemented": "implemented, not run yet",
    "partial": "in progress",
    "planned": "not yet built",
}

WIDTH = 1200
LEFT = 170  # room for the lane titles
RIGHT = 1185
SPLIT_YEAR, FIRST_YEAR, LAST_YEAR = 2010.0, 1985.0, 2025.0
SPLIT_X = LEFT + 0.2 * (RIGHT - LEFT)  # 1985-2010 gets a fifth of the width: few papers there
ROW_H, LANE_PAD, R = 21, 12, 6.0
RING = R + 5.2  # the verdict ring around a marker
LABEL_DX = RING + 2  # from a marker's centre to its label
CHAR_W = 6.1  # average width of a label character at 11px


def x_of(date: str) -> float:
    year = int(date[:4]) + (int(date[5:7]) - 0.5) / 12
    if year <= SPLIT_YEAR:
        return LEFT + (year - FIRST_YEAR) / (SPLIT_YEAR - FIRST_YEAR) * (SPLIT_X - LEFT)
    return SPLIT_X + (year - SPLIT_YEAR) / (LAST_YEAR - SPLIT_YEAR) * (RIGHT - SPLIT_X)


def marker(shape: str, x: float, y: float, r: float = R) -> str:
    """SVG geometry (without style attributes) for one marker centred at (x, y)."""
    if shape == "square":
        s = r * 0.9
        return f'<rect x="{x - s:.1f}" y="{y - s:.1f}" width="{2 * s:.1f}" height="{2 * s:.1f}"'
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}"'
    if shape == "diamond":
        pts = [(x, y - r * 1.25), (x + r * 1.25, y), (x, y + r * 1.25), (x - r * 1.25, y)]
    elif shape == "triangle":
        pts = [(x, y - r * 1.2), (x + r * 1.15, y + r * 0.85), (x - r * 1.15, y + r * 0.85)]
    elif shape == "triangle-down":
        pts = [(x, y + r * 1.2), (x + r * 1.15, y - r * 0.85), (x - r * 1.15, y - r * 0.85)]
    elif shape == "hexagon":
        pts = [(x + r * 1.1 * math.cos(a), y + r * 1.1 * math.sin(a)) for a in
               (math.pi / 3 * k for k in range(6))]
    else:  # star
        pts = [(x + (r * 1.35 if k % 2 == 0 else r * 0.6) * math.sin(math.pi / 5 * k),
                y - (r * 1.35 if k % 2 == 0 else r * 0.6) * math.cos(math.pi / 5 * k)) for k in range(10)]
    return '<polygon points="' + " ".join(f"{px:.1f},{py:.1f}" for px, py in pts) + '"'


def styled_marker(shape: str, color: str, status: str, x: float, y: float, r: float = R) -> str:
    """A marker with its status: hollow, tinted or filled, with a ring for a verdict."""
    fill = {"planned": "#ffffff", "partial": color + "55"}.get(status, color)
    parts = []
    if status in ("holds", "fails", "error"):
        ring = "#1a8f4c" if status == "holds" else "#d0312d"
        dash = ' stroke-dasharray="3 2"' if status != "holds" else ""
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r * 1.7:.1f}" fill="none" stroke="{ring}" '
                     f'stroke-width="2"{dash}/>')
    parts.append(f'{marker(shape, x, y, r)} fill="{fill}" stroke="{color}" stroke-width="1.6"/>')
    return "".join(parts)


def legend_icon(shape: str = "circle", color: str = "#555555", status: str = "implemented") -> str:
    """A small standalone SVG of one marker, for legends in the HTML."""
    return (f'<svg class="icon" width="22" height="22" viewBox="0 0 22 22" aria-hidden="true">'
            f'{styled_marker(shape, color, status, 11, 11, 5)}</svg>')


def timeline_svg(papers, status_of, href_of, era_titles: dict[str, str]) -> str:
    """The figure. `status_of(paper)` is a key of STATUS_LABELS; `href_of(paper)` the page link."""
    eras = [e for e in era_titles if any(p.era == e for p in papers)]
    eras += sorted({p.era for p in papers} - set(eras))
    # lay out labels: within a lane, each paper takes the first row where its label fits
    place: dict[str, tuple[float, int, bool]] = {}  # x, row, label on the left of the marker
    rows_in: dict[str, int] = {}
    for era in eras:
        rows: list[list[tuple[float, float]]] = []  # occupied intervals per row
        for p in sorted((p for p in papers if p.era == era), key=lambda p: p.date):
            x = x_of(p.date)
            width = len(p.id) * CHAR_W
            left_label = x + LABEL_DX + width > WIDTH - 4  # no room on the right: label on the left
            span = (x - LABEL_DX - width, x + RING) if left_label else (x - RING, x + LABEL_DX + width)
            row = next((i for i, taken in enumerate(rows)
                        if all(span[1] + 3 < a or span[0] - 3 > b for a, b in taken)), None)
            if row is None:
                rows.append([])
                row = len(rows) - 1
            rows[row].append(span)
            place[p.id] = (x, row, left_label)
        rows_in[era] = max(len(rows), 1)
    top, lane_top, y = 34, {}, 34
    for era in eras:
        lane_top[era] = y
        y += rows_in[era] * ROW_H + 2 * LANE_PAD
    bottom = y
    height = bottom + 34
    pos = {p.id: (place[p.id][0], lane_top[p.era] + LANE_PAD + ROW_H * (place[p.id][1] + 0.5)) for p in papers}

    out = [f'<svg class="timeline" viewBox="0 0 {WIDTH} {height}" role="img" '
           f'aria-labelledby="timeline-title" xmlns="http://www.w3.org/2000/svg">',
           '<title id="timeline-title">Every paper in the catalog by date, one lane per era</title>',
           f'<rect x="{LEFT}" y="{top - 6}" width="{SPLIT_X - LEFT:.1f}" height="{bottom - top + 12}" '
           f'class="tl-compressed"/>',
           f'<text x="{(LEFT + SPLIT_X) / 2:.1f}" y="{top - 12}" class="tl-note" text-anchor="middle">'
           f'1985 to 2010, compressed</text>']
    for i, era in enumerate(eras):  # lane backgrounds and titles
        color = ERA_COLORS.get(era, FALLBACK_COLOR)
        h = rows_in[era] * ROW_H + 2 * LANE_PAD
        out.append(f'<rect x="8" y="{lane_top[era]}" width="{RIGHT - 8 + 8}" height="{h}" rx="6" '
                   f'class="tl-lane{" tl-lane-alt" if i % 2 else ""}"/>')
        out.append(f'<rect x="8" y="{lane_top[era]}" width="5" height="{h}" rx="2" fill="{color}"/>')
        out.append(f'<text x="20" y="{lane_top[era] + h / 2 + 4:.1f}" class="tl-era" fill="{color}">'
                   f'{escape(era_titles.get(era, era))}</text>')
    ticks = [1985, 1990, 1995, 2000, 2005, 2010] + list(range(2011, int(LAST_YEAR) + 1))
    for year in ticks:  # year grid and axis labels
        tx = x_of(f"{year}-01") - (x_of("2000-02") - x_of("2000-01")) / 2
        major = year <= 2010 or year % 5 == 0
        out.append(f'<line x1="{tx:.1f}" y1="{top - 4}" x2="{tx:.1f}" y2="{bottom + 4}" '
                   f'class="tl-grid{" tl-grid-major" if major else ""}"/>')
        label = f"’{year % 100:02d}" if year > 2010 and year % 5 else str(year)  # ’11, ’12, ..., 2015
        out.append(f'<text x="{tx:.1f}" y="{bottom + 20}" class="tl-year" text-anchor="middle">{label}</text>')
    by_id = {p.id: p for p in papers}
    for p in sorted(papers, key=lambda p: p.date):
        color = ERA_COLORS.get(p.era, FALLBACK_COLOR)
        x, y0 = pos[p.id]
        status = status_of(p)
        out.append('<g class="tl-paper">')
        for parent in p.builds_on:
            if parent not in by_id:
                continue
            px, py = pos[parent]
            mid = (px + x) / 2
            out.append(f'<path d="M{px:.1f},{py:.1f} C{mid:.1f},{py:.1f} {mid:.1f},{y0:.1f} {x:.1f},{y0:.1f}" '
                       f'class="tl-edge" stroke="{color}"/>')
        tip = (f"{p.title} ({p.short_authors}, {p.year}); lifted: {p.constraint}; "
               f"{STATUS_LABELS.get(status, status)}")
        out.append(f'<a href="{escape(href_of(p), quote=True)}" class="tl-link tl-{status}">'
                   f'<title>{escape(tip)}</title>')
        out.append(styled_marker(SHAPES.get(p.constraint, "circle"), color, status, x, y0))
        left_label = place[p.id][2]
        lx, anchor = (x - LABEL_DX, ' text-anchor="end"') if left_label else (x + LABEL_DX, "")
        out.append(f'<text x="{lx:.1f}" y="{y0 + 3.8:.1f}" class="tl-label"{anchor}>{escape(p.id)}</text>')
        out.append('</a></g>')
    out.append('</svg>')
    return "\n".join(out)
