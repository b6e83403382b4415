# Hourglass: MicroPython firmware bundle. `make setup` then `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BOARD ?= ESP32_GENERIC
PORT ?=
JOBS ?= 2

.PHONY: demo frozen-vm setup test test-cpython test-micropython bench typecheck packages build image flash deploy repl vboard clean system-packages

setup: system-packages $(STAMP)

system-packages:
	bash tools/setup-system.sh

$(STAMP): requirements.lock pyproject.toml boards/stubs-esp32.txt boards/stubs-nrf.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.lock
	$(BIN)/pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	$(BIN)/pip install --disable-pip-version-check -q --upgrade --target $(VENV)/stubs/esp32 -r boards/stubs-esp32.txt
	$(BIN)/pip install --disable-pip-version-check -q --upgrade --target $(VENV)/stubs/nrf -r boards/stubs-nrf.txt
	touch $(STAMP)

# stdin from /dev/null: VM subprocesses must not see (and poll) the terminal make was started from.
test: $(STAMP)
	$(BIN)/pytest -n $(JOBS) --dist loadfile host_tests < /dev/null

# A device's whole life on a virtual board (README "make demo"): INTERACTIVE=1 waits for you on the OOB web page;
# DEMO_ARGS for anything else `hourglass demo --help` lists.
DEMO_BOARD ?= ESP32_GENERIC-OTA
INTERACTIVE ?=
DEMO_ARGS ?=
demo: $(STAMP)
	$(BIN)/hourglass demo --board $(if $(filter command line,$(origin BOARD)),$(BOARD),$(DEMO_BOARD)) \
		$(if $(INTERACTIVE),--interactive) $(if $(PORT),--port $(PORT)) $(if $(DRY_RUN),--dry-run) \
		$(if $(WIFI_SSID),--wifi-ssid $(WIFI_SSID)) $(if $(WIFI_PASSWORD),--wifi-password $(WIFI_PASSWORD)) $(DEMO_ARGS)

bench: $(STAMP)
	$(BIN)/hourglass bench --out build/bench

# A unix-port VM with the board's bundle frozen in, from a MicroPython source tree (README "ROMFS and freezing");
# never part of `make test`. Then HOURGLASS_MICROPYTHON=build/frozen-vm/bundle/unix/micropython make demo.
MICROPYTHON_SRC ?=
frozen-vm: $(STAMP)
	$(BIN)/hourglass frozen-vm --micropython-src $(MICROPYTHON_SRC) --board $(DEMO_BOARD)
	$(BIN)/hourglass frozen-vm --micropython-src $(MICROPYTHON_SRC) --board $(DEMO_BOARD) --without-bundle

# Boards (boards/README.md): build/<board>/ from lib/ + firmware/; FLASH_SIZE=8M for an ESP32 module with more
# than the default 4 MiB; FIRMWARE=<file or folder> (never downloaded), SHA256=<pin> for an unpinned firmware,
# DRIVE=<UF2 drive>; DRY_RUN=1 reports refusals and prints the exact tool invocations, writing nothing.
FIRMWARE ?=
SHA256 ?=
DRIVE ?=
DRY_RUN ?=
FLASH_SIZE ?=
FLASH_ARGS = $(if $(FIRMWARE),--firmware $(FIRMWARE)) $(if $(SHA256),--sha256 $(SHA256)) $(if $(DRY_RUN),--dry-run)

# lib/*/package.json from each manifest.py (published form, deps at github:$(PACKAGE_REPO)), and build/mip/
# (this checkout's form: `mpremote mip install $$PWD/build/mip/<package>/package.json` from anywhere).
PACKAGE_REPO ?=
packages: $(STAMP)
	$(BIN)/hourglass packages $(if $(PACKAGE_REPO),--repo $(PACKAGE_REPO)) --local build/mip

build: packages
	$(BIN)/hourglass build --board $(BOARD) $(if $(FLASH_SIZE),--flash-size $(FLASH_SIZE))

image: build
	$(BIN)/hourglass image --board $(BOARD) $(FLASH_ARGS)

flash: build
	$(BIN)/hourglass flash --board $(BOARD) $(if $(PORT),--port $(PORT)) $(if $(DRIVE),--drive $(DRIVE)) $(FLASH_ARGS)

# A board already running MicroPython (or `make vboard`): PORT=<serial port or pty>. DRY_RUN=1 prints the
# exact mpremote/ampy invocations; RESUME=1 connects without a soft reset. FLASH_DIR is the virtual board's
# flash (a directory).
FLASH_DIR ?= build/vboard/$(BOARD)

# CONFIG="wifi.ssid=lab wifi.password=... controller=[\"192.0.2.1\",5683]": the agent's config.json (hourglass config)
CONFIG ?=
deploy: build
	$(if $(CONFIG),$(BIN)/hourglass config --board $(BOARD) $(CONFIG))
	$(BIN)/hourglass deploy --board $(BOARD) $(if $(PORT),--port $(PORT)) $(if $(DRY_RUN),--dry-run)

repl: $(STAMP)
	$(BIN)/hourglass repl --port $(PORT) $(if $(RESUME),--resume) $(if $(DRY_RUN),--dry-run)

vboard: $(STAMP)
	$(BIN)/hourglass vboard --board $(BOARD) --flash $(FLASH_DIR) -v

typecheck: $(STAMP)
	$(BIN)/pytest -q host_tests/test_typecheck.py

clean:
	rm -rf build .pytest_cache
