# Two commands for a fresh machine: `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install compile pure services-up services-down test unit unit-compiled lint demo bench clean

# a venv cut short (python there, no pip yet) is made again, not half-used
$(STAMP): pyproject.toml
	test -x $(BIN)/pip || $(PYTHON) -m venv --clear $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $(STAMP)

install: $(STAMP)

## Opt-in: the decision core compiled with mypyc (needs a C compiler and Python headers);
## rebuild after editing a compiled module (engine/compiled.py lists them).
compile: install
	TACT_COMPILE=1 $(BIN)/pip install -q -e '.[dev,bench]'
	$(BIN)/tact version

## Back to the pure-Python core: remove the compiled extensions.
pure:
	find engine -name '*.so' -delete
	$(BIN)/tact version

services-up: install
	$(BIN)/tact services up

services-down:
	-$(BIN)/tact services down

## The test suite: unit, scenario and integration tests against real Kafka and Redis.
test: services-up
	$(BIN)/python -m pytest -q

## Unit and scenario tests only (no services needed).
unit: install
	$(BIN)/python -m pytest -q tests/unit

## The unit and scenario tests again on the compiled core, then back to pure Python (CI).
unit-compiled: compile
	$(BIN)/python -m pytest -q tests/unit
	$(MAKE) pure

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

## Services up, the worker on the example rules, synthetic traffic, the dashboard URL.
demo: services-up
	$(BIN)/tact demo

bench: install
	$(BIN)/python -m load_tests.bench_rules --quick

clean: services-down
	rm -rf $(VENV) .tact .pytest_cache .mypy_cache .ruff_cache
