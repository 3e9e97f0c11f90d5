# One task runner for developers and CI; .ci/run calls `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Reinstall only when the dependencies may have changed.
STAMP := $(VENV)/.installed
# Other ports for a second set of servers on the same machine, so that one run's `make test`
# does not stop another's: make test TRACKD_PG_PORT=55441 TRACKD_REDIS_PORT=56441 TRACKD_NATS_PORT=54441
TRACKD_PG_PORT ?= 55432
TRACKD_REDIS_PORT ?= 56379
TRACKD_NATS_PORT ?= 54222
export TRACKD_PG_PORT TRACKD_REDIS_PORT TRACKD_NATS_PORT
POSTGRES_URL := postgresql+asyncpg://postgres@127.0.0.1:$(TRACKD_PG_PORT)/postgres
REDIS_URL := redis://127.0.0.1:$(TRACKD_REDIS_PORT)/0
NATS_URL := nats://127.0.0.1:$(TRACKD_NATS_PORT)
# What the tests and benchmarks read to find the servers scripts/services.sh started.
SERVICE_URLS := TRACKD_TEST_POSTGRES_URL='$(POSTGRES_URL)' TRACKD_TEST_REDIS_URL='$(REDIS_URL)' \
	TRACKD_TEST_NATS_URL='$(NATS_URL)'
# The docs site (mkdocs.yml); Material's notice about its successor is not a lint finding.
MKDOCS := NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs
# Extra pytest arguments, e.g. make test PYTEST_ARGS='-k sqlite -x'
PYTEST_ARGS ?=

.PHONY: help venv test lint docs run bench services-up services-down clean

help:
	@echo "make venv           create .venv and install trackd with its dev extras"
	@echo "make test           start PostgreSQL, Redis and NATS, run pytest, stop them"
	@echo "make lint           ruff check, ruff format --check, mypy, lint-imports (layers),"
	@echo "                    mkdocs build --strict (the docs site; broken links fail)"
	@echo "make docs           serve the docs site on http://127.0.0.1:8001 while editing it"
	@echo "make run            trackd demo: the server with a simulated workload"
	@echo "make bench          start the services and run the benchmarks"
	@echo "make services-up    start PostgreSQL, Redis and NATS for tests (scripts/services.sh start)"
	@echo "make services-down  stop them"
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
	$(SERVICE_URLS) $(BIN)/pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(MKDOCS) build --strict --quiet --site-dir site

docs: venv
	$(MKDOCS) serve --dev-addr 127.0.0.1:8001

run: venv
	$(BIN)/trackd demo

bench: venv services-up
	$(SERVICE_URLS) $(BIN)/python -m benchmarks

services-up:
	@scripts/services.sh start

services-down:
	@scripts/services.sh stop

clean:
	scripts/services.sh clean
	rm -rf build dist site .pytest_cache .mypy_cache .ruff_cache .hypothesis .run
	find src tests benchmarks -name __pycache__ -type d -prune -exec rm -rf {} +
