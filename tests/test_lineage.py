"""The code is the lineage. A paper's module (the .py files in its folder) uses an earlier paper in one
of two ways, and either way the paper names it in ``builds_on`` (catalog.py):

* it imports the earlier paper's module (and otherwise only ``milestones.core``; never a later paper,
  the command line or the book);
* it uses a PyTorch built-in that the earlier paper's equivalence test proved equal to that paper's
  own implementation ("build it, prove it, then use the fast one"): `BUILTINS` below, found in the
  source by its AST, through the file's own import aliases (``nn.LSTM``, ``F.gelu``,
  ``torch.optim.Adam``), plus two optimizer arguments (`KEYWORDS`).

A built-in that stands for a *later* paper breaks the history. It is allowed only where
`LATER_PAPER_USES` lists it, with its reason: in the paper's tools (experiment.py, bench.py, a training
helper: every file but model.py), or in model.py only when the later catalog entry's idea was public
before the paper (`EARLIER_APPEARANCE`, dated and checked).

Not checked, by design: autograd (``loss.backward()``, ``torch.autograd``) is how every paper trains;
backprop is the root of the lineage and every paper reaches it through its ancestors. Tensor methods
(``x.relu()``) cannot be told from other attributes without types, so paper code calls the functional
form. A built-in reached through an imported ancestor's function (attention and seq2seq train with
encoder_decoder's ``train_translator``) is that ancestor's use, checked there.

`edge_support()` classifies every declared edge by what backs it in the code (an import, a proven
built-in, or neither: a conceptual edge, or a paper not implemented yet); it is not printed.
"""

from __future__ import annotations

import ast
import functools
from collections import Counter
from pathlib import Path

import pytest

from milestones import catalog, papers

ORDER = {p.id: i for i, p in enumerate(catalog.PAPERS)}
IMPLEMENTED = [p for p in catalog.PAPERS if papers.folder(p).is_dir()]
EQUIVALENCE = Path(__file__).parent / "equivalence"

# A built-in (its full dotted name) -> the catalog papers whose idea it is. Each one is proven equal to
# that paper's own module in tests/equivalence/test_<paper>.py (checked below once the paper has one).
BUILTINS: dict[str, tuple[str, ...]] = {
    "torch.nn.RNN": ("rnn",),
    "torch.nn.Conv2d": ("cnn",), "torch.nn.functional.conv2d": ("cnn",), "torch.conv2d": ("cnn",),
    # cnn's module builds pooling from the same windows and proves it (the zip-code net itself strided)
    "torch.nn.MaxPool2d": ("cnn",), "torch.nn.functional.max_pool2d": ("cnn",),
    "torch.nn.AvgPool2d": ("cnn",), "torch.nn.functional.avg_pool2d": ("cnn",),
    "torch.nn.LSTM": ("lstm", "forget_gate"),  # nn.LSTM is the modern cell: the 1997 LSTM + forget gates
    "torch.nn.ReLU": ("relu",), "torch.nn.functional.relu": ("relu",), "torch.relu": ("relu",),
    "torch.nn.LocalResponseNorm": ("alexnet",),
    "torch.nn.GRU": ("encoder_decoder",),
    "torch.nn.Dropout": ("dropout",), "torch.nn.functional.dropout": ("dropout",), "torch.dropout": ("dropout",),
    "torch.optim.Adam": ("adam",), "torch.optim.AdamW": ("adam",),  # AdamW: adam's decoupled=True
    "torch.nn.BatchNorm1d": ("batchnorm",), "torch.nn.BatchNorm2d": ("batchnorm",),
    "torch.nn.functional.batch_norm": ("batchnorm",),
    "torch.nn.GELU": ("gelu",), "torch.nn.functional.gelu": ("gelu",),
    "torch.nn.LayerNorm": ("layernorm",), "torch.nn.functional.layer_norm": ("layernorm",),
    "torch.layer_norm": ("layernorm",),
    "torch.nn.functional.scaled_dot_product_attention": ("transformer",),
    "torch.nn.MultiheadAttention": ("transformer",),
}
# Keyword arguments of a torch.optim.* constructor that stand for a paper unless literally zero:
# the L2 penalty (test_weight_decay.py), and the 1986 paper's momentum term (test_backprop.py proves
# its dw(t) = -eps dE/dw + alpha dw(t-1) is SGD(momentum=alpha)).
KEYWORDS: dict[str, tuple[str, str]] = {  # keyword -> (the optimizers it is checked on, "" = all; paper)
    "weight_decay": ("", "weight_decay"),
    "momentum": ("torch.optim.SGD", "backprop"),
}
DEFAULT_WEIGHT_DECAY = {"torch.optim.AdamW"}  # decays (0.01) even when the keyword is left out

