# Two entry points do all the set-up: `make demo` and `make test`.
# Each creates/updates the virtual environment from pyproject.toml and starts the local
# Kafka broker (fetched from Maven Central by deploy/kafka/pom.xml) when it is not running.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv demo test test-quick lint bench kafka-start kafka-stop clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	@touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/orchestrator demo

lint: venv
	$(BIN)/ruff check .

# The whole suite (unit, agents, integration, e2e) against a real broker. The broker is
# stopped afterwards only if this target started it. pytest's "no tests collected" (exit 5)
# is a failure here, like any other non-zero exit.
test: venv lint
	@if $(BIN)/orchestrator kafka status >/dev/null 2>&1; then started=0; else \
	  $(BIN)/orchestrator kafka start || exit 1; started=1; fi; \
	$(BIN)/python -m pytest; rc=$$?; \
	if [ $$started = 1 ]; then $(BIN)/orchestrator kafka stop; fi; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; fi; \
	exit $$rc

# Pure and shell tests only: no broker needed.
test-quick: venv
	$(BIN)/python -m pytest -m "unit or agents"

bench: venv
	@$(BIN)/orchestrator kafka start
	$(BIN)/python benchmarks/event_to_action.py

kafka-start: venv
	$(BIN)/orchestrator kafka start

kafka-stop: venv
	$(BIN)/orchestrator kafka stop

clean:
	-$(BIN)/orchestrator kafka stop
	rm -rf var
