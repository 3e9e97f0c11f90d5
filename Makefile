# One task runner for developers and CI; .ci/run calls `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Reinstall only when the dependencies may have changed.
STAMP := $(VENV)/.installed
# Another port for a second server on the same machine: make test TRACKD_PG_PORT=55441
TRACKD_PG_PORT ?= 55432
export TRACKD_PG_PORT
POSTGRES_URL := postgresql+asyncpg://postgres@127.0.0.1:$(TRACKD_PG_PORT)/postgres
# Extra pytest arguments, e.g. make test PYTEST_ARGS='-k sqlite -x'
PYTEST_ARGS ?=

.PHONY: help venv test lint run bench services-up services-down clean

help:
	@echo "make venv           create .venv and install trackd with its dev extras"
	@echo "make test           start the services, run pytest on SQLite and PostgreSQL, stop them"
	@echo "make lint           ruff check, ruff format --check, mypy"
	@echo "make run            trackd demo: the server with a simulated workload"
	@echo "make bench          start the services and run the benchmarks"
	@echo "make services-up    start PostgreSQL for tests (scripts/services.sh start)"
	@echo "make services-down  stop it"
	@echo "make clean          stop the services, delete their data, build output and caches"

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

# The trap stops the services however pytest ends (failure, Ctrl-C) and keeps its exit status.
test: venv
	@trap 'scripts/services.sh stop' EXIT; \
	scripts/services.sh start; \
	TRACKD_TEST_POSTGRES_URL='$(POSTGRES_URL)' $(BIN)/pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

run: venv
	$(BIN)/trackd demo

bench: venv services-up
	TRACKD_TEST_POSTGRES_URL='$(POSTGRES_URL)' $(BIN)/python -m benchmarks

services-up:
	@scripts/services.sh start

services-down:
	@scripts/services.sh stop

clean:
	scripts/services.sh clean
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis .run
	find src tests benchmarks -name __pycache__ -type d -prune -exec rm -rf {} +
