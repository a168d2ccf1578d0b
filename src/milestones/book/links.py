"""Links and artifacts: where a link written in notes or an essay leads inside the book, and which
files the book copies into itself (a run's plots and samples, a figure beside a markdown file).

Nothing outside the run folder or the markdown file's own folder is ever copied, and no image is
loaded from the network: the book works from disk.
"""

from __future__ import annotations

import posixpath
import re
import shutil
from pathlib import Path

from milestones import catalog
from milestones.book import markup
from milestones.book.layout import Site, rel
from milestones.book.sources import Sources

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}
SOURCE_ANCHORS = {"notes.md": "notes", "model.py": "implementation", "experiment.py": "experiment-code"}
_PAPER_LINK = re.compile(r"^(?:\.\./)*(?:(?P<era>[a-z_]+)/)?(?P<id>[a-z0-9_]+)/(?P<file>[\w.-]*)$")


def resolver(sources: Sources, site: Site, here: str, source: Path,
             paper: catalog.Paper | None) -> markup.Resolver:
    """Map a link written in the markdown file `source` (shown on page `here`, the notes of `paper`
    or an essay when it is None) to a page of the book; None drops it."""
    lesson_slugs = {e.source.name: e.slug for e in sources.lessons} | {e.slug: e.slug for e in sources.lessons}

    def resolve(kind: str, target: str) -> str | None:
        if target.startswith(("http://", "https://", "mailto:")):
            return target if kind == "a" else None  # never load an image from the network
        if target.startswith("#"):
            return target
        path, _, frag = target.partition("#")
        frag_suffix = f"#{frag}" if frag else ""
        if kind == "img":
            return image(sources, site, here, source, paper, path)
        if path in ("report", "report.html"):
            return rel(here, "report.html") + frag_suffix
        if path in ("index", "index.html", "timeline"):
            return rel(here, "index.html") + (frag_suffix or ("#timeline" if path == "timeline" else ""))
        name = posixpath.basename(path)
        if name in lesson_slugs and "/" not in path.strip("./"):
            return rel(here, f"essays/{lesson_slugs[name]}.html") + frag_suffix
        m = _PAPER_LINK.match(path)
        if m and sources.by_id(m.group("id")):
            anchor = SOURCE_ANCHORS.get(m.group("file"), "")
            return rel(here, f"papers/{m.group('id')}.html") + (frag_suffix or (f"#{anchor}" if anchor else ""))
        if paper is not None and path in SOURCE_ANCHORS:
            return f"#{SOURCE_ANCHORS[path]}"
        return None

    return resolve


def safe_relative(name: str) -> bool:
    parts = Path(name).parts
    return bool(parts) and not Path(name).is_absolute() and ".." not in parts and "\\" not in name


def image(sources: Sources, site: Site, here: str, source: Path, paper: catalog.Paper | None,
          path: str) -> str | None:
    """An image a markdown file shows: a figure of the paper's latest run, or a file beside the source."""
    if not safe_relative(path) or Path(path).suffix.lower() not in IMAGE_EXTS:
        return None
    if paper is not None and paper.id in sources.runs:
        copied = copy_artifact(site, paper.id, sources.runs[paper.id].folder, posixpath.basename(path))
        if copied:
            return rel(here, copied)
    local = (source.parent / path).resolve()
    if local.is_file() and source.parent.resolve() in local.parents:
        target = f"assets/figures/{(paper.id if paper else source.stem)}/{posixpath.basename(path)}"
        (site.out / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, site.out / target)
        return rel(here, target)
    return None


def copy_artifact(site: Site, paper_id: str, folder: Path, name: str) -> str | None:
    """Copy one artifact of a run into runs/<id>/ of the site; its site path, or None if unsafe/absent."""
    if not safe_relative(name):
        return None
    src = (folder / name).resolve()
    if not src.is_file() or folder.resolve() not in src.parents:
        return None
    target = f"runs/{paper_id}/{Path(name).as_posix()}"
    dest = site.out / target
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    return target
