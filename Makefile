# Quick start: `make demo` (set up, then audit the bundled data) and `make test` (set up, then test).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-all bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/audit demo || [ $$? -eq 1 ]   # exit 1: a policy failed, as the demo audits are meant to

# Test files run in parallel, each whole in one worker (its module fixtures built once): one worker
# per core, at most 4 (each holds a JAX runtime and its compiled programs).
PYTEST := $(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadfile

test: setup
	$(PYTEST)

test-all: setup
	$(PYTEST) -m "slow or not slow"

bench: setup
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(BIN)/python bench/explain.py
	$(BIN)/python bench/robustness.py

clean:
	rm -rf $(VENV) reports/out models
