# Quick start: `make serve` (serve the bundled seeds) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve lint test fuzz build check install clean

$(BIN)/feedpub: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/feedpub

serve: install
	$(BIN)/feedpub build
	$(BIN)/feedpub serve --host $(HOST) --port $(PORT)

# ruff, mypy and vulture as configured in pyproject.toml, and the house rules on module and function length.
lint: install
	$(BIN)/ruff check src tests benchmarks wsgi.py
	$(BIN)/mypy
	$(BIN)/vulture src --min-confidence 80
	$(BIN)/python -m pytest -q tests/test_house_rules.py

# Lint first (CI runs `make test`); Hypothesis replays the same examples on every run
# (the "deterministic" profile, tests/conftest.py) ...
test: lint
	$(BIN)/python -m pytest --hypothesis-profile=deterministic

# ... and `make fuzz` runs the same property tests with many more random examples, to find new failures.
fuzz: install
	$(BIN)/python -m pytest -m hypothesis --hypothesis-profile=fuzz

build: install
	$(BIN)/feedpub build

check: install
	$(BIN)/feedpub check

clean:
	rm -rf $(VENV) feeds build *.egg-info .pytest_cache .mypy_cache .ruff_cache test-output
