"""Markdown with LaTeX math to HTML, rendered at build time: MathML for the math, Pygments for code.

Math is cut out of the text before markdown sees it (so `_` and `*` inside a formula are not taken
for emphasis), converted by latex2mathml, and put back afterwards. Code blocks and inline code are
left alone, so a `$` inside code is never math. Links are handed to a resolver that maps them to
pages of the book (or drops them when they lead nowhere inside it).
"""

from __future__ import annotations

import html
import re
import warnings
from collections.abc import Callable

import markdown
from latex2mathml.converter import convert as latex_to_mathml
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

PYGMENTS_STYLE = "friendly"

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
_INLINE_CODE = re.compile(r"(`+)(?:.+?)\1", re.S)
_DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.S)
_INLINE = re.compile(r"(?<![\\$\w])\$(?=\S)([^$\n]+?)(?<=[^\s\\])\$(?![\w$])")
_TOKEN = "MATHXTOKEN{}X"
_TOKEN_RE = re.compile(r"MATHXTOKEN(\d+)X")
_LINK = re.compile(r'<(a|img)\b([^>]*?)\s(href|src)="([^"]*)"([^>]*)>(?:(.*?)</a>)?', re.S)


def math_html(latex: str, display: bool) -> str:
    """MathML for one formula; on a formula latex2mathml cannot parse, the escaped source in a
    `<code class="math-error">` (and a warning), so one bad formula never breaks the book."""
    try:
        mathml = latex_to_mathml(latex.strip(), display="block" if display else "inline")
    except Exception as e:  # latex2mathml raises many exception types
        warnings.warn(f"could not render math {latex.strip()!r}: {e}", stacklevel=2)
        return f'<code class="math-error">{html.escape(latex)}</code>'
    mathml = mathml.replace("<math ", f'<math alttext="{html.escape(latex.strip(), quote=True)}" ', 1)
    return f'<div class="math-display">{mathml}</div>' if display else mathml


def _protect_math(text: str) -> tuple[str, list[str]]:
    """Replace every formula outside code by a token; return the text and the rendered formulas."""
    rendered: list[str] = []

    def keep(m: re.Match, display: bool) -> str:
        rendered.append(math_html(m.group(1), display))
        token = _TOKEN.format(len(rendered) - 1)
        return f"\n\n{token}\n\n" if display else token

    def outside_code(chunk: str) -> str:
        pieces, last = [], 0
        for m in _INLINE_CODE.finditer(chunk):
            pieces.append(_math_in_prose(chunk[last:m.start()], keep))
            pieces.append(m.group(0))
            last = m.end()
        pieces.append(_math_in_prose(chunk[last:], keep))
        return "".join(pieces)

    out, last = [], 0
    for m in _FENCE.finditer(text):
        out.append(outside_code(text[last:m.start()]))
        out.append(m.group(0))
        last = m.end()
    out.append(outside_code(text[last:]))
    return "".join(out), rendered


def _math_in_prose(chunk: str, keep) -> str:
    chunk = _DISPLAY.sub(lambda m: keep(m, True), chunk)
    chunk = _INLINE.sub(lambda m: keep(m, False), chunk)
    return chunk.replace(r"\$", "&#36;")


def _restore_math(body: str, rendered: list[str]) -> str:
    body = re.sub(r"<p>\s*(MATHXTOKEN\d+X)\s*</p>", r"\1", body)
    return _TOKEN_RE.sub(lambda m: rendered[int(m.group(1))], body)


Resolver = Callable[[str, str], "str | None"]  # (kind "a"|"img", target) -> new target, or None to drop


def rewrite_links(body: str, resolve: Resolver) -> str:
    """Send every `<a href>` and `<img src>` through `resolve`; a link it drops keeps its text,
    an image it drops keeps its alt text."""

    def fix(m: re.Match) -> str:
        tag, before, attr, target, after, text = m.groups()
        new = resolve(tag, html.unescape(target))
        if new is None:
            if tag == "a":
                return f'<span class="dead-link">{text or ""}</span>'
            alt = re.search(r'alt="([^"]*)"', before + after)
            return f'<span class="missing-figure">[figure: {alt.group(1) if alt else "not available"}]</span>'
        external = new.startswith(("http://", "https://"))
        extra = ' class="external" rel="noopener"' if tag == "a" and external else ""
        closing = f"{text}</a>" if tag == "a" else ""
        return f'<{tag}{before} {attr}="{html.escape(new, quote=True)}"{extra}{after}>{closing}'

    return _LINK.sub(fix, body)


def render_markdown(text: str, resolve: Resolver | None = None) -> str:
    """HTML for a markdown text with `$...$` and `$$...$$` math and fenced code."""
    protected, rendered = _protect_math(text)
    md = markdown.Markdown(
        extensions=["fenced_code", "tables", "codehilite", "sane_lists", "toc", "attr_list"],
        extension_configs={"codehilite": {"css_class": "highlight", "guess_lang": False},
                           "toc": {"permalink": False}},
        output_format="html",
    )
    body = _restore_math(md.convert(protected), rendered)
    return rewrite_links(body, resolve) if resolve else body


def highlight_python(source: str, anchor_prefix: str = "L") -> str:
    """Python source as highlighted HTML with line numbers."""
    formatter = HtmlFormatter(cssclass="highlight", linenos="inline", lineanchors=anchor_prefix,
                              anchorlinenos=False, wrapcode=True)
    return highlight(source, PythonLexer(), formatter)


def pygments_css() -> str:
    return HtmlFormatter(style=PYGMENTS_STYLE).get_style_defs(".highlight")
