"""boards/<NAME>/board.toml: every board loads, and its flash layout and filesystem geometry are consistent.

A LittleFS image whose block count differs from the partition makes a real board reformat its filesystem on
boot, so the geometry rules are checked for every board, and the checker is shown to catch each kind of error.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from hourglass.boards import BOARDS_DIR, BoardError, board_names, load_board, parse_size
from hourglass.common import UserError

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


def table(name: str) -> list[tuple[str, int, int]]:
    return [(p.name, p.offset, p.size) for p in load_board(name).partitions
            if p.name not in ("bootloader", "partition-table")]


@pytest.mark.parametrize("name", ["ESP32_GENERIC", "ESP32_GENERIC_C3", "ESP32_GENERIC_S3"])
def test_esp32_default_table_is_upstreams_4mibplus(name):
    """ports/esp32/partitions-4MiBplus.csv: factory 0x1F0000 at 0x10000, no ROMFS; vfs made at boot up to the
    end of flash (4 MiB by default: 512 blocks)."""
    assert table(name) == [("nvs", 0x9000, 0x6000), ("phy_init", 0xF000, 0x1000), ("factory", 0x10000, 0x1F0000),
                           ("vfs", 0x200000, 0x200000)]
    b = load_board(name)
    assert not b.romfs_stock and b.romfs_size == 0 and b.fs_to_end_of_flash
    assert (b.flash_size, b.fs_block_count) == (4 << 20, 512)


def test_esp32_ota_table_is_upstreams():
    assert table("ESP32_GENERIC-OTA") == [
        ("nvs", 0x9000, 0x4000), ("otadata", 0xD000, 0x2000), ("phy_init", 0xF000, 0x1000),
        ("ota_0", 0x10000, 0x180000), ("ota_1", 0x190000, 0x180000), ("vfs", 0x310000, 0xF0000)]
    assert load_board("ESP32_GENERIC-OTA").fs_block_count == 240


@pytest.mark.parametrize("name,flash,blocks", [("ESP32_GENERIC", "8M", 1536), ("ESP32_GENERIC_S3", "16MiB", 3584),
                                               ("ESP32_GENERIC-OTA", "0x800000", 1264)])
def test_flash_size_is_a_parameter_of_esp32_boards(name, flash, blocks):
    b = load_board(name, flash_size=parse_size(flash))
    (vfs,) = [p for p in b.partitions if p.name == "vfs"]
    assert b.fs_block_count == blocks and vfs.end == b.fs_offset + b.fs_size == b.flash_size == parse_size(flash)


def test_flash_size_of_a_fixed_layout_is_refused():
    assert load_board("PCA10056", flash_size=1 << 20).fs_block_count == 16
    with pytest.raises(BoardError, match="not a build parameter"):
        load_board("PCA10056", flash_size=2 << 20)
    with pytest.raises(BoardError, match="no room for the filesystem"):
        load_board("ESP32_GENERIC", flash_size=2 << 20)


def test_parse_size():
    assert [parse_size(t) for t in ("4M", "4MiB", "8mb", "0x400000", "4194304", "512k")] == \
        [4 << 20, 4 << 20, 8 << 20, 4 << 20, 4 << 20, 512 << 10]
    with pytest.raises(UserError, match="not a flash size"):
        parse_size("four megs")


# ports/nrf/boards/memory.ld: head | app | ROMFS | filesystem | bootloader tail, the app takes the rest;
# nrf52840_1M_256k.ld: 1M flash, 256K ROMFS; the fs is 64K unless the board's FS_SIZE says otherwise.
NRF_LINKER = {"PCA10056": (0, 0x10000, 0), "PCA10059": (0x1000, 0x10000, 0x20000),
              "SEEED_XIAO_NRF52": (0x27000, 0x40000, 0xC000)}


@pytest.mark.parametrize("name", NRF)
def test_nrf_layout_is_the_linker_scripts(name):
    head, fs_size, tail = NRF_LINKER[name]
    romfs_size = 256 * 1024
    app_size = 0x100000 - head - romfs_size - fs_size - tail
    by_name = {p.name: (p.offset, p.size) for p in load_board(name).partitions}
    assert by_name["app"] == (head, app_size)
    assert by_name["romfs"] == (head + app_size, romfs_size)
    assert by_name["fs"] == (head + app_size + romfs_size, fs_size)
    assert by_name["romfs"][0] == {"PCA10056": 0xB0000, "PCA10059": 0x90000, "SEEED_XIAO_NRF52": 0x74000}[name]
    b = load_board(name)
    assert b.romfs_size == romfs_size and b.flash_budget == romfs_size - 4096


def test_boards_command_lists_boards_and_serial_ports(capsys):
    from hourglass import cli

    assert cli.main(["boards"]) == 0
    out = capsys.readouterr().out
    for name in EXPECTED:
        assert f"  {name} " in out
    assert "ESP32_GENERIC_C3   esp32c3   wifi-udp,serial" in out
    assert "heap 200 KiB (VM 400k), flash 1 MiB: /flash 64 KiB at 0xf0000 (16 blocks), ROMFS 256 KiB" in out
    assert "/ 2 MiB at 0x200000 (512 blocks) to end of flash" in out
    assert "Serial ports:" in out


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


@pytest.mark.parametrize("name,old,new,complaint", [
    ("PCA10056", "block_count = 16", "block_count = 15", "block_count"),
    ("PCA10056", "size = 0x10000\n", "size = 0xf000\n", "differ from partition"),
    ("ESP32_GENERIC", 'mpy_arch = "xtensawin"', 'mpy_arch = "rv32imc"', "wrong for esp32"),
    ("PCA10056", "offset = 0xf0000\nsize", "offset = 0xf0800\nsize", "not 4096-aligned"),
    ("ESP32_GENERIC", '{ name = "factory", offset = 0x10000, size = 0x1f0000 }',
     '{ name = "factory", offset = 0x10000, size = 0x1f1000 }', "must be the end of the last partition"),
    ("PCA10056", '{ name = "romfs", offset = 0xb0000, size = 0x40000 }',
     '{ name = "romfs", offset = 0xa0000, size = 0x40000 }', "overlap"),
    ("ESP32_GENERIC", "flash = 524288", "flash = 4194304", "exceeds"),
    ("ESP32_GENERIC", 'sha256 = ""', 'sha256 = "abc"', "64 hex digits"),
    ("ESP32_GENERIC", 'method = "esptool"', 'method = "jtag"', "flasher.method"),
    ("ESP32_GENERIC", "block_size = 4096\n", "block_size = 4096\nblock_count = 512\n", "leave it out"),
])
def test_checker_catches_inconsistent_boards(tmp_path, name, old, new, complaint):
    _copy_board(tmp_path, name, **{old: new})
    with pytest.raises(BoardError, match=re.escape(complaint)):
        load_board(name, tmp_path)


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
