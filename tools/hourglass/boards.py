"""Board definitions: one folder per board under boards/, holding board.toml (read with tomllib).

A new board is a new folder, not a code change. This module loads and checks the data (and lists the boards:
`hourglass boards`); the builder (build.py) and the flasher (flash.py) read everything board-specific from it.
See boards/README.md for the schema.

The ESP32 firmware (since MicroPython 1.26) has no vfs entry in its partition table: at boot it creates one from
the end of the last partition to the end of the flash it detects. Such a board says `size = "to-end-of-flash"`
in [filesystem], and its filesystem size follows the flash size, a build parameter (`--flash-size`, default
[flash] size).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hourglass.common import UserError

REPO = Path(__file__).resolve().parents[2]
BOARDS_DIR = REPO / "boards"
# Tests (and users with private boards) point this at another folder of board folders.
BOARDS_DIR_ENV = "HOURGLASS_BOARDS_DIR"

# mpy-cross -march per chip: the native emitter the chip's MicroPython firmware was built with.
ARCH_BY_CHIP = {
    "esp32": "xtensawin",
    "esp32s3": "xtensawin",
    "esp32c3": "rv32imc",
    "nrf52840": "armv7emsp",
}
FLASHER_METHODS = ("esptool", "pyocd", "nrfutil-dfu", "uf2")
FS_TYPES = ("littlefs2",)
# Where lib/ goes on the board: the LittleFS image, or the ROMFS image (mounted at /rom, /rom/lib on sys.path).
LIB_STORAGES = ("littlefs", "romfs")
# Flash erase granularity: ESP32 SPI flash sectors and nRF52840 flash pages are both 4 KiB.
ERASE_SIZE = 4096
# [filesystem] size of a board whose firmware makes the filesystem from the end of the last partition.
TO_END_OF_FLASH = "to-end-of-flash"


class BoardError(UserError):
    """A board folder is missing, unreadable or inconsistent."""


def parse_size(text: str) -> int:
    """A flash size as a user writes it: 4M, 4MiB, 8MB, 0x800000, 4194304 (M/MB/MiB all mean 2**20)."""
    m = re.fullmatch(r"\s*(0x[0-9a-f]+|\d+)\s*(k|kb|kib|m|mb|mib)?\s*", text.lower())
    if not m:
        raise UserError(f"not a flash size: {text!r} (give e.g. 4M, 8MiB or 0x400000)")
    unit = {"k": 1 << 10, "m": 1 << 20}.get((m[2] or " ")[0], 1)
    return int(m[1], 0) * unit


@dataclass(frozen=True)
class Partition:
    name: str
    offset: int
    size: int

    @property
    def end(self) -> int:
        return self.offset + self.size


@dataclass(frozen=True)
class Exclude:
    pattern: str  # fnmatch pattern over dotted module names, e.g. "*.dtls*"
    reason: str


@dataclass(frozen=True)
class Board:
    name: str
    folder: Path
    description: str
    chip: str
    port: str
    mpy_arch: str
    transports: tuple[str, ...]
    mp_version: str
    firmware_name: str
    firmware_sha256: str
    firmware_note: str
    firmware_offset: int
    flash_size: int
    partitions: tuple[Partition, ...]
    fs_type: str
    fs_mount: str
    fs_offset: int
    fs_size: int
    fs_block_size: int
    fs_block_count: int
    python_heap: int
    flash_budget: int
    romfs_stock: bool
    romfs_size: int
    romfs_note: str
    stubs: str
    lib_storage: str
    mpy_cross_args: tuple[str, ...]
    excludes: tuple[Exclude, ...]
    flasher_method: str
    flash_commands: tuple[tuple[str, ...], ...]
    image_commands: tuple[tuple[str, ...], ...]
    flasher_note: str
    uf2_family: int
    # The firmware creates the filesystem from fs_offset to the end of flash (ESP32): its size follows flash_size.
    fs_to_end_of_flash: bool = False
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def vm_heap(self) -> str:
        """Heap for the 64-bit MicroPython VM standing in for this board: objects are twice as big there."""
        return f"{2 * self.python_heap // 1024}k"

    @property
    def build_hook(self) -> Path | None:
        hook = self.folder / "build.py"
        return hook if hook.is_file() else None

    def fs_partition(self) -> Partition:
        return Partition("fs", self.fs_offset, self.fs_size)

    def with_flash_size(self, flash_size: int) -> Board:
        """This board on a module with `flash_size` bytes of flash: the filesystem runs to its end."""
        if flash_size == self.flash_size:
            return self
        if not self.fs_to_end_of_flash:
            raise BoardError(f"{self.name}: the filesystem has a fixed place ({self.fs_offset:#x}+{self.fs_size:#x}), "
                             "so the flash size is not a build parameter for this board")
        fs_size = flash_size - self.fs_offset
        board = dataclasses.replace(
            self, flash_size=flash_size, fs_size=fs_size, fs_block_count=max(fs_size, 0) // self.fs_block_size,
            partitions=tuple(Partition(p.name, p.offset, fs_size) if p.name in ("vfs", "fs") else p
                             for p in self.partitions))
        problems = check_board(board)
        if problems:
            raise BoardError(f"{self.name} with {flash_size:#x} bytes of flash: " + "; ".join(problems))
        return board


def boards_dir() -> Path:
    return Path(os.environ.get(BOARDS_DIR_ENV) or BOARDS_DIR)


def board_names(directory: Path | None = None) -> list[str]:
    directory = directory or boards_dir()
    return sorted(p.name for p in directory.iterdir() if (p / "board.toml").is_file())


def _get(table: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in table:
        raise BoardError(f"{where}: missing key {key!r}")
    value = table[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BoardError(f"{where}: {key!r} must be {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def load_board(name: str, directory: Path | None = None, flash_size: int | None = None) -> Board:
    """boards/<name>/board.toml; `flash_size` (bytes) for a module with another flash size than [flash] size."""
    directory = directory or boards_dir()
    folder = directory / name
    path = folder / "board.toml"
    if not path.is_file():
        known = ", ".join(board_names(directory)) if directory.is_dir() else "(none)"
        raise BoardError(f"unknown board {name!r}: no {path} (known boards: {known})")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise BoardError(f"{path}: {exc}") from exc
    where = str(path)
    mp = _get(data, "micropython", dict, where)
    flash = _get(data, "flash", dict, where)
    fs = _get(data, "filesystem", dict, where)
    budget = _get(data, "budget", dict, where)
    romfs = data.get("romfs", {})
    build = data.get("build", {})
    flasher = _get(data, "flasher", dict, where)
    flash_bytes = _get(flash, "size", int, where + " [flash]")
    fs_offset = _get(fs, "offset", int, where + " [filesystem]")
    block_size = _get(fs, "block_size", int, where + " [filesystem]")
    partitions = [Partition(_get(p, "name", str, where), _get(p, "offset", int, where), _get(p, "size", int, where))
                  for p in _get(flash, "partitions", list, where + " [flash]")]
    to_end = fs.get("size") == TO_END_OF_FLASH
    if to_end:
        if "block_count" in fs:
            raise BoardError(f"{where} [filesystem]: block_count follows from the flash size when size is "
                             f"{TO_END_OF_FLASH!r}: leave it out")
        fs_size = flash_bytes - fs_offset
        block_count = fs_size // block_size if block_size > 0 else 0
        partitions.append(Partition("vfs", fs_offset, fs_size))
    else:
        fs_size = _get(fs, "size", int, where + " [filesystem]")
        block_count = _get(fs, "block_count", int, where + " [filesystem]")
    board = Board(
        name=_get(data, "name", str, where),
        folder=folder,
        description=_get(data, "description", str, where),
        chip=_get(data, "chip", str, where),
        port=_get(data, "port", str, where),
        mpy_arch=_get(data, "mpy_arch", str, where),
        transports=tuple(_get(data, "transports", list, where)),
        mp_version=_get(mp, "version", str, where + " [micropython]"),
        firmware_name=_get(mp, "firmware", str, where + " [micropython]"),
        firmware_sha256=_get(mp, "sha256", str, where + " [micropython]").lower(),
        firmware_note=mp.get("note", ""),
        firmware_offset=_get(flash, "firmware_offset", int, where + " [flash]"),
        flash_size=flash_bytes,
        partitions=tuple(partitions),
        fs_type=_get(fs, "type", str, where + " [filesystem]"),
        fs_mount=_get(fs, "mount", str, where + " [filesystem]"),
        fs_offset=fs_offset,
        fs_size=fs_size,
        fs_block_size=block_size,
        fs_block_count=block_count,
        python_heap=_get(budget, "python_heap", int, where + " [budget]"),
        flash_budget=_get(budget, "flash", int, where + " [budget]"),
        romfs_stock=bool(romfs.get("stock_partition", False)),
        romfs_size=int(romfs.get("size", 0)),
        romfs_note=romfs.get("note", ""),
        stubs=_get(data, "stubs", str, where),
        lib_storage=build.get("lib_storage", "littlefs"),
        mpy_cross_args=tuple(build.get("mpy_cross_args", [])),
        excludes=tuple(Exclude(_get(e, "pattern", str, where), _get(e, "reason", str, where))
                       for e in build.get("exclude", [])),
        flasher_method=_get(flasher, "method", str, where + " [flasher]"),
        flash_commands=tuple(tuple(c) for c in _get(flasher, "flash", list, where + " [flasher]")),
        image_commands=tuple(tuple(c) for c in flasher.get("image", [])),
        flasher_note=flasher.get("note", ""),
        uf2_family=int(flasher.get("uf2_family", 0)),
        fs_to_end_of_flash=to_end,
        raw=data,
    )
    problems = check_board(board)
    if problems:
        raise BoardError(f"{where}: " + "; ".join(problems))
    return board if flash_size is None else board.with_flash_size(flash_size)


def all_boards(directory: Path | None = None) -> list[Board]:
    return [load_board(n, directory) for n in board_names(directory)]


def check_board(b: Board) -> list[str]:
    """Consistency rules: a wrong filesystem geometry makes a real board reformat its flash on boot."""
    problems: list[str] = []
    if b.name != b.folder.name:
        problems.append(f"name {b.name!r} differs from its folder {b.folder.name!r}")
    expected_arch = ARCH_BY_CHIP.get(b.chip)
    if expected_arch is None:
        problems.append(f"unknown chip {b.chip!r} (known: {', '.join(ARCH_BY_CHIP)})")
    elif b.mpy_arch != expected_arch:
        problems.append(f"mpy_arch {b.mpy_arch!r} is wrong for {b.chip}: expected {expected_arch!r}")
    if b.firmware_sha256 and not re.fullmatch(r"[0-9a-f]{64}", b.firmware_sha256):
        problems.append("micropython.sha256 must be 64 hex digits or empty (not pinned)")
    if b.fs_type not in FS_TYPES:
        problems.append(f"filesystem type {b.fs_type!r} not supported (supported: {', '.join(FS_TYPES)})")
    if b.fs_block_size <= 0 or b.fs_block_size % ERASE_SIZE:
        problems.append(f"filesystem block_size {b.fs_block_size} is not a multiple of the {ERASE_SIZE}-byte "
                        "erase size")
    elif b.fs_block_size * b.fs_block_count != b.fs_size:
        problems.append(f"filesystem block_size*block_count = {b.fs_block_size * b.fs_block_count:#x} "
                        f"!= partition size {b.fs_size:#x}")
    if b.fs_offset % ERASE_SIZE:
        problems.append(f"filesystem offset {b.fs_offset:#x} is not {ERASE_SIZE}-aligned")
    if b.fs_size <= 0:
        problems.append(f"no room for the filesystem: it starts at {b.fs_offset:#x}, flash ends at {b.flash_size:#x}")
    if b.fs_to_end_of_flash:
        table_end = max((p.end for p in b.partitions if p.name not in ("vfs", "fs")), default=0)
        if table_end != b.fs_offset:
            problems.append(f"filesystem offset {b.fs_offset:#x} must be the end of the last partition "
                            f"({table_end:#x}): that is where the firmware creates it")
    if b.fs_offset + b.fs_size > b.flash_size:
        problems.append(f"filesystem {b.fs_offset:#x}+{b.fs_size:#x} runs past the end of flash {b.flash_size:#x}")
    fs_parts = [p for p in b.partitions if p.name in ("vfs", "fs")]
    if len(fs_parts) != 1:
        problems.append("flash.partitions must name exactly one filesystem partition ('vfs' or 'fs')")
    elif (fs_parts[0].offset, fs_parts[0].size) != (b.fs_offset, b.fs_size):
        problems.append(f"filesystem offset/size {b.fs_offset:#x}/{b.fs_size:#x} differ from partition "
                        f"{fs_parts[0].name} {fs_parts[0].offset:#x}/{fs_parts[0].size:#x}")
    ordered = sorted(b.partitions, key=lambda p: p.offset)
    for first, second in zip(ordered, ordered[1:]):
        if first.end > second.offset:
            problems.append(f"partitions {first.name} and {second.name} overlap")
    for p in ordered:
        if p.end > b.flash_size:
            problems.append(f"partition {p.name} runs past the end of flash")
    if b.flash_budget <= 0 or b.python_heap <= 0:
        problems.append("budget.flash and budget.python_heap must be positive")
    if any(a.startswith("-march") for a in b.mpy_cross_args):
        problems.append("build.mpy_cross_args must not set -march: that is mpy_arch")
    if b.lib_storage not in LIB_STORAGES:
        problems.append(f"build.lib_storage {b.lib_storage!r} unknown (known: {', '.join(LIB_STORAGES)})")
    capacity = b.romfs_size if b.lib_storage == "romfs" else b.fs_size
    if b.flash_budget > capacity:
        problems.append(f"budget.flash {b.flash_budget} exceeds the {b.lib_storage} size {capacity}")
    romfs_parts = [p for p in b.partitions if p.name == "romfs"]
    if b.romfs_stock and (len(romfs_parts) != 1 or romfs_parts[0].size != b.romfs_size):
        problems.append("romfs.size must match the one 'romfs' partition when romfs.stock_partition is set")
    if b.lib_storage == "romfs" and not b.romfs_stock:
        problems.append("build.lib_storage = 'romfs' needs a board whose stock firmware has a ROMFS partition")
    if b.flasher_method == "uf2" and not b.uf2_family:
        problems.append("flasher.uf2_family is required for the uf2 method")
    if b.flasher_method not in FLASHER_METHODS:
        problems.append(f"flasher.method {b.flasher_method!r} unknown (known: {', '.join(FLASHER_METHODS)})")
    if not b.flash_commands:
        problems.append("flasher.flash must list at least one command")
    return problems


# ---------------------------------------------------------------------------------------------- `hourglass boards`

def _kib(n: int) -> str:
    return f"{n // 1024} KiB" if n % (1 << 20) else f"{n >> 20} MiB"


def describe_boards(directory: Path | None = None) -> list[str]:
    """One line per board folder: chip, transports, heap (the VM's in brackets), flash, filesystem, lib/ room."""
    lines = []
    for b in all_boards(directory):
        fs = f"{b.fs_mount} {_kib(b.fs_size)} at {b.fs_offset:#x} ({b.fs_block_count} blocks)"
        if b.fs_to_end_of_flash:
            fs += " to end of flash"
        romfs = f", ROMFS {_kib(b.romfs_size)}" if b.romfs_stock else ""
        lines.append(f"{b.name:<18} {b.chip:<9} {','.join(b.transports):<16} heap {_kib(b.python_heap)} "
                     f"(VM {b.vm_heap}), flash {_kib(b.flash_size)}: {fs}{romfs}; lib/ on {b.lib_storage}, "
                     f"budget {b.flash_budget} bytes; {b.flasher_method}")
    return lines


def serial_ports() -> list[str]:
    """The serial ports present, as pyserial lists them (device, description, USB VID:PID)."""
    from serial.tools import list_ports

    out = []
    for port in sorted(list_ports.comports(), key=lambda p: p.device):
        usb = f" [{port.vid:04x}:{port.pid:04x}]" if port.vid is not None and port.pid is not None else ""
        description = port.description if port.description and port.description != "n/a" else ""
        out.append(f"{port.device}" + (f"  {description}" if description else "") + usb)
    return out


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("boards", help="list the board folders and the serial ports present",
                              description="The boards under boards/ (chip, transports, heap, flash layout) and "
                                          "the serial ports on this machine, for --board and --port.")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    directory = boards_dir()
    print(f"Boards ({directory}):")
    for line in describe_boards(directory):
        print("  " + line)
    ports = serial_ports()
    print("Serial ports:" + ("" if ports else " none found"))
    for line in ports:
        print("  " + line)
    return 0
