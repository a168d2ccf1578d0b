"""Tests for milestones.catalog: the table of contents must be complete, ordered and consistent."""

import dataclasses
import re

import pytest

from milestones import catalog
from milestones.catalog import CONSTRAINTS, ERAS, PAPERS, Paper, bibtex, get, ids

ARXIV_URL = re.compile(r"^https://arxiv\.org/abs/\d{4}\.\d{4,5}$")

# Counted by hand from the project's paper list: 5 + 8 + 8 + 12 + 12 + 11.
EXPECTED_PER_ERA = {"foundations": 5, "optimization": 8, "sequences": 8, "transformers": 12,
                    "generative": 12, "frontier": 11}
EXPECTED_TOTAL = 56


def _balanced(text: str) -> bool:
    """Unescaped braces nest properly (a backslash escapes the next character)."""
    depth, i = 0, 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth < 0:
                return False
        i += 1
    return depth == 0


def test_paper_count():
    assert len(PAPERS) == EXPECTED_TOTAL == sum(EXPECTED_PER_ERA.values())


def test_papers_per_era():
    counts = {era: len(catalog.in_era(era)) for era in ERAS}
    assert counts == EXPECTED_PER_ERA


def test_catalog_validates_clean():
    assert catalog.validate() == []


def test_ids_unique_and_identifiers():
    all_ids = ids()
    assert len(all_ids) == len(set(all_ids))
    for pid in all_ids:
        assert pid.isidentifier() and pid.islower(), pid
    assert all_ids == [p.id for p in PAPERS]


def test_sorted_by_date():
    dates = [p.date for p in PAPERS]
    assert dates == sorted(dates)
    for p in PAPERS:
        assert re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", p.date), p.id


def test_year_matches_date():
    for p in PAPERS:
        assert p.year == int(p.date[:4]), p.id
        assert p.pub_year == 0 or p.pub_year >= p.year, p.id


def test_builds_on_only_earlier_papers():
    position = {p.id: i for i, p in enumerate(PAPERS)}
    for i, p in enumerate(PAPERS):
        assert len(set(p.builds_on)) == len(p.builds_on), p.id
        for dep in p.builds_on:
            assert dep in position, f"{p.id} builds on unknown {dep}"
            assert position[dep] < i, f"{p.id} builds on {dep}, which is not earlier"
            assert get(dep).date <= p.date


def test_every_paper_but_backprop_builds_on_something():
    assert PAPERS[0].id == "backprop" and PAPERS[0].builds_on == ()
    for p in PAPERS[1:]:
        assert p.builds_on, p.id


def test_eras_and_constraints_valid():
    assert list(ERAS) == ["foundations", "optimization", "sequences", "transformers",
                          "generative", "frontier"]
    for p in PAPERS:
        assert p.era in ERAS, p.id
        assert p.constraint in CONSTRAINTS, p.id
        assert p.module == f"milestones.{p.era}.{p.id}"


def test_era_is_the_package_not_the_date():
    assert get("rnn").era == "sequences"
    assert get("ppo").era == "transformers"
    assert get("resnet").era == "optimization"
    assert get("rope").era == "frontier"


def test_urls():
    for p in PAPERS:
        for url in (p.url, *p.also):
            assert url.startswith("https://"), (p.id, url)
            if "arxiv.org" in url:
                assert ARXIV_URL.match(url), (p.id, url)
        if p.arxiv_id:
            assert p.url == f"https://arxiv.org/abs/{p.arxiv_id}"


def test_arxiv_entries_date_from_their_id():
    # the id encodes the announcement month; v1 can be submitted at the end of the month before
    for p in PAPERS:
        if not p.arxiv_id:
            continue
        year, month = 2000 + int(p.arxiv_id[:2]), int(p.arxiv_id[2:4])
        announced = f"{year}-{month:02d}"
        previous = f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"
        assert p.date in (announced, previous), p.id


def test_word2vec_folds_in_its_companion_paper():
    w2v = get("word2vec")
    assert w2v.url == "https://arxiv.org/abs/1301.3781"
    assert w2v.also == ("https://arxiv.org/abs/1310.4546",)
    assert "1310.4546" in w2v.idea


def test_llama_idea_names_its_ingredients():
    idea = get("llama").idea
    for word in ("RMSNorm", "SwiGLU", "grouped-query attention", "Llama 2"):
        assert word in idea