# (paper, later paper, file) -> why the history may bend there. Keep it short and true.
LATER_PAPER_USES: dict[tuple[str, str, str], str] = {
    ("rnn", "adam", "experiment.py"):
        "Adam trains the 1989 net (and its feed-forward control) in the quick budget; the claim is "
        "about recurrence and the fading gradient, not the optimizer",
    ("lstm", "adam", "experiment.py"):
        "the LSTM and the plain RNN get the same Adam steps; the claim compares the two cells",
    ("lstm", "forget_gate", "bench.py"):
        "the benchmark times our LSTM against nn.LSTM, the reference it is proven equal to",
    ("forget_gate", "adam", "experiment.py"):
        "both LSTMs, with and without forget gates, get the same Adam steps; the claim compares the cells",
    ("encoder_decoder", "adam", "translation.py"):
        "Adam (six months later) stands in for the paper's Adadelta in the translator training that "
        "attention and seq2seq share; the claim is the fixed-length bottleneck, not the optimizer",
    ("gan", "adam", "experiment.py"):
        "Adam (six months later) stands in for the paper's SGD with momentum, which diverged or collapsed "
        "at every rate tried in the quick budget; the claims are about the game and the generator's loss",
    ("alexnet", "dropout", "model.py"):
        "AlexNet used dropout from Hinton et al.'s 2012 preprint, which it cites; the catalog files the "
        "idea under the 2014 JMLR paper. Our experiment sets dropout=0.0 (Figure 1 had none)",
}
MODEL_FILE = "model.py"  # the paper's model; every other file in its folder is a tool
# A later catalog paper whose idea was public earlier: (first appearance "YYYY-MM", where).
EARLIER_APPEARANCE: dict[str, tuple[str, str]] = {
    "dropout": ("2012-07", "https://arxiv.org/abs/1207.0580"),
}


# ------------------------------------------------------------------------------------------ scanning
def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def imported_modules(path):
    for node in ast.walk(parse(path)):
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


def aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> the dotted name it was imported as (``F`` -> ``torch.nn.functional``)."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:  # `import torch.nn` binds `torch`
                    names[alias.name.split(".")[0]] = alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def dotted(node: ast.expr, names: dict[str, str]) -> str | None:
    """``nn.LSTM`` -> ``torch.nn.LSTM`` when ``nn`` is an imported name, else None."""
    attrs = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id in names:
        return ".".join([names[node.id], *reversed(attrs)])
    return None


def literally_zero(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and not isinstance(node.value, bool) and node.value == 0


def file_uses(path: Path) -> list[tuple[str, int, str, str]]:
    """(file, line, built-in, paper it stands for) for every proven built-in one file uses."""
    found = []
    tree = parse(path)
    names = aliases(tree)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Attribute, ast.Name)) and dotted(node, names) in BUILTINS:
            name = dotted(node, names)
            found += [(path.name, node.lineno, name, idea) for idea in BUILTINS[name]]
        if isinstance(node, ast.Call) and (name := dotted(node.func, names) or "").startswith("torch.optim."):
            given = {k.arg: k.value for k in node.keywords if k.arg}
            for keyword, (optimizers, idea) in KEYWORDS.items():
                if optimizers in ("", name) and keyword in given and not literally_zero(given[keyword]):
                    found.append((path.name, node.lineno, f"{name}({keyword}=...)", idea))
            if name in DEFAULT_WEIGHT_DECAY and "weight_decay" not in given:
                found.append((path.name, node.lineno, f"{name}() (weight_decay=0.01 by default)", "weight_decay"))
    return found


