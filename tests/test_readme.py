"""The README's paper table is the catalog's (regenerate with `milestones list --markdown`)."""

from pathlib import Path

from milestones.cli import markdown_table


def test_readme_paper_table_matches_the_catalog():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert markdown_table() in readme, "README is stale: paste the output of `milestones list --markdown`"
    assert "make run" in readme and "make test" in readme and "torchrun" in readme
