# One toolchain for people and CI: the README's commands are these targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INFRA := $(PYTHON) deploy/local/infra.py
export PIP_CACHE_DIR := $(CURDIR)/data/cache/pip
# Instances of each scalable process (API workers, processors, projections)
# that `make up` starts: `make up SCALE=2` (docs/scale-out.md).
SCALE ?= $(or $(OCPI_HUB_SCALE),1)
PACKAGES := schemas producers processors projections api gateway ocpi_hub

.PHONY: venv lock infra up down status test test-unit chaos lint bench compose-check clean

## venv: exactly the locked versions (hashes checked), then the project itself
## without dependencies; the Dockerfile installs from requirements.lock the same way
LOCK := requirements.lock
DEV_LOCK := requirements-dev.lock
venv: $(VENV)/.installed

$(VENV)/.installed: $(DEV_LOCK) pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes -r $(DEV_LOCK)
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	@touch $@

## lock: resolve pyproject.toml into the lock files (Python 3.11, Linux x86_64,
## sha256 of every file); keeps current pins that still fit, UPGRADE=1 takes the
## newest allowed. Runtime first; the dev lock is constrained to its pins.
UV_VERSION := 0.13.8
UV := data/cache/tools/uv-$(UV_VERSION)/bin/uv
LOCK_FLAGS := --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
	--generate-hashes --group pyproject.toml:build --quiet $(if $(UPGRADE),--upgrade)
lock: $(UV)
	UV_CACHE_DIR=data/cache/uv UV_CUSTOM_COMPILE_COMMAND="make lock" \
		$(UV) pip compile pyproject.toml $(LOCK_FLAGS) -o $(LOCK)
	UV_CACHE_DIR=data/cache/uv UV_CUSTOM_COMPILE_COMMAND="make lock" \
		$(UV) pip compile pyproject.toml --extra dev -c $(LOCK) $(LOCK_FLAGS) -o $(DEV_LOCK)

$(UV):
	$(PYTHON) -m venv data/cache/tools/uv-$(UV_VERSION)
	data/cache/tools/uv-$(UV_VERSION)/bin/pip install -q uv==$(UV_VERSION)

## infra: Kafka, the MongoDB-compatible server, MariaDB and Redis
infra: venv
	$(INFRA) up

## up: the services and the platform's own processes (API, processors, projections).
## The project's bytecode is compiled first (only what changed): an environment with
## PYTHONDONTWRITEBYTECODE set would otherwise compile every module in every process
## and command it starts, ~0.4 s of CPU each on 2 cores.
up: venv
	$(BIN)/python -m compileall -q $(PACKAGES)
	$(INFRA) up --with-platform --scale $(SCALE)

## down: stop exactly what `make up` started (data is kept)
down:
	$(INFRA) down

status:
	$(INFRA) status

## test: every tier against the real services (started when missing), in three
## passes that all run (any failing fails the target): everything but the fuzz
## and the fault suite in two xdist processes (a module's tests stay in one
## process, the integration tier's all in one: tests/conftest.py); then the
## schema fuzz (tests/fuzz) in two, apart, since beside the other tests xdist
## lost its generated items without a word; then the fault suite alone in one,
## as it loads the machine while it kills things.
test: up
	@status=0; \
	set -x; \
	$(BIN)/pytest tests -n 2 --dist loadscope --ignore=tests/fuzz --ignore=tests/chaos \
		--durations=15 || status=1; \
	$(BIN)/pytest tests/fuzz -n 2 --dist load --durations=5 || status=1; \
	$(BIN)/pytest tests/chaos --durations=5 || status=1; \
	exit $$status

test-unit: venv
	$(BIN)/pytest tests/unit

## chaos: the fault suite alone (docs/faults.md); it starts services and a platform of
## its own on free ports, so it needs no `make up`. `make test` runs it last.
chaos: venv
	$(BIN)/pytest tests/chaos

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(PACKAGES)

## bench: throughput and latency of the running platform (not a test), see bench/README.md;
## the 2-process run: make bench SCALE=2. Smaller runs, e.g.
##   make bench BENCH_ARGS="--rate 200 --duration 20 --locations 20" PULL_ARGS="--locations 2000"
##   REPLAY_ARGS="--events 100000" CHARGERS_ARGS="--max 2000" COMMANDS_ARGS="-n 1000 -c 16"
##   AFIR_ARGS="-n 20"
BENCH_ARGS ?= --rate 500 --duration 60
PULL_ARGS ?=
REPLAY_ARGS ?=
CHARGERS_ARGS ?=
COMMANDS_ARGS ?=
INVOICES_ARGS ?=
AFIR_ARGS ?=
bench: up
	$(INFRA) bench-tools
	$(BIN)/python -m bench.evse_status $(BENCH_ARGS)
	$(BIN)/python -m bench.locations_pull $(PULL_ARGS)
	$(BIN)/python -m bench.replay $(REPLAY_ARGS)
	$(BIN)/python -m bench.token_lookup
	$(BIN)/python -m bench.pricing
	$(BIN)/python -m bench.authorization $(AUTHZ_ARGS)
	$(BIN)/python -m bench.chargers $(CHARGERS_ARGS)
	$(BIN)/python -m bench.commands $(COMMANDS_ARGS)
	$(BIN)/python -m bench.invoices $(INVOICES_ARGS)
	$(BIN)/python -m bench.afir_latency $(AFIR_ARGS)

## compose-check: validate deploy/compose.yaml with Docker Compose v2 (both profiles) and parse
## the Dockerfile with BuildKit's parser and lint checks (both built once from Go, cached)
compose-check:
	deploy/local/compose-check.sh

clean: down
	$(INFRA) clean
