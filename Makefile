# One toolchain for people and CI: the README's commands are these targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INFRA := $(PYTHON) deploy/local/infra.py
export PIP_CACHE_DIR := $(CURDIR)/data/cache/pip

.PHONY: venv infra up down status test test-unit lint bench compose-check clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

## infra: Kafka, the MongoDB-compatible server, MariaDB and Redis
infra: venv
	$(INFRA) up

## up: the services and the platform's own processes (API, processors, projections)
up: venv
	$(INFRA) up --with-platform

## down: stop exactly what `make up` started (data is kept)
down:
	$(INFRA) down

status:
	$(INFRA) status

## test: every tier against the real services (started when missing)
test: up
	$(BIN)/pytest tests

test-unit: venv
	$(BIN)/pytest tests/unit

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy schemas producers processors projections api gateway ocpi_hub

## bench: throughput and latency of the running platform (not a test), see bench/README.md
## e.g. make bench BENCH_ARGS="-n 300 --locations 20 --skip-ceilings" PULL_ARGS="--locations 2000"
##      CHARGERS_ARGS="--max 2000 --heartbeat-s 10" COMMANDS_ARGS="-n 1000 -c 16 --chargers 16"
BENCH_ARGS ?=
PULL_ARGS ?=
CHARGERS_ARGS ?=
COMMANDS_ARGS ?=
bench: up
	$(BIN)/python -m bench.evse_status $(BENCH_ARGS)
	$(BIN)/python -m bench.locations_pull $(PULL_ARGS)
	$(BIN)/python -m bench.pricing
	$(BIN)/python -m bench.authorization $(AUTHZ_ARGS)
	$(BIN)/python -m bench.chargers $(CHARGERS_ARGS)
	$(BIN)/python -m bench.commands $(COMMANDS_ARGS)

## compose-check: validate deploy/compose.yaml with Docker Compose v2 (built once, cached)
compose-check:
	deploy/local/compose-check.sh

clean: down
	$(INFRA) clean
