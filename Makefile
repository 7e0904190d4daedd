# Callgate — the README's two commands are `make run` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Only lint folders that exist (ruff fails on a missing path, e.g. bench/ before it has files).
LINT_PATHS := $(wildcard src tests bench)
PYTEST_ARGS ?= -n 2 --dist loadscope

.PHONY: help venv system-deps run lint typecheck test bench bench-oauth bench-sip bench-rtp \
	bench-webhooks clean distclean

help:
	@echo "make run          create the venv, migrate, load demo data, serve HTTP :8080 and SIP :5060"
	@echo "make test         install system packages + venv, lint, typecheck, run pytest"
	@echo "                  (PYTEST_ARGS='-x -k oauth' passes arguments through to pytest)"
	@echo "make bench        every benchmark in turn: bench-oauth, bench-sip, bench-rtp, bench-webhooks"
	@echo "make venv | system-deps | lint | typecheck | bench-<name> | clean | distclean"

venv: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-install only when pyproject.toml is newer than the stamp.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[dev]'
	touch $@

system-deps:
	bash scripts/system-deps.sh

run: venv
	$(BIN)/callgate db upgrade && $(BIN)/callgate demo && $(BIN)/callgate serve

lint: venv
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: venv
	$(BIN)/mypy src

test: venv system-deps lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Each bench-* target runs one script with its default arguments (docs/benchmarks.md). `bench`
# runs them one after the other, also under `make -j`: side by side they would skew each other.
bench: venv
	$(MAKE) bench-oauth
	$(MAKE) bench-sip
	$(MAKE) bench-rtp
	$(MAKE) bench-webhooks

bench-oauth: venv
	$(BIN)/python bench/oauth.py

bench-sip: venv
	$(BIN)/python bench/sip.py

bench-rtp: venv
	$(BIN)/python bench/rtp.py

bench-webhooks: venv
	$(BIN)/python bench/webhooks.py

clean:
	rm -rf .mypy_cache .ruff_cache .pytest_cache build dist bench/results
	rm -rf src/*.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +

# Also drops the virtualenv (next `make` re-creates it). data/ is never touched.
distclean: clean
	rm -rf $(VENV)