@functools.cache
def builtin_uses(paper_id: str) -> tuple[tuple[str, int, str, str], ...]:
    """`file_uses` of every .py file in the paper's folder."""
    folder = papers.folder(catalog.get(paper_id))
    return tuple(sorted({use for path in folder.glob("*.py") for use in file_uses(path)}))


def edge_support() -> dict[tuple[str, str], str]:
    """Every declared edge (paper, ancestor) -> "import", "built-in" or "neither" (import wins)."""
    support = {}
    for paper in catalog.PAPERS:
        imported = {other for _, _, other in paper_imports(paper)} if papers.folder(paper).is_dir() else set()
        used = {idea for *_, idea in builtin_uses(paper.id)} if papers.folder(paper).is_dir() else set()
        for ancestor in paper.builds_on:
            support[paper.id, ancestor] = ("import" if ancestor in imported else
                                           "built-in" if ancestor in used else "neither")
    return support


def edge_counts(implemented_only: bool = False) -> Counter:
    keep = {p.id for p in IMPLEMENTED} if implemented_only else set(catalog.ids())
    return Counter(kind for (paper, _), kind in edge_support().items() if paper in keep)


# ------------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("paper", catalog.PAPERS, ids=lambda p: p.id)
def test_builds_on_names_only_earlier_papers(paper):
    for ancestor in paper.builds_on:
        assert ORDER[ancestor] < ORDER[paper.id], f"{paper.id} builds on the later paper {ancestor}"


@pytest.mark.parametrize("paper", IMPLEMENTED, ids=lambda p: p.id)
def test_paper_imports_only_its_ancestors_and_core(paper):
    for filename, module, other in paper_imports(paper):
        if other is None:
            assert module.startswith("milestones.core"), f"{paper.id}/{filename} imports {module}"
        else:
            assert other in catalog.ids(), f"{paper.id}/{filename} imports {module}, not a catalog paper"
            assert other == paper.id or other in paper.builds_on, (
                f"{paper.id}/{filename} imports {module}, but {other} is not in its builds_on {paper.builds_on}")


@pytest.mark.parametrize("paper", IMPLEMENTED, ids=lambda p: p.id)
def test_builtins_of_earlier_papers_are_declared(paper):
    for filename, line, name, idea in builtin_uses(paper.id):
        if ORDER[idea] < ORDER[paper.id]:
            assert idea in paper.builds_on, (
                f"{paper.id}/{filename}:{line} uses {name}, which stands for {idea} (proven equal in "
                f"tests/equivalence/test_{idea}.py); add {idea!r} to {paper.id}'s builds_on in catalog.py")


@pytest.mark.parametrize("paper", IMPLEMENTED, ids=lambda p: p.id)
def test_builtins_of_later_papers_are_listed_exceptions(paper):
    for filename, line, name, idea in builtin_uses(paper.id):
        if ORDER[idea] > ORDER[paper.id]:
            assert (paper.id, idea, filename) in LATER_PAPER_USES, (
                f"{paper.id}/{filename}:{line} uses {name}, which stands for the later paper {idea}. "
                + (f"model.py may not: build it from {paper.id}'s own ancestors (unless the idea was public "
                   f"before {paper.id}: then list it in LATER_PAPER_USES and EARLIER_APPEARANCE, with its date)"
                   if filename == MODEL_FILE else
                   f"A tool file may, if tests/test_lineage.py's LATER_PAPER_USES lists "
                   f"({paper.id!r}, {idea!r}, {filename!r}) with a one-line reason; else use an earlier tool."))


