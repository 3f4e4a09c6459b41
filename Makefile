# One way to run each thing. Every target creates the virtualenv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run up test test-fast lint fmt bench bench-scale chaos sandbox services env-example screenshots clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: the demo stack (Redis, SQLite ledger, sandbox, workers, beat, Flower, HTTP API) and a demo batch
run: $(STAMP)
	$(BIN)/postier demo

## up: the same stack without the demo batch
up: $(STAMP)
	$(BIN)/postier up

## sandbox: the provider simulator alone on 127.0.0.1:8025
sandbox: $(STAMP)
	$(BIN)/postier sandbox

## services: start Redis and PostgreSQL when they are not already answering
services:
	bash deploy/dev/ensure-services.sh

## test: the whole suite (unit, sandbox over HTTP, integration with a real worker and Redis)
test: $(STAMP) services
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not integration"

## bench: Postier against a plain Celery baseline in the same run (BENCH_ARGS=--quick: small)
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) services
	$(BIN)/python -m benchmarks.throughput $(BENCH_ARGS)

## bench-scale: the ledger's periodic passes and lookups at 0.1M, 1M and 5M messages, SQLite and
## PostgreSQL -> var/bench-scale/report.json (BENCH_SCALE_ARGS="--sizes 100000 --keep": see --help)
bench-scale: $(STAMP) services
	$(BIN)/python -m benchmarks.scale $(BENCH_SCALE_ARGS)

## chaos: fault scenarios, each audited (provider's record vs ledger); CHAOS_ARGS=--quick: small
chaos: $(STAMP) services
	$(BIN)/python -m benchmarks.chaos $(CHAOS_ARGS)
	$(BIN)/python -m pytest -q tests/chaos

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy postier producers worker scheduler benchmarks
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## env-example: write .env.example from the settings model (a test checks it is current)
env-example: $(STAMP)
	$(BIN)/postier env-example --write .env.example

## screenshots: the stack and the demo batch, Flower and the support page opened in headless
## Chromium -> deploy/docs/flower.png, deploy/docs/support.png
screenshots: $(STAMP) services
	$(BIN)/python -m pytest -q tests/deploy/test_flower.py tests/deploy/test_support_page.py \
		--screenshot-dir deploy/docs

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache var
