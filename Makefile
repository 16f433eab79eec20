# Quick start: `make serve` (serve the bundled seeds) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve test build check install clean

$(BIN)/feedpub: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/feedpub

serve: install
	$(BIN)/feedpub build
	$(BIN)/feedpub serve --host $(HOST) --port $(PORT)

test: install
	$(BIN)/python -m pytest

build: install
	$(BIN)/feedpub build

check: install
	$(BIN)/feedpub check

clean:
	rm -rf $(VENV) feeds build *.egg-info .pytest_cache test-output
