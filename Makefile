# Two entry points do all the set-up: `make demo` and `make test`.
# Each creates/updates the virtual environment from pyproject.toml and starts the local
# Kafka broker (fetched from Maven Central by deploy/kafka/pom.xml) when it is not running.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv tools tool-promtool tool-chromium demo test test-quick lint bench kafka-start kafka-stop clean

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

# promtool checks deploy/prometheus/ (tests/integration/test_deploy_config.py). Debian's
# `prometheus` package ships it; installing that package may start a Prometheus service on
# :9090 (where a service manager allows it), which is stopped and disabled again here.
# The browser tests (tests/e2e/test_browser_*.py) drive Debian's chromium through its
# chromedriver (/usr/bin/chromium, /usr/bin/chromedriver); nothing is downloaded at run time.
tools: tool-promtool tool-chromium

tool-promtool:
	@command -v promtool >/dev/null 2>&1 && exit 0; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "promtool is missing: run 'make tools' as root, or install Debian's prometheus package" \
	    "(sudo apt-get install --no-install-recommends prometheus), or put promtool on PATH" >&2; \
	  exit 1; fi; \
	running_before=$$(pgrep -x prometheus); \
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends prometheus; } || exit 1; \
	if [ -z "$$running_before" ] && pgrep -x prometheus >/dev/null; then \
	  echo "stopping the prometheus service the package started"; \
	  if [ -d /run/systemd/system ]; then systemctl disable --now prometheus; \
	  else invoke-rc.d prometheus stop || service prometheus stop; update-rc.d prometheus disable >/dev/null 2>&1; fi; \
	fi; \
	command -v promtool >/dev/null || { echo "promtool still missing after install" >&2; exit 1; }; \
	promtool --version 2>&1 | head -n 1

tool-chromium:
	@test -x /usr/bin/chromium && test -x /usr/bin/chromedriver && exit 0; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "chromium or chromedriver is missing: run 'make tools' as root, or install Debian's" \
	    "chromium and chromium-driver packages (sudo apt-get install --no-install-recommends" \
	    "chromium chromium-driver)" >&2; \
	  exit 1; fi; \
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends chromium chromium-driver; } || exit 1; \
	test -x /usr/bin/chromium && test -x /usr/bin/chromedriver \
	  || { echo "chromium or chromedriver still missing after install" >&2; exit 1; }; \
	/usr/bin/chromedriver --version | head -n 1

# The whole suite (unit, agents, integration, e2e) against a real broker. The broker is
# stopped afterwards only if this target started it. pytest's "no tests collected" (exit 5)
# is a failure here, like any other non-zero exit.
test: venv lint tools
	@if $(BIN)/orchestrator kafka status >/dev/null 2>&1; then started=0; else \
	  $(BIN)/orchestrator kafka start || exit 1; started=1; fi; \
	$(BIN)/python -m pytest; rc=$$?; \
	if [ $$started = 1 ]; then $(BIN)/orchestrator kafka stop; fi; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; fi; \
	exit $$rc

# Pure and shell tests only: no broker needed.
test-quick: venv
	$(BIN)/python -m pytest -m "unit or agents"

# Results go to benchmarks/results/ (JSON and PNG); see benchmarks/README.md.
bench: venv
	@$(BIN)/orchestrator kafka start
	$(BIN)/python benchmarks/event_to_action.py
	$(BIN)/python benchmarks/store_size.py
	$(BIN)/python benchmarks/rules_eval.py
	$(BIN)/python benchmarks/intent_scoring.py --compare
	$(BIN)/python benchmarks/processor_replay.py
	$(BIN)/python benchmarks/context_latency.py
	$(BIN)/python benchmarks/drain.py
	$(BIN)/python benchmarks/journey_timers.py
	$(BIN)/python benchmarks/journey_timers.py --entry-rate 100 --wait 105 --duration 100 \
		--output benchmarks/results/journey_timers-steady.json

kafka-start: venv
	$(BIN)/orchestrator kafka start

kafka-stop: venv
	$(BIN)/orchestrator kafka stop

clean:
	-$(BIN)/orchestrator kafka stop
	rm -rf var
