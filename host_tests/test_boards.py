"""boards/<NAME>/board.toml: every board loads, and its flash layout and filesystem geometry are consistent.

A LittleFS image whose block count differs from the partition makes a real board reformat its filesystem on
boot, so the geometry rules are checked for every board, and the checker is shown to catch each kind of error.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from hourglass.boards import BOARDS_DIR, BoardError, board_names, load_board

EXPECTED = {"ESP32_GENERIC", "ESP32_GENERIC-OTA", "ESP32_GENERIC_S3", "ESP32_GENERIC_C3", "PCA10056", "PCA10059",
            "SEEED_XIAO_NRF52"}
ARCH = {"ESP32_GENERIC": "xtensawin", "ESP32_GENERIC-OTA": "xtensawin", "ESP32_GENERIC_S3": "xtensawin",
        "ESP32_GENERIC_C3": "rv32imc", "PCA10056": "armv7emsp", "PCA10059": "armv7emsp",
        "SEEED_XIAO_NRF52": "armv7emsp"}
ESP32 = sorted(n for n in EXPECTED if n.startswith("ESP32"))
NRF = sorted(EXPECTED - set(ESP32))


def test_every_board_has_a_folder():
    assert set(board_names()) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_board_loads_with_its_arch(name):
    b = load_board(name)
    assert b.name == name
    assert b.mpy_arch == ARCH[name]
    assert b.mp_version == "1.29.0"
    ext = "bin" if name in ESP32 else ("uf2" if name == "SEEED_XIAO_NRF52" else "hex")
    assert re.fullmatch(rf"{re.escape(name)}-\d{{8}}-v1\.29\.0\.{ext}", b.firmware_name)
    assert b.firmware_sha256 == "" or re.fullmatch(r"[0-9a-f]{64}", b.firmware_sha256)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_filesystem_geometry_matches_the_partition(name):
    b = load_board(name)
    (vfs,) = [p for p in b.partitions if p.name in ("vfs", "fs")]
    assert (vfs.offset, vfs.size) == (b.fs_offset, b.fs_size)
    assert b.fs_type == "littlefs2"
    assert b.fs_block_size == 4096
    assert b.fs_block_size * b.fs_block_count == b.fs_size
    assert b.fs_offset % 4096 == 0
    ordered = sorted(b.partitions, key=lambda p: p.offset)
    for first, second in zip(ordered, ordered[1:]):
        assert first.end <= second.offset, (first, second)
    assert ordered[-1].end <= b.flash_size


@pytest.mark.parametrize("name", ESP32)
def test_esp32_vfs_runs_from_the_last_partition_to_the_end_of_flash(name):
    b = load_board(name)
    ordered = sorted(b.partitions, key=lambda p: p.offset)
    assert ordered[-1].name == "vfs"
    assert ordered[-2].end == b.fs_offset
    assert b.fs_offset + b.fs_size == b.flash_size
    assert b.fs_mount == "/"
    # The ESP32 ROM loads the bootloader from 0x1000, the S3 and C3 ROMs from 0x0.
    assert b.firmware_offset == (0x1000 if b.chip == "esp32" else 0x0)
    assert "wifi-udp" in b.transports and b.stubs == "esp32"


def test_esp32_vfs_offsets_of_the_stock_partition_tables():
    assert load_board("ESP32_GENERIC").fs_offset == 0x200000
    assert load_board("ESP32_GENERIC-OTA").fs_offset == 0x310000
    ota = {p.name for p in load_board("ESP32_GENERIC-OTA").partitions}
    assert {"ota_0", "ota_1", "otadata"} <= ota


@pytest.mark.parametrize("name", NRF)
def test_nrf_filesystem_sits_below_the_bootloader(name):
    b = load_board(name)
    assert b.fs_mount == "/flash"
    top = min([p.offset for p in b.partitions if p.name == "bootloader"] or [b.flash_size])
    assert b.fs_offset + b.fs_size == top
    assert "wifi-udp" not in b.transports and b.stubs == "nrf"
    # No ssl (DTLS) and no socket on the nRF port: those modules are left out of its builds.
    patterns = {e.pattern for e in b.excludes}
    assert {"*dtls*", "*.udp"} <= patterns
    assert b.lib_storage == "romfs" and b.romfs_stock and b.flash_budget <= b.romfs_size


def test_heap_budgets_and_the_vm_heap():
    assert load_board("ESP32_GENERIC").python_heap == 56 * 1024
    assert load_board("ESP32_GENERIC").vm_heap == "112k"
    assert load_board("ESP32_GENERIC_C3").vm_heap == "128k"
    assert load_board("PCA10059").python_heap == 200 * 1024


def _copy_board(tmp_path: Path, name: str, new_name: str | None = None, **replace: str) -> Path:
    folder = tmp_path / (new_name or name)
    shutil.copytree(BOARDS_DIR / name, folder)
    toml = folder / "board.toml"
    text = toml.read_text()
    if new_name:
        text = text.replace(f'name = "{name}"', f'name = "{new_name}"', 1)
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    toml.write_text(text)
    return tmp_path


@pytest.mark.parametrize("old,new,complaint", [
    ("block_count = 512", "block_count = 511", "block_count"),
    ("size = 0x200000\nblock_size", "size = 0x1ff000\nblock_size", "differ from partition"),
    ('mpy_arch = "xtensawin"', 'mpy_arch = "rv32imc"', "wrong for esp32"),
    ("offset = 0x200000\nsize", "offset = 0x200800\nsize", "not 4096-aligned"),
    ('{ name = "factory", offset = 0x10000, size = 0x1d0000 }',
     '{ name = "factory", offset = 0x10000, size = 0x1d1000 }', "overlap"),
    ("flash = 524288", "flash = 4194304", "exceeds"),
    ('sha256 = ""', 'sha256 = "abc"', "64 hex digits"),
    ('method = "esptool"', 'method = "jtag"', "flasher.method"),
])
def test_checker_catches_inconsistent_boards(tmp_path, old, new, complaint):
    _copy_board(tmp_path, "ESP32_GENERIC", **{old: new})
    with pytest.raises(BoardError, match=re.escape(complaint)):
        load_board("ESP32_GENERIC", tmp_path)


def test_a_new_board_is_a_folder(tmp_path):
    _copy_board(tmp_path, "ESP32_GENERIC_C3", "MY_C3_BOARD")
    assert board_names(tmp_path) == ["MY_C3_BOARD"]
    b = load_board("MY_C3_BOARD", tmp_path)
    assert b.mpy_arch == "rv32imc" and b.folder == tmp_path / "MY_C3_BOARD"


def test_unknown_board_names_the_known_ones():
    with pytest.raises(BoardError, match="known boards: .*PCA10059"):
        load_board("NO_SUCH_BOARD")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_cpython_only_modules_never_reach_a_board(name):
    from hourglass.build import Source, excluded_reason

    src = Source("coap", "coap._cpython", Path("lib/coap/coap/_cpython.py"), "lib/coap/_cpython.mpy", True)
    assert excluded_reason(load_board(name), src)
