"""The code is the lineage: a paper's module imports only from the papers it builds on and from
milestones.core; never from a later paper, never from the command line or the book."""

import ast

import pytest

from milestones import catalog, papers

ORDER = {p.id: i for i, p in enumerate(catalog.PAPERS)}


def imported_modules(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def paper_imports(paper):
    """(module, imported paper id or None) for every milestones import in the paper's folder."""
    for path in sorted(papers.folder(paper).glob("*.py")):
        for module in imported_modules(path):
            parts = module.split(".")
            if parts[0] != "milestones":
                continue
            other = parts[2] if len(parts) > 2 and parts[1] in catalog.ERAS else None
            yield path.name, module, other


@pytest.mark.parametrize("paper", catalog.PAPERS, ids=lambda p: p.id)
def test_builds_on_names_only_earlier_papers(paper):
    for ancestor in paper.builds_on:
        assert ORDER[ancestor] < ORDER[paper.id], f"{paper.id} builds on the later paper {ancestor}"


@pytest.mark.parametrize("paper", [p for p in catalog.PAPERS if papers.folder(p).is_dir()], ids=lambda p: p.id)
def test_paper_imports_only_its_ancestors_and_core(paper):
    for filename, module, other in paper_imports(paper):
        if other is None:
            assert module.startswith("milestones.core"), f"{paper.id}/{filename} imports {module}"
        else:
            assert other in catalog.ids(), f"{paper.id}/{filename} imports {module}, not a catalog paper"
            assert other == paper.id or other in paper.builds_on, (
                f"{paper.id}/{filename} imports {module}, but {other} is not in its builds_on {paper.builds_on}")


def test_core_imports_no_paper():
    for path in sorted((papers.PACKAGE / "core").rglob("*.py")):
        for module in imported_modules(path):
            assert not module.startswith(tuple(f"milestones.{era}" for era in catalog.ERAS)), f"{path} imports {module}"
            assert module not in ("milestones.cli", "milestones.papers", "milestones.catalog"), f"{path} imports {module}"


def test_every_paper_folder_is_in_the_catalog_under_its_era():
    for era in catalog.ERAS:
        for folder in sorted((papers.PACKAGE / era).glob("*/")):
            if folder.name.startswith("__"):
                continue
            assert folder.name in catalog.ids(), f"{folder} is not a catalog paper"
            assert catalog.get(folder.name).era == era, f"{folder} is in the wrong era package"
