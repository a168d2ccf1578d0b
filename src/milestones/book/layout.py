"""The site's layout: the output folder and its assets (style.css, the Pygments stylesheet), the page
shell every page shares (header, navigation, footer), relative URLs between pages, and the marks that
recur on every page: paper links, status badges and dots, era and constraint chips.

`esc` is the book's one escaping helper: every text that comes from a run, the catalog or a file
goes through it before it is shown.
"""

from __future__ import annotations

import html
import posixpath
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from milestones import catalog
from milestones.book import markup
from milestones.book.timeline import ERA_COLORS, FALLBACK_COLOR, SHAPES, STATUS_LABELS, legend_icon
from milestones.core.errors import UserError

MARKER = ".milestones-book"  # marks a folder as ours, so a rebuild may replace it
NAVIGATION = [("index.html", "Home"), ("index.html#timeline", "Timeline"), ("index.html#papers", "Papers"),
              ("index.html#read", "Essays"), ("report.html", "Report")]

esc = html.escape


@dataclass
class Site:
    """The folder the book is written to, and the pages written so far."""

    out: Path
    pages: list[Path] = field(default_factory=list)

    def write(self, here: str, body: str) -> None:
        path = self.out / here
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
        self.pages.append(path)


def new_site(out: Path) -> Site:
    """An empty site in `out`, replacing an earlier book there but never a folder that holds no book."""
    if out.exists():
        if not out.is_dir():
            raise UserError(f"{out} exists and is not a folder; choose another --out")
        if any(out.iterdir()) and not (out / MARKER).is_file():
            raise UserError(f"{out} is not empty and holds no book; choose another --out or empty it")
        shutil.rmtree(out)
    (out / "assets").mkdir(parents=True)
    (out / MARKER).write_text("built by `milestones book`; rebuilding replaces this folder\n")
    return Site(out)


def write_stylesheets(site: Site) -> None:
    style = resources.files("milestones.book").joinpath("style.css").read_text(encoding="utf-8")
    (site.out / "assets" / "style.css").write_text(style, encoding="utf-8")
    (site.out / "assets" / "pygments.css").write_text(markup.pygments_css(), encoding="utf-8")


def rel(from_page: str, to: str) -> str:
    """The relative URL from one site path (e.g. "papers/relu.html") to another."""
    target, _, frag = to.partition("#")
    url = posixpath.relpath(target, posixpath.dirname(from_page) or ".") if target else ""
    return url + (f"#{frag}" if frag else "")


def page(here: str, title: str, body: str, description: str = "") -> str:
    """A whole HTML page at site path `here`: the shared head, header and footer around `body`."""
    links = "".join(f'<a href="{rel(here, href)}"{" aria-current=page" if href == here else ""}>{esc(label)}</a>'
                    for href, label in NAVIGATION)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<meta name="description" content="{esc(description or title)}">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{rel(here, 'assets/style.css')}">
<link rel="stylesheet" href="{rel(here, 'assets/pygments.css')}">
</head>
<body>
<header class="site-header"><div class="wrap">
<a class="brand" href="{rel(here, 'index.html')}"><span class="brand-mark">&#9672;</span> milestones</a>
<nav>{links}</nav>
</div></header>
<main>
{body}
</main>
<footer class="site-footer"><div class="wrap">
<p><strong>milestones</strong>: the history of deep learning as working, tested PyTorch code.
Built by <code>milestones book</code>; every verdict on these pages is computed by an experiment, \
never typed by hand.</p>
</div></footer>
</body>
</html>
"""


def paper_href(p: catalog.Paper) -> str:
    return f"papers/{p.id}.html"


def paper_link(here: str, p: catalog.Paper, text: str | None = None) -> str:
    return (f'<a href="{rel(here, paper_href(p))}" class="paper-link">'
            f'{esc(text if text is not None else p.id)}</a>')


def badge(status: str) -> str:
    return f'<span class="badge badge-{status}">{esc(STATUS_LABELS.get(status, status))}</span>'


def badge_dot(status: str) -> str:
    return f'<span class="dot dot-{status}" title="{esc(STATUS_LABELS.get(status, status), quote=True)}"></span>'


def era_chip(p: catalog.Paper) -> str:
    color = ERA_COLORS.get(p.era, FALLBACK_COLOR)
    return f'<span class="chip" style="--c:{color}">{esc(catalog.ERAS.get(p.era, p.era))}</span>'


def constraint_chip(p: catalog.Paper) -> str:
    return (f'<span class="chip chip-constraint">{legend_icon(SHAPES.get(p.constraint, "circle"))}'
            f'lifted: {esc(p.constraint)}</span>')
