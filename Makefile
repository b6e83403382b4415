# Hourglass: MicroPython firmware bundle. `make setup` then `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BOARD ?= ESP32_GENERIC
PORT ?=
JOBS ?= 2

.PHONY: setup test test-cpython test-micropython bench typecheck build image flash deploy repl vboard clean system-packages

setup: system-packages $(STAMP)

system-packages:
	bash tools/setup-system.sh

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.lock
	$(BIN)/pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/pytest -n $(JOBS) --dist loadfile host_tests

bench: $(STAMP)
	$(BIN)/hourglass bench --out build/bench

clean:
	rm -rf build .pytest_cache
