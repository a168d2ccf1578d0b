"""The HTML book: built from real smoke runs (and from a fixture catalog), every page exists, every
internal link and image resolves, nothing loads from the network, math is MathML, run output is
escaped, and a real headless Chromium opens every page without a console error."""

import dataclasses
import json
import os
import re
import shutil
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest

from milestones import catalog, papers
from milestones.book import build_book
from milestones.book.build import LESSONS, find_lessons
from milestones.cli import main

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
EVIL = '<script>alert("pwned")</script>'


# ------------------------------------------------------------------------------------ helpers

class _Refs(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.refs: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.ids: set[str] = set()
        self.tags: list[str] = []
        self.attributes: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            self.attributes.add(name)
            if name in ("id", "name") and value:
                self.ids.add(value)
            if name in ("href", "src", "xlink:href", "srcset", "poster", "data") and value is not None:
                self.refs.append((tag, name, value))

    handle_startendtag = handle_starttag


def parse(path: Path) -> _Refs:
    parser = _Refs()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def site_problems(site: Path) -> list[str]:
    """Every internal link or image that does not resolve inside `site`, and every asset that
    would come from the network (only outbound <a href> links may leave the site)."""
    problems, parsed = [], {}
    pages = sorted(site.rglob("*.html"))
    for page in pages:
        parsed[page] = parse(page)
    for page in pages:
        for tag, attr, value in parsed[page].refs:
            where = f"{page.relative_to(site)}: <{tag} {attr}={value!r}>"
            if re.match(r"^(https?:)?//", value):
                if not (tag == "a" and attr == "href"):
                    problems.append(f"{where} loads from the network")
                continue
            if value.startswith(("data:", "mailto:")):
                continue
            if re.match(r"^[a-z][a-z0-9+.-]*:", value):
                problems.append(f"{where} uses an unexpected scheme")
                continue
            path, _, frag = value.partition("#")
            target = (page.parent / unquote(path)).resolve() if path else page
            if site.resolve() not in target.parents and target != site.resolve():
                problems.append(f"{where} leaves the site")
            elif not target.is_file():
                problems.append(f"{where} does not exist")
            elif frag and target.suffix == ".html":
                ids = parsed[target].ids if target in parsed else parse(target).ids
                if unquote(frag) not in ids:
                    problems.append(f"{where} points at a missing anchor")
    for css in site.rglob("*.css"):
        for url in re.findall(r"url\(([^)]*)\)", css.read_text()):
            if re.match(r"""^["']?(https?:)?//""", url):
                problems.append(f"{css.name} loads {url} from the network")
        if "@import" in css.read_text():
            problems.append(f"{css.name} imports another stylesheet")
    return problems


# ------------------------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    """A real smoke run of every implemented paper that is quick enough: backprop (the reference)."""
    runs = tmp_path_factory.mktemp("runs")
    assert main(["run", "backprop", "--scale", "smoke", "--out", str(runs / "backprop"), "--quiet"]) == 0
    return runs


@pytest.fixture(scope="module")
def real_book(smoke_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("book") / "book"
    started = time.perf_counter()
    built = build_book(out, smoke_runs)
    return out, built, time.perf_counter() - started


@pytest.fixture(scope="module")
def fixture_book(smoke_runs, tmp_path_factory):
    """A book of a fixture catalog: real backprop (with its real run), a paper whose run wrote hostile
    text, one implemented but never run, and one not yet built."""
    tmp = tmp_path_factory.mktemp("fixture")
    backprop = catalog.get("backprop")
    evil = dataclasses.replace(backprop, id="evil", title="Attention & <b>Escaping</b> Is All You Need",
                               year=2017, date="2017-06", era="transformers", constraint="architecture",
                               builds_on=("backprop",), idea="Shows that <i>markup</i> in data stays text.")
    unrun = dataclasses.replace(evil, id="unrun", title="An Implemented Paper", date="2018-01", year=2018,
                                builds_on=("evil",))
    later = dataclasses.replace(evil, id="later", title="A Paper Still To Come", date="2019-01", year=2019,
                                builds_on=("evil", "unrun"), era="frontier")
    src = tmp / "src"
    for p in (evil, unrun):
        folder = src / p.era / p.id
        folder.mkdir(parents=True)
        (folder / "model.py").write_text('"""A model."""\n\n\ndef f(x):\n    return x * 2  # doubles x\n')
        (folder / "experiment.py").write_text(f'CLAIM = ("{p.id} claims " \n         "something testable.")\n')
    (src / "transformers" / "evil" / "notes.md").write_text(
        "# Evil\n\n## The math\n\nInline $a_i^2 + b_{ij}$ and display\n\n$$\\sum_{k=1}^{n} k = \\frac{n(n+1)}{2}$$\n\n"
        "Code keeps its dollars: `echo $HOME` and\n\n```python\nprice = '$5 and $6'\n```\n\n"
        "Builds on [backprop](../../foundations/backprop/notes.md) and cites [nothing](../../nowhere/zzz/notes.md), "
        "its own [model](model.py), and [the paper](https://example.org/paper).\n\n"
        "![a figure from the run](grid.png)\n\n![a figure nobody made](missing.png)\n")
    tests_dir = tmp / "tests"
    tests_dir.mkdir()
    shutil.copy(papers.TESTS / "test_backprop.py", tests_dir)
    (tests_dir / "test_evil.py").write_text("def test_nothing():\n    pass\n")
    runs = tmp / "runs"
    shutil.copytree(smoke_runs / "backprop", runs / "backprop")
    evil_run = runs / "evil"
    evil_run.mkdir(parents=True)
    (evil_run / "samples.txt").write_text(f"generated: {EVIL} & more\n")
    (evil_run / "grid.png").write_bytes((smoke_runs / "backprop" / "encoder_codes.png").read_bytes())
    (tmp / "secret.txt").write_text("must not be copied")
    (evil_run / "result.json").write_text(json.dumps({
        "paper": "evil", "claim": f"The model writes {EVIL}.", "scale": "smoke", "holds": False,
        "verdict": "does not hold", "seed": 0, "wall_s": 1.5, "config": {"prompt": EVIL},
        "checks": [{"what": f"label {EVIL}", "value": 0.1, "op": ">=", "reference": 0.5,
                    "reference_what": "<b>half</b>", "holds": False, "margin": -0.4}],
        "metrics": {"sample": f"{EVIL}\nline two", "label": "<img src=x onerror=alert(1)>", "n": 3},
        "artifacts": ["samples.txt", "grid.png", "../secret.txt", "/etc/passwd", "absent.png"]}))
    fixture_papers = (backprop, evil, unrun, later)

    def locate(p):
        return papers.folder(p) if p.id == "backprop" else src / p.era / p.id

    out = tmp / "book"
    build_book(out, runs, papers=fixture_papers, locate=locate, tests_dir=tests_dir)
    return out


# ------------------------------------------------------------------------------------ the real book

def test_every_page_exists(real_book):
    out, built, _ = real_book
    assert built.index == out / "index.html" and built.index.is_file()
    assert (out / "report.html").is_file()
    for paper in catalog.PAPERS:
        assert (out / "papers" / f"{paper.id}.html").is_file(), paper.id
    lessons = find_lessons(LESSONS)
    assert len(lessons) >= 3
    for lesson in lessons:
        assert (out / "essays" / f"{lesson.slug}.html").is_file()
    assert len(built.pages) == len(catalog.PAPERS) + 2 + len(lessons)


def test_every_link_and_image_resolves_and_nothing_comes_from_the_network(real_book):
    out, _, _ = real_book
    assert site_problems(out) == []


def test_no_javascript_anywhere(real_book):
    out, _, _ = real_book
    for page in out.rglob("*.html"):
        parsed = parse(page)
        assert "script" not in parsed.tags and "<script" not in page.read_text().lower(), page
        assert not any(a.startswith("on") for a in parsed.attributes), page  # no inline event handlers


def test_index_has_timeline_of_every_paper_with_status_and_lineage(real_book):
    out, _, _ = real_book
    html = (out / "index.html").read_text()
    svg = html[html.index("<svg class=\"timeline\""):html.index("</svg>", html.index("<svg class=\"timeline\""))]
    for paper in catalog.PAPERS:
        assert f'href="papers/{paper.id}.html"' in svg, paper.id
    assert ("tl-holds" in svg or "tl-fails" in svg) and "tl-planned" in svg  # backprop ran; most are to come
    assert "tl-edge" in svg  # builds_on drawn as edges
    for era in catalog.ERAS.values():
        assert era.replace("&", "&amp;") in html
    for constraint in catalog.CONSTRAINTS:
        assert constraint.replace("&", "&amp;") in html
    assert "built upon by" in html.lower() and 'href="report.html"' in html


def test_backprop_page_has_verdict_numbers_plots_math_code_and_lineage(real_book, smoke_runs):
    out, _, _ = real_book
    html = (out / "papers" / "backprop.html").read_text()
    result = json.loads((smoke_runs / "backprop" / "result.json").read_text())
    assert result["claim"].replace("&", "&amp;")[:80] in html
    assert f"badge-{'holds' if result['holds'] else 'fails'}" in html
    for check in result["checks"]:
        assert check["what"].replace("&", "&amp;") in html
    for name in result["artifacts"]:
        assert f'src="../runs/backprop/{name}"' in html
        assert (out / "runs" / "backprop" / name).read_bytes() == (smoke_runs / "backprop" / name).read_bytes()
    assert html.count("<math") >= 10 and "math-error" not in html  # MathML, every formula converted
    assert '<div class="highlight">' in html and "class DeltaRuleMLP" not in html  # highlighted, so split in spans
    assert "DeltaRuleMLP" in html and "generalized delta rule" in html  # model.py with its comments
    assert "@article{rumelhart1986learning" in html
    assert 'href="rnn.html"' in html and 'rel="next"' in html  # built upon by; next in history
    assert "start of the history" in html  # no previous paper
    assert "https://doi.org/10.1038/323533a0" in html


def test_unbuilt_paper_page_says_so(real_book):
    out, _, _ = real_book
    html = (out / "papers" / "grpo.html").read_text()
    assert "still to be built" in html and "not written yet" in html
    assert 'rel="prev"' in html and "the latest paper" in html


def test_report_lists_every_run_claim(real_book, smoke_runs):
    out, _, _ = real_book
    html = (out / "report.html").read_text()
    result = json.loads((smoke_runs / "backprop" / "result.json").read_text())
    assert 'href="papers/backprop.html"' in html
    assert f"{min(c['margin'] for c in result['checks']):+.4g}" in html
    assert f"{result['wall_s']:.4g} s" in html


def test_essays_cite_our_verdicts_and_render_math_free_of_errors(real_book):
    out, _, _ = real_book
    for lesson in find_lessons(LESSONS):
        html = (out / "essays" / f"{lesson.slug}.html").read_text()
        assert "math-error" not in html and "dead-link" not in html, lesson.slug
        cites = re.findall(r'href="\.\./papers/backprop\.html#result"', html)
        assert cites or 'class="claim-box' in html, f"{lesson.slug} cites no verdict of ours"
        assert len(re.findall(r'href="\.\./papers/\w+\.html', html)) >= 5, lesson.slug


def test_book_builds_in_a_few_seconds(real_book):
    _, _, seconds = real_book
    assert seconds < 20


# ------------------------------------------------------------------------------------ fixture catalog

def test_fixture_book_has_exactly_its_pages_and_clean_links(fixture_book):
    pages = sorted(p.name for p in (fixture_book / "papers").glob("*.html"))
    assert pages == ["backprop.html", "evil.html", "later.html", "unrun.html"]
    assert site_problems(fixture_book) == []


def test_run_output_is_escaped(fixture_book):
    html = (fixture_book / "papers" / "evil.html").read_text()
    for page in fixture_book.rglob("*.html"):
        parsed = parse(page)
        assert "script" not in parsed.tags and not any(a.startswith("on") for a in parsed.attributes), page
        assert "<script" not in page.read_text().lower() and "<img src=x" not in page.read_text()
    assert "The model writes &lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;." in html  # the claim
    assert "generated: &lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; &amp; more" in html  # samples.txt
    assert "label &lt;script&gt;" in html and "&lt;b&gt;half&lt;/b&gt;" in html  # check names
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # a metric
    assert "Attention &amp; &lt;b&gt;Escaping&lt;/b&gt; Is All You Need" in html  # catalog text too
    report = (fixture_book / "report.html").read_text()
    assert "&lt;script&gt;" in report and "badge-fails" in report


def test_artifacts_cannot_escape_the_run_folder(fixture_book):
    assert not list(fixture_book.rglob("secret.txt")) and not list(fixture_book.rglob("passwd"))
    html = (fixture_book / "papers" / "evil.html").read_text()
    assert "absent.png" in html and "missing from the run folder" in html
    assert (fixture_book / "runs" / "evil" / "samples.txt").is_file()


def test_notes_math_links_and_figures(fixture_book):
    html = (fixture_book / "papers" / "evil.html").read_text()
    assert html.count("<math") == 2 and 'display="block"' in html and "math-error" not in html
    assert "$HOME" in html and "$5 and $6" in html  # code is never math
    assert 'href="backprop.html#notes"' in html  # a link to another paper's notes: its page
    assert '<span class="dead-link">nothing</span>' in html  # a link to no page keeps its text only
    assert 'href="#implementation"' in html and 'href="https://example.org/paper"' in html
    assert '<img alt="a figure from the run" src="../runs/evil/grid.png"' in html
    assert "[figure: a figure nobody made]" in html


def test_missing_parts_and_lineage(fixture_book):
    unrun = (fixture_book / "papers" / "unrun.html").read_text()
    assert "Not run yet" in unrun and "unrun claims something testable." in unrun
    assert "notes for this paper are not written yet" in unrun
    later = (fixture_book / "papers" / "later.html").read_text()
    assert "still to be built" in later and "No implementation yet" in later
    assert 'href="evil.html"' in later and 'href="unrun.html"' in later  # builds on
    backprop = (fixture_book / "papers" / "backprop.html").read_text()
    assert 'href="evil.html"' in backprop and "rnn.html" not in backprop  # only the fixture's papers
    evil = (fixture_book / "papers" / "evil.html").read_text()
    assert 'rel="prev" href="backprop.html"' in evil and 'rel="next" href="unrun.html"' in evil


# ------------------------------------------------------------------------------------ command line

def test_cli_book_builds_and_prints_the_index(capsys, smoke_runs, tmp_path):
    out = tmp_path / "site"
    assert main(["book", "--out", str(out), "--runs", str(smoke_runs)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1] == str((out / "index.html").resolve())
    assert "badge-holds" in (out / "papers" / "backprop.html").read_text() or \
        "badge-fails" in (out / "papers" / "backprop.html").read_text()
    assert main(["book", "--out", str(out), "--runs", str(smoke_runs)]) == 0  # a rebuild replaces it


def test_cli_book_refuses_a_folder_that_is_not_a_book(capsys, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    assert main(["book", "--out", str(tmp_path / "mine")]) == 2
    err = capsys.readouterr().err
    assert "holds no book" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"
    assert main(["book", "--out", str(tmp_path / "site"), "--runs", str(tmp_path / "no-such-runs")]) == 2
    assert "is not a folder" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ a real browser

def test_chromium_opens_every_page_without_console_errors(real_book):
    from milestones.book.browser import Chromium, find_chromium

    if find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI; .ci/run installs it (apt-get install -y chromium)")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    out, _, _ = real_book
    pages = [out / "index.html", out / "report.html", *sorted((out / "essays").glob("*.html")),
             *(out / "papers" / f"{p.id}.html" for p in catalog.PAPERS)]
    shots = {out / "index.html": ARTIFACTS / "book-index.png",
             out / "papers" / "backprop.html": ARTIFACTS / "book-backprop.png"}
    for shot in shots.values():
        shot.unlink(missing_ok=True)
    problems = {}
    with Chromium() as browser:
        for page in pages:
            found = browser.open(page.as_uri(), screenshot=shots.get(page))
            if found:
                problems[str(page.relative_to(out))] = found
        # the checker itself must see a broken page as broken
        bad = out / "broken-on-purpose.html"
        bad.write_text('<img src="nope.png"><link rel="stylesheet" href="gone.css">')
        assert browser.open(bad.as_uri())
    assert problems == {}
    for shot in shots.values():
        assert shot.stat().st_size > 20_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------ verdicts

def test_partial_verdict_names_its_failing_checks_and_a_custom_config_is_marked(tmp_path):
    """A result.json of the current contract: a partial verdict, checks with and without a name, and
    overrides from --set (hostile, so that they must be escaped). Paper page, report and an essay's
    macros show the verdict as recorded, the failing checks, and the custom-config mark."""
    relu = catalog.get("relu")
    run = tmp_path / "runs" / "relu"
    run.mkdir(parents=True)
    check = {"value": 1.0, "op": "<", "reference": 0.5, "reference_what": "half", "margin": -0.5}
    (run / "result.json").write_text(json.dumps({
        "paper": "relu", "claim": "Rectifiers train faster.", "scale": "smoke", "holds": False, "seed": 0,
        "verdict": "partly reproduces (1 of 3 checks)", "wall_s": 1.0, "config": {"steps": 5}, "artifacts": [],
        "overrides": {"steps": 5, "note": EVIL},
        "checks": [check | {"what": "loss against tanh", "name": "beats_tanh", "holds": False},
                   check | {"what": "loss against sigmoid", "name": "beats_sigmoid", "holds": True},
                   check | {"what": f"sparsity {EVIL}", "name": None, "holds": False}]}))
    lessons = tmp_path / "lessons"
    lessons.mkdir()
    (lessons / "01-one.md").write_text("# One\n\n<!-- book:claim relu -->\n\nSee <!-- book:verdict relu -->.\n")
    out = tmp_path / "book"
    build_book(out, tmp_path / "runs", papers=(relu,), lessons_dir=lessons)
    escaped_evil = "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;"
    pages = {name: (out / name).read_text() for name in ("papers/relu.html", "report.html", "essays/one.html")}
    for name, html in pages.items():
        assert "<script" not in html, name
        assert 'class="badge badge-fails">claim partly reproduces (1 of 3 checks)</span>' in html, name
        assert "custom config, not the reference run" in html, name
    for name in ("papers/relu.html", "report.html"):
        failing = pages[name][pages[name].index('class="failing-checks"'):]
        failing = failing[:failing.index("</p>")]
        assert "<code>beats_tanh</code>" in failing and f"<code>sparsity {escaped_evil}</code>" in failing, name
        assert "beats_sigmoid" not in failing, name
        assert f"<code>note={escaped_evil}</code>" in pages[name] and "<code>steps=5</code>" in pages[name], name


def test_the_paper_page_shows_the_newest_verdict_over_seeds(tmp_path):
    relu = catalog.get("relu")
    runs = tmp_path / "runs"
    (runs / "r" / "relu" / "seed-0").mkdir(parents=True)
    check = {"what": "loss against tanh", "value": 1.0, "op": "<", "reference": 0.5, "reference_what": "half",
             "margin": -0.5, "holds": False}
    (runs / "r" / "relu" / "seed-0" / "result.json").write_text(json.dumps({
        "paper": "relu", "claim": "Rectifiers train faster.", "scale": "quick", "holds": False, "seed": 0,
        "verdict": "does not hold", "wall_s": 1.0, "config": {}, "artifacts": [], "checks": [check]}))
    folded = {"paper": "relu", "seeds": [0, 1, 2], "verdict": "unstable: beats_tanh holds on 1 of 3",
              "stable": False, "checks": [{"check": "beats_tanh", "control": False, "holds_on": 1}]}
    (runs / "r" / "summary.json").write_text(json.dumps({"papers": [], "over_seeds": [folded]}))
    build_book(tmp_path / "book", runs, papers=(relu,), lessons_dir=tmp_path / "no-lessons")
    html = (tmp_path / "book" / "papers" / "relu.html").read_text()
    assert "Over seeds 0, 1, 2" in html and "unstable: beats_tanh holds on 1 of 3" in html
    assert '<tr class="unstable"><td class="num">1 of 3</td><td>beats_tanh</td></tr>' in html


def test_a_result_without_the_new_fields_keeps_the_old_wording(fixture_book):
    html = (fixture_book / "papers" / "evil.html").read_text()
    assert 'class="badge badge-fails">claim does not hold</span>' in html
    assert "custom config" not in html and "failing-checks" not in html


def test_controls_are_shown_apart_after_the_checks_that_carry_evidence():
    from milestones.book.results import checks_table, smallest_margin

    checks = [{"what": "a control", "value": 3, "op": ">=", "reference": 3, "reference_what": "3x", "holds": True,
               "margin": 0.0, "control": True},
              {"what": "the evidence", "value": 0.9, "op": ">", "reference": 0.5, "reference_what": "chance",
               "holds": True, "margin": 0.4, "control": False}]
    html = checks_table({"checks": checks})
    assert html.index("the evidence") < html.index("a control") < html.index("(control: true by construction)")
    assert html.count("(control") == 1 and smallest_margin({"checks": checks}) == 0.4  # the control's 0 is left out
