# The documented way to do things. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

.PHONY: help install kafka kafka-stop kafka-status postgres postgres-stop topics test test-fast \
        test-reliability check fmt demo bench bench-quick soak clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the project with its dev and bench extras

kafka: $(STAMP) ## Start the local single-node Kafka broker (idempotent; fetches jars on first run)
	bash scripts/kafka/kafka-local.sh start

kafka-stop: ## Stop the local Kafka broker
	bash scripts/kafka/kafka-local.sh stop

kafka-status: ## Is the local broker running?
	bash scripts/kafka/kafka-local.sh status

postgres: ## Start a local PostgreSQL for the audit store tests (installs it from Debian if missing)
	bash scripts/postgres/pg-local.sh start

postgres-stop: ## Stop the local PostgreSQL
	bash scripts/postgres/pg-local.sh stop

topics: $(STAMP) ## Create or verify the Kafka topics
	$(VENV)/bin/ml-connector topics create

test: $(STAMP) ## Run the test suite (starts the local broker if KAFKA_BOOTSTRAP_SERVERS is unset)
	$(PY) -m pytest

test-fast: $(STAMP) ## Unit tests only (no broker)
	$(PY) -m pytest -m "not slow" tests/foundation/test_codec.py tests/foundation/test_settings.py

test-reliability: $(STAMP) ## The long reliability suite (crashes, faults, soak)
	MLC_RELIABILITY_FULL=1 $(PY) -m pytest tests/reliability

check: $(STAMP) ## Lint, format check and types
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check shared services
	$(VENV)/bin/mypy

fmt: $(STAMP) ## Format the code
	$(VENV)/bin/ruff format shared services simulators tests bench
	$(VENV)/bin/ruff check --fix .

demo: $(STAMP) ## The whole pipeline on simulators, with a live summary (ARGS=--once to stop at the end)
	$(PY) -m simulators.demo $(ARGS)

bench: $(STAMP) ## All benchmark scenarios at full size (writes bench/results and docs/benchmarks.md)
	$(PY) -m bench $(ARGS)

bench-quick: $(STAMP) ## All benchmark scenarios at a small size (a few minutes)
	$(PY) -m bench --quick $(ARGS)

soak: $(STAMP) ## Steady stream of changes for SOAK_SECONDS (default 600), then a report
	$(PY) -m bench.soak --seconds $${SOAK_SECONDS:-600}

clean: ## Remove caches and local run state (not the venv)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis .run