def test_text_fields_present():
    for p in PAPERS:
        assert p.title.strip() and p.venue.strip() and p.idea.strip(), p.id
        assert p.idea.endswith("."), p.id
        assert all(a.strip() and len(a.split()) >= 2 for a in p.authors), p.id
        assert p.bibtex_type in ("article", "inproceedings", "misc"), p.id


def test_short_authors():
    assert get("backprop").short_authors == "Rumelhart, Hinton & Williams"
    assert get("adam").short_authors == "Kingma & Ba"
    assert get("transformer").short_authors == "Vaswani et al."
    assert get("vqvae").short_authors == "van den Oord, Vinyals & Kavukcuoglu"
    assert get("mamba").citation == "Gu & Dao (2023)"


def test_surname():
    assert catalog.surname("David E. Rumelhart") == "Rumelhart"
    assert catalog.surname("Quoc V. Le") == "Le"
    assert catalog.surname("Aaron van den Oord") == "van den Oord"
    assert catalog.surname("Teven Le Scao") == "Le Scao"
    assert catalog.surname("Diego de Las Casas") == "de Las Casas"
    assert catalog.surname("Lisa Anne Hendricks") == "Hendricks"


def test_get_and_unknown_ids():
    assert get("transformer").title == "Attention Is All You Need"
    with pytest.raises(KeyError):
        get("nope")
    with pytest.raises(KeyError):
        catalog.in_era("nope")


@pytest.mark.parametrize("paper", PAPERS, ids=lambda p: p.id)
def test_bibtex_entry(paper):
    entry = bibtex(paper)
    head = re.match(r"^@(article|inproceedings|misc)\{([a-z0-9]+),\n", entry)
    assert head and head.group(1) == paper.bibtex_type, entry
    assert entry.rstrip().endswith("}")
    assert _balanced(entry), entry
    assert catalog._escape(paper.title) in entry
    assert f"year = {{{paper.bib_year}}}" in entry
    assert str(paper.bib_year) in head.group(2)
    for author in paper.authors:
        assert author.split()[-1] in entry, (paper.id, author)
    author_field = re.search(r"^  author = \{(.*)\},$", entry, re.M).group(1)
    assert len(author_field.split(" and ")) == len(paper.authors)
    assert f"url = {{{paper.url}}}" in entry
    if paper.arxiv_id:
        assert f"eprint = {{{paper.arxiv_id}}}" in entry
        assert "archivePrefix = {arXiv}" in entry


def test_bibtex_keys_unique_and_conventional():
    keys = [re.match(r"@\w+\{([^,]+),", bibtex(p)).group(1) for p in PAPERS]
    assert len(keys) == len(set(keys))
    assert keys[0] == "rumelhart1986learning"
    assert re.match(r"@\w+\{([^,]+),", bibtex(get("transformer"))).group(1) == \
        "vaswani2017attention"


def test_bibtex_escapes_special_characters():
    odd = dataclasses.replace(get("backprop"), title="Costs & {Braces} at 100% of $5_#1",
                              authors=("Ada Lovelace", "Charles Babbage"))
    entry = bibtex(odd)
    assert _balanced(entry)
    assert r"Costs \& \{Braces\} at 100\% of \$5\_\#1" in entry
    assert "Lovelace, Ada and Babbage, Charles" in entry


def test_validate_reports_problems():
    late = dataclasses.replace(get("cnn"), builds_on=("transformer",))
    broken = tuple(late if p.id == "cnn" else p for p in PAPERS)
    assert any("cnn" in msg and "transformer" in msg for msg in catalog.validate(broken))
    self_ref = tuple(dataclasses.replace(p, builds_on=("lenet",)) if p.id == "lenet" else p
                     for p in PAPERS)
    assert any(msg.startswith("lenet") for msg in catalog.validate(self_ref))
    swapped = (PAPERS[1], PAPERS[0], *PAPERS[2:])
    assert catalog.validate(swapped)
    bad = dataclasses.replace(get("gelu"), era="nowhere", constraint="luck", year=1999)
    assert len(catalog.validate((*PAPERS[:-1], bad))) >= 3


def test_paper_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get("backprop").year = 1985  # type: ignore[misc]
    assert isinstance(PAPERS, tuple) and all(isinstance(p, Paper) for p in PAPERS)