@pytest.mark.parametrize("key", sorted(LATER_PAPER_USES), ids="-".join)
def test_later_paper_exceptions_are_used_and_allowed(key):
    paper, later, filename = key
    assert ORDER[later] > ORDER[paper], f"{later} is not later than {paper}: drop the exception"
    used = {(f, idea) for f, _, _, idea in builtin_uses(paper)}
    assert (filename, later) in used, f"{paper}/{filename} no longer uses {later}: drop the stale exception"
    if filename == MODEL_FILE:  # in the model only for an idea that was public before the paper
        assert later in EARLIER_APPEARANCE, f"{paper}/{filename} is the model: it may not use the later {later}"
        assert EARLIER_APPEARANCE[later][0] < catalog.get(paper).date, f"{later} appeared after {paper}"
    assert LATER_PAPER_USES[key].strip(), f"{key} needs its reason"


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_each_builtin_is_proven_by_the_paper_it_stands_for(name):
    """The paper's equivalence test names the built-in (or its module/functional twin)."""
    def squash(text: str) -> str:
        return text.lower().replace("_", "")

    for idea in BUILTINS[name]:
        assert idea in catalog.ids(), f"{name} stands for {idea}, not a catalog paper"
        test = EQUIVALENCE / f"test_{idea}.py"
        if test.is_file():  # a paper not implemented yet promises the proof with its test
            assert squash(name.rsplit(".", 1)[1]) in squash(test.read_text()), f"{test.name} never names {name}"


@pytest.mark.parametrize("keyword", sorted(KEYWORDS))
def test_each_keyword_is_proven_by_the_paper_it_stands_for(keyword):
    optimizer, idea = KEYWORDS[keyword]
    test = (EQUIVALENCE / f"test_{idea}.py").read_text()
    assert f"{keyword}=" in test and (optimizer or "torch.optim.").removeprefix("torch.") in test


def test_the_scanner_sees_aliases_keywords_and_defaults(tmp_path):
    path = tmp_path / "model.py"
    path.write_text("import torch\nimport torch.nn.functional as F\nfrom torch import nn, optim\n"
                    "from torch.optim import AdamW as W\n"
                    "a = nn.LSTM(1, 1)\nb = F.gelu\nc = torch.optim.SGD(p, lr=1, momentum=0.9)\n"
                    "d = optim.SGD(p, lr=1, momentum=0, weight_decay=0.0)\ne = W(p, weight_decay=wd)\n"
                    "f = W(p)\ng = x.relu()\nh = nn.Linear\nrelu = 1\n")
    assert sorted((line, idea) for _, line, _, idea in file_uses(path)) == [
        (5, "forget_gate"), (5, "lstm"), (6, "gelu"), (7, "backprop"),  # d: both keywords are literally 0
        (9, "adam"), (9, "weight_decay"), (10, "adam"), (10, "weight_decay")]  # g: a method, not resolved


def test_edge_support_covers_every_declared_edge():
    support = edge_support()
    assert len(support) == sum(len(p.builds_on) for p in catalog.PAPERS)
    assert support["forget_gate", "lstm"] == "import" and support["seq2seq", "forget_gate"] == "built-in"
    assert all(kind == "neither" for (paper, _), kind in support.items() if paper not in {p.id for p in IMPLEMENTED})


def test_core_imports_no_paper():
    paper_packages = tuple(f"milestones.{era}" for era in catalog.ERAS)
    outside_core = ("milestones.cli", "milestones.papers", "milestones.catalog")
    for path in sorted((papers.PACKAGE / "core").rglob("*.py")):
        for module in imported_modules(path):
            assert not module.startswith(paper_packages), f"{path} imports {module}"
            assert module not in outside_core, f"{path} imports {module}"


def test_every_paper_folder_is_in_the_catalog_under_its_era():
    for era in catalog.ERAS:
        for folder in sorted((papers.PACKAGE / era).glob("*/")):
            if folder.name.startswith("__"):
                continue
            assert folder.name in catalog.ids(), f"{folder} is not a catalog paper"
            assert catalog.get(folder.name).era == era, f"{folder} is in the wrong era package"
