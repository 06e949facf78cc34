# rtml: the two commands a newcomer needs are `make demo` and `make test`.
# Both set up what they need (virtualenv, Python packages, jars from Maven Central) and are
# quick when it is already there.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: setup demo bench test test-slow soak test-unit test-flink test-integration lint format stop clean

$(STAMP): pyproject.toml
	@command -v javac >/dev/null || { echo "rtml: error: a Java 17 JDK is not installed (no javac) -> install OpenJDK 17 (apt-get install openjdk-17-jdk-headless)"; exit 3; }
	@command -v mvn >/dev/null || { echo "rtml: error: Maven is not installed -> install it (apt-get install maven)"; exit 3; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP)
	$(BIN)/rtml setup

## Run the whole product end to end on a local Kafka broker and print a summary.
demo: setup
	$(BIN)/rtml demo

## The benchmark: the pipeline vs the engine floor, a naive design, a Python peer and variants
## (37 minutes on 2 cores, 2026-12-01).
bench: setup
	$(BIN)/rtml bench --out bench-results

## All test tiers: unit (no JVM), Flink (MiniCluster), integration (real Kafka + Flink);
## the failure-injection tests (marker "slow") have their own target. Each test has 20 minutes
## (fixtures included): a hang fails with its traceback and the run goes on; -v names each test.
test: setup
	$(BIN)/python -m pytest -v -p no:cacheprovider -m "not slow and not soak" --durations=25 --timeout=1200

## Failure injection and rescaling: kill -9 TaskManagers x3 over 100k events (arrival order at
## parallelism 1, event-time order at parallelism 2), kill -9 the broker mid-run, rescale
## 1 -> 2 -> 1 through savepoints; exactly-once checked. Figures go to reliability-results/.
test-slow: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "slow and not soak" -s

## The soak (RTML_SOAK_MINUTES, 30 by default, plus about 10 minutes around it): half of the
## measured maximum rate, exactly-once, arrival order at parallelism 1 (RTML_SOAK_ORDER,
## RTML_SOAK_PARALLELISM for event-time order at 2), a TaskManager
## killed every 4 minutes and the broker once; figures to reliability-results/soak.json.
soak: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider -m soak -s

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

test-flink: $(STAMP)
	$(BIN)/python -m pytest -q tests/flink

test-integration: setup
	$(BIN)/python -m pytest -q tests/integration -m "not soak"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Stop the local services started by the demo.
stop:
	-$(BIN)/rtml cluster stop
	-$(BIN)/rtml broker stop

clean: stop
	rm -rf .rtml
