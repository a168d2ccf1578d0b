"""The essay pages (essays/<slug>.html), one per lessons/*.md: markdown with math, links resolved
to pages of the book, macros filled in from the book's sources, and previous/next essay links.
"""

from __future__ import annotations

from milestones.book import markup
from milestones.book.layout import Site, esc, page
from milestones.book.links import resolver
from milestones.book.macros import render_with_macros
from milestones.book.sources import Lesson, Sources


def prev_next(lessons: list[Lesson], lesson: Lesson) -> str:
    n = lessons.index(lesson)
    prev_l = lessons[n - 1] if n else None
    next_l = lessons[n + 1] if n + 1 < len(lessons) else None
    nav = '<nav class="prevnext">'
    nav += (f'<a rel="prev" href="{prev_l.slug}.html"><span class="pn-dir">&larr; previous essay</span>'
            f'<span class="pn-title">{esc(prev_l.title)}</span></a>' if prev_l else '<span class="pn-empty"></span>')
    nav += (f'<a rel="next" href="{next_l.slug}.html"><span class="pn-dir">next essay &rarr;</span>'
            f'<span class="pn-title">{esc(next_l.title)}</span></a>' if next_l else '<span class="pn-empty"></span>')
    return nav + "</nav>"


def write_essay_page(sources: Sources, site: Site, lesson: Lesson) -> None:
    here = f"essays/{lesson.slug}.html"
    resolve = resolver(sources, site, here, lesson.source, None)
    body_html = render_with_macros(sources, here, lesson.source.read_text(encoding="utf-8"),
                                   lambda text: markup.render_markdown(text, resolve))
    body = (f'<div class="wrap"><article class="essay prose">{body_html}</article>'
            f"{prev_next(sources.lessons, lesson)}</div>")
    site.write(here, page(here, f"{lesson.title} · milestones", body))
