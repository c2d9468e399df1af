# The one entry point for people, the README and CI. Every target sets up what it needs.
#   make render ENV=prod   render one environment into rendered/prod/ (no ENV: all of them)
#   make test              lint, type-check and run the tests
#   make golden            accept the current output as the tests' golden bundles

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ENV ?=
ENVS := $(if $(ENV),$(ENV),$(notdir $(wildcard overlays/*)))

.PHONY: render test lint typecheck golden setup clean

$(VENV)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "llmpack needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

setup: $(VENV)/.installed

render: $(VENV)/.installed
	@for env in $(ENVS); do $(BIN)/llmpack render --env $$env || exit $$?; done

lint: $(VENV)/.installed
	$(BIN)/ruff check generator tests
	$(BIN)/mypy

test: $(VENV)/.installed lint
	$(BIN)/pytest

golden: $(VENV)/.installed
	LLMPACK_UPDATE_GOLDEN=1 $(BIN)/pytest tests/test_golden.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
