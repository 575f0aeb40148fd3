VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup test test-fast lint demo bench clean

setup:
	@./scripts/setup.sh

## Everything: unit, property and end-to-end tests against real brokers and databases.
test: setup
	$(PY) -m pytest -n 2 --dist loadgroup -q $(PYTEST_ARGS)

## Unit and property tests only (no servers).
test-fast: setup
	$(PY) -m pytest -q -m "not e2e" $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

## Brokers, a simulated network, capture into ./bustap.duckdb and the dashboard.
demo: setup
	$(VENV)/bin/bustap demo

## Throughput and memory against mosquitto_sub and a raw nats-py subscriber.
bench: setup
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info
