# Freeze manifest: ESP32_GENERIC-OTA firmware with the Hourglass bundle frozen into the image, so its bytecode,
# qstrs and constants are read from flash instead of being loaded into the Python heap (stock ESP32 firmware
# cannot mount a ROMFS: MICROPY_VFS_ROM is off on every esp32 board, README "Board matrix").
#
#   make build BOARD=ESP32_GENERIC-OTA                    # makes build/ESP32_GENERIC-OTA/manifest.py
#   make -C ports/esp32 BOARD=ESP32_GENERIC BOARD_VARIANT=OTA FROZEN_MANIFEST=$PWD/boards/ESP32_GENERIC-OTA/manifest.py
#
# The build's own manifest (the port's frozen modules, every lib/ package this board takes, then the agent's
# firmware/ modules: agent, agent_config, agent_start, log) does the work; its paths are relative to that file.
# boot.py, main.py and app.py stay on the filesystem: the board runs the first two by file name, and app.py is
# what an update replaces. On the board sys.path is ['', '.frozen', '/lib']: the frozen packages come before
# /lib, so copies there are never imported (leave lib/ out of the filesystem to save its blocks), but a file in
# the filesystem root ('') still overrides a frozen module: leave agent.mpy, agent_config.mpy,
# agent_start.mpy and log.mpy off it too, or that copy (a newer agent, say) is the one that runs.
#
# What it saves, measured on a unix-port VM with the same bundle frozen (`make frozen-vm MICROPYTHON_SRC=DIR`,
# which freezes exactly this board's bundle and agent): the whole demo at 2 x 56 KiB, 48,992 B after start
# registered and at most 71,776 B at its peak on the VM, against 114,912 B and 161,280 B with the bundle and the
# agent as .mpy on the filesystem (README "ROMFS and freezing").
include("../../build/ESP32_GENERIC-OTA/manifest.py")  # noqa: F821 (the manifest DSL's global)
