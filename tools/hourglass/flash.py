"""`hourglass flash`, `hourglass image` and `hourglass firmware pin`: write MicroPython and our images to a board.

The firmware file is never downloaded: it comes from --firmware (a file or a folder), $HOURGLASS_FIRMWARE_DIR, or
~/.cache/hourglass/firmware/, and must match the sha256 pinned in the board's board.toml (`hourglass firmware
pin`, or --sha256) before anything is written. Every refusal is found and printed before the plan, and a dry run
(--dry-run) reports the same refusals, prints the exact tool invocations, runs nothing, and exits 1 when the real
run would be refused. The tool invocations come from boards/<NAME>/board.toml ([flasher]).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from hourglass.boards import Board, Partition, board_names, load_board
from hourglass.common import BuildLayout, UserError, find_executable, sha256_file

FIRMWARE_DIR_ENV = "HOURGLASS_FIRMWARE_DIR"
DEFAULT_FIRMWARE_CACHE = Path("~/.cache/hourglass/firmware")
# A UF2 bootloader's USB drive carries this file (https://github.com/microsoft/uf2#file-containers).
UF2_INFO_FILE = "INFO_UF2.TXT"
# First byte of an ESP-IDF app or bootloader image (esptool's ESPLoader.ESP_IMAGE_MAGIC).
ESP_IMAGE_MAGIC = 0xE9
# How long `hourglass flash` waits for a debug probe before pyOCD runs (which then gets --no-wait).
PROBE_TIMEOUT = 30.0
# What a missing --port/--drive looks like in a dry run's plan.
MISSING = {"port": "<PORT>", "drive": "<DRIVE>"}
NRFUTIL_HINT = "Nordic nrfutil, then `nrfutil install nrf5sdk-tools`"

# UF2 (https://github.com/microsoft/uf2): 512-byte blocks, 256 payload bytes each, the family ID in place of
# the file size when flag 0x2000 is set.
UF2_MAGIC_START0 = 0x0A324655
UF2_MAGIC_START1 = 0x9E5D5157
UF2_MAGIC_END = 0x0AB16F30
UF2_FLAG_NOT_MAIN_FLASH = 0x00000001
UF2_FLAG_FAMILY_ID = 0x00002000
UF2_BLOCK = 512
UF2_PAYLOAD = 256
UF2_HEADER = struct.Struct("<8I")


@dataclass
class Step:
    """One thing a flash/image run does: a tool invocation (argv) or an in-process action (run)."""
    what: str
    argv: list[str] | None = None
    run: Callable[[], None] | None = None

    def describe(self) -> str:
        return shlex.join(self.argv) if self.argv is not None else f"# {self.what}"


# ---------------------------------------------------------------------------------------------- firmware

def firmware_search_dirs(explicit: Path | None = None) -> list[Path]:
    dirs = []
    if explicit is not None and explicit.is_dir():
        dirs.append(explicit)
    if os.environ.get(FIRMWARE_DIR_ENV):
        dirs.append(Path(os.environ[FIRMWARE_DIR_ENV]))
    dirs.append(DEFAULT_FIRMWARE_CACHE.expanduser())
    return dirs


def find_firmware(board: Board, explicit: Path | None = None) -> Path:
    """The local firmware file for `board`: --firmware FILE, or the pinned file name in a firmware folder."""
    if explicit is not None and not explicit.is_dir():
        if not explicit.is_file():
            raise UserError(f"firmware file {explicit} does not exist")
        return explicit
    for d in firmware_search_dirs(explicit):
        candidate = d / board.firmware_name
        if candidate.is_file():
            return candidate
    where = ", ".join(str(d) for d in firmware_search_dirs(explicit))
    raise UserError(
        f"{board.name}: firmware {board.firmware_name} not found in {where}. Nothing is downloaded: fetch "
        f"MicroPython {board.mp_version} for {board.name} yourself and put it there, or pass FIRMWARE=<file>.")


def verify_firmware(board: Board, path: Path, pin: str | None = None) -> str:
    """Check `path` against the pinned sha256 (board.toml, or an explicit --sha256 pin). Returns the digest."""
    if pin and board.firmware_sha256 and pin.lower() != board.firmware_sha256:
        raise UserError(f"{board.name}: --sha256 {pin} conflicts with the sha256 pinned in "
                        f"boards/{board.name}/board.toml ({board.firmware_sha256}); the board's pin wins")
    expected = (board.firmware_sha256 or pin or "").lower()
    actual = sha256_file(path)
    if not expected:
        raise UserError(
            f"{board.name}: no sha256 is pinned for {board.firmware_name} (boards/{board.name}/board.toml "
            f"[micropython] sha256), so {path} cannot be verified and nothing would be written. Its sha256 is "
            f"{actual}: check it against a trusted source, then `hourglass firmware pin {path} --board "
            f"{board.name}` or pass SHA256=.")
    if actual != expected:
        raise UserError(
            f"{board.name}: {path} has sha256 {actual}, but {expected} is pinned: refusing to write it.")
    return actual


# ---------------------------------------------------------------------------------------------- UF2 / hex

def uf2_blocks(chunks: list[tuple[int, bytes]], family: int) -> bytes:
    """Encode (address, data) runs as UF2 blocks: 256-byte payloads at 256-aligned addresses (what UF2
    bootloaders write page by page), bytes the runs leave out of a block padded with 0xFF (erased flash)."""
    blocks: dict[int, bytearray] = {}
    for addr, data in chunks:
        pos = 0
        while pos < len(data):
            base = (addr + pos) // UF2_PAYLOAD * UF2_PAYLOAD
            start = addr + pos - base
            take = min(UF2_PAYLOAD - start, len(data) - pos)
            block = blocks.setdefault(base, bytearray(b"\xff" * UF2_PAYLOAD))
            block[start:start + take] = data[pos:pos + take]
            pos += take
    out = bytearray()
    total = len(blocks)
    for n, addr in enumerate(sorted(blocks)):
        header = UF2_HEADER.pack(UF2_MAGIC_START0, UF2_MAGIC_START1, UF2_FLAG_FAMILY_ID, addr, UF2_PAYLOAD, n,
                                 total, family)
        block = header + bytes(blocks[addr]) + bytes(476 - UF2_PAYLOAD) + struct.pack("<I", UF2_MAGIC_END)
        assert len(block) == UF2_BLOCK
        out += block
    return bytes(out)


def parse_uf2(data: bytes, family: int | None = None) -> list[tuple[int, bytes]]:
    """Main-flash (address, payload) pairs of a UF2 file; raises UserError on malformed blocks."""
    if len(data) % UF2_BLOCK:
        raise UserError(f"UF2 file length {len(data)} is not a multiple of {UF2_BLOCK}")
    chunks = []
    for i in range(0, len(data), UF2_BLOCK):
        block = data[i:i + UF2_BLOCK]
        m0, m1, flags, addr, size, _n, _total, fam = UF2_HEADER.unpack_from(block)
        (m_end,) = struct.unpack_from("<I", block, UF2_BLOCK - 4)
        if (m0, m1, m_end) != (UF2_MAGIC_START0, UF2_MAGIC_START1, UF2_MAGIC_END) or size > 476:
            raise UserError(f"UF2 block {i // UF2_BLOCK} is malformed")
        if flags & UF2_FLAG_NOT_MAIN_FLASH:
            continue
        if family is not None and flags & UF2_FLAG_FAMILY_ID and fam != family:
            raise UserError(f"UF2 block {i // UF2_BLOCK} is for family {fam:#x}, not {family:#x}")
        chunks.append((addr, bytes(block[32:32 + size])))
    return chunks


def firmware_chunks(path: Path, board: Board) -> list[tuple[int, bytes]]:
    """The firmware's (address, data) runs: .hex via intelhex, .uf2 parsed, .bin at the board's firmware offset."""
    suffix = path.suffix.lower()
    if suffix == ".hex":
        from intelhex import HexReaderError, IntelHex

        try:
            ih = IntelHex(str(path))
        except (HexReaderError, UnicodeDecodeError) as exc:
            raise UserError(f"{path} is not an Intel HEX file: {exc}") from exc
        return [(start, ih.tobinstr(start=start, end=end - 1)) for start, end in ih.segments()]
    if suffix == ".uf2":
        return parse_uf2(path.read_bytes(), board.uf2_family or None)
    return [(board.firmware_offset, path.read_bytes())]


def check_firmware_layout(board: Board, chunks: list[tuple[int, bytes]]) -> None:
    """Refuse a firmware that writes into the filesystem or ROMFS region: board.toml's layout would then be
    wrong for it, and our images would overwrite its code (or it would overwrite them)."""
    regions = [("filesystem", board.fs_offset, board.fs_offset + board.fs_size)]
    regions += [("ROMFS", p.offset, p.end) for p in board.partitions if p.name == "romfs"]
    for addr, data in chunks:
        for what, start, end in regions:
            if addr < end and addr + len(data) > start:
                raise UserError(
                    f"{board.name}: the firmware has data at {addr:#x}..{addr + len(data):#x}, inside the {what} "
                    f"region {start:#x}..{end:#x} of boards/{board.name}/board.toml: the layout there does not "
                    "match this firmware; refusing to write it.")
        if addr + len(data) > board.flash_size:
            raise UserError(f"{board.name}: the firmware runs past the end of flash ({board.flash_size:#x})")


def check_firmware_file(board: Board, path: Path) -> list[tuple[int, bytes]]:
    """What can be told from the file alone: its kind (extension, ESP image magic) and that it fits the board's
    firmware region. Returns its (address, data) runs."""
    expected_ext = Path(board.firmware_name).suffix.lower()
    if path.suffix.lower() != expected_ext:
        raise UserError(f"{board.name}: {path.name} is not a {expected_ext} file, as {board.name}'s firmware is "
                        f"({board.firmware_name})")
    chunks = firmware_chunks(path, board)
    if not chunks or not any(data for _, data in chunks):
        raise UserError(f"{board.name}: {path} holds no data")
    if board.port == "esp32" and chunks[0][1][0] != ESP_IMAGE_MAGIC:
        raise UserError(f"{board.name}: {path} does not start with an ESP image header (0x{ESP_IMAGE_MAGIC:02X}): "
                        "not an ESP32 firmware .bin")
    check_firmware_layout(board, chunks)
    return chunks


# ---------------------------------------------------------------------------------------------- planning

@dataclass
class Context:
    """One flash or image run: the board (at the flash size it was built for), its build and the firmware."""
    board: Board
    layout: BuildLayout
    firmware: Path
    port: str = ""
    drive: str = ""
    sha256: str | None = None
    probe_timeout: float = PROBE_TIMEOUT
    # Refusals found while the context was put together (e.g. no firmware file): reported with the others.
    found: list[str] = field(default_factory=list)

    @property
    def image(self) -> Path:
        ext = {"esptool": ".bin", "uf2": ".uf2"}.get(self.board.flasher_method, ".hex")
        return self.layout.image(ext)

    def image_contents(self) -> str:
        parts = [self.firmware.name, f"fs.img at {self.board.fs_offset:#x}"]
        romfs = self.romfs_partition()
        if romfs:
            parts.append(f"romfs.img at {romfs.offset:#x}")
        return " + ".join(parts)

    def romfs_partition(self) -> Partition | None:
        """The ROMFS partition our own images carry romfs.img in (boards whose lib/ lives there)."""
        if self.board.lib_storage != "romfs":
            return None
        return next((p for p in self.board.partitions if p.name == "romfs"), None)

    def fs_entries(self) -> list[str]:
        fs_dir = self.layout.fs_dir
        return [str(p) for p in sorted(fs_dir.iterdir())] if fs_dir.is_dir() else [str(fs_dir)]

    def substitute(self, template: tuple[str, ...]) -> list[str] | None:
        """The argv for a board.toml command template; None when it would copy an empty fs/ tree. A missing
        port or drive shows as <PORT>/<DRIVE> (only a dry run gets that far without them)."""
        values = {
            "port": self.port or MISSING["port"], "drive": self.drive or MISSING["drive"],
            "firmware": str(self.firmware), "fs_image": str(self.layout.fs_image),
            "romfs_image": str(self.layout.romfs_image), "image": str(self.image),
            "dfu_package": str(self.layout.dfu_package), "firmware_offset": f"{self.board.firmware_offset:#x}",
            "fs_offset": f"{self.board.fs_offset:#x}",
        }
        argv: list[str] = []
        for arg in template:
            if arg == "{fs_entries}":
                entries = self.fs_entries()
                if not entries:
                    return None
                argv.extend(entries)
                continue
            try:
                argv.append(arg.format(**values))
            except KeyError as exc:
                raise UserError(f"{self.board.name}: unknown placeholder {exc} in board.toml [flasher]") from exc
        return argv


def needed(board: Board, name: str) -> bool:
    """Whether the board's flash commands take {name} (port, drive)."""
    return any(f"{{{name}}}" in arg for command in board.flash_commands for arg in command)


def refusals(ctx: Context, action: str) -> list[str]:
    """Every reason the real run would refuse to write, in the order a user would fix them. Empty: go."""
    board, found = ctx.board, []
    if action == "flash":
        for name in ("port", "drive"):
            if needed(board, name) and not getattr(ctx, name):
                found.append(f"{board.name} needs --{name}" + (" (PORT=)" if name == "port" else " (DRIVE=)"))
        if needed(board, "port") and ctx.port.startswith("/dev/") and not os.path.exists(ctx.port):
            from hourglass.boards import serial_ports

            present = ", ".join(line.split()[0] for line in serial_ports()) or "none"
            found.append(f"serial port {ctx.port} does not exist (serial ports present: {present})")
        if needed(board, "drive") and ctx.drive:
            drive = Path(ctx.drive)
            if not drive.is_dir():
                found.append(f"--drive {ctx.drive} is not a mounted folder")
            elif not (drive / UF2_INFO_FILE).is_file():
                found.append(f"--drive {ctx.drive} is not a UF2 bootloader drive (it has no {UF2_INFO_FILE}): "
                             "double-tap RESET and give the drive that appears")
    found += ctx.found
    if ctx.firmware.is_file():
        # A file of the wrong kind or size is the refusal to report; its hash would not match either.
        try:
            check_firmware_file(board, ctx.firmware)
            verify_firmware(board, ctx.firmware, ctx.sha256)
        except UserError as exc:
            found.append(str(exc))
    found += build_refusals(ctx)
    steps = plan_flash(ctx) if action == "flash" else plan_image(ctx)
    for tool in sorted({s.argv[0] for s in steps if s.argv}):
        try:
            find_executable(tool, NRFUTIL_HINT if tool == "nrfutil" else None)
        except UserError as exc:
            found.append(str(exc))
    return found


def build_refusals(ctx: Context) -> list[str]:
    """The build must be there, for this board and at the flash size the board is flashed with."""
    board, layout = ctx.board, ctx.layout
    if not layout.fs_image.is_file():
        return [f"{layout.fs_image} is missing: run `make build BOARD={board.name}` first"]
    found = []
    if layout.fs_image.stat().st_size != board.fs_size:
        found.append(f"{layout.fs_image} is {layout.fs_image.stat().st_size} bytes, but {board.name}'s filesystem "
                     f"is {board.fs_size}: rebuild it (`make build BOARD={board.name}`)")
    if ctx.romfs_partition() and not layout.romfs_image.is_file():
        found.append(f"{layout.romfs_image} is missing: run `make build BOARD={board.name}` first")
    return found


def built_flash_size(layout: BuildLayout) -> int | None:
    """The flash size `hourglass build` sized fs.img for (report.json), if the build says."""
    try:
        return int(json.loads(layout.report.read_text())["flash_size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _image_step(ctx: Context) -> Step:
    board = ctx.board

    def run() -> None:
        chunks = check_firmware_file(board, ctx.firmware)
        chunks.append((board.fs_offset, ctx.layout.fs_image.read_bytes()))
        romfs = ctx.romfs_partition()
        if romfs:
            data = ctx.layout.romfs_image.read_bytes()
            if len(data) > romfs.size:
                raise UserError(f"{ctx.layout.romfs_image} is {len(data)} bytes, larger than the {romfs.size}-byte "
                                "ROMFS partition")
            chunks.append((romfs.offset, data))
        if board.flasher_method == "uf2":
            ctx.image.write_bytes(uf2_blocks(chunks, board.uf2_family))
        else:
            from intelhex import IntelHex

            merged = IntelHex()
            for addr, data in chunks:
                merged.frombytes(data, offset=addr)
            merged.write_hex_file(str(ctx.image))
        print(f"hourglass: wrote {ctx.image} ({ctx.image.stat().st_size} bytes)")

    kind = f"UF2 (family {board.uf2_family:#x})" if board.flasher_method == "uf2" else "Intel HEX"
    return Step(f"write {ctx.image}: {kind} of {ctx.image_contents()}", run=run)


def _probe_step(ctx: Context) -> Step:
    def run() -> None:
        wait_for_probe(ctx.probe_timeout)

    return Step(f"wait up to {ctx.probe_timeout:g} s for a debug probe (pyOCD then runs with --no-wait)", run=run)


def wait_for_probe(timeout: float) -> None:
    """Poll for a connected debug probe; UserError after `timeout` seconds rather than pyOCD's endless wait."""
    from pyocd.core.helpers import ConnectHelper

    deadline = time.monotonic() + timeout
    while not ConnectHelper.get_all_connected_probes(blocking=False):
        if time.monotonic() >= deadline:
            raise UserError(f"no debug probe found within {timeout:g} s: connect the board's debug USB port "
                            "(J-Link OB / CMSIS-DAP), or give --probe-timeout")
        time.sleep(0.5)


def plan_image(ctx: Context) -> list[Step]:
    if ctx.board.image_commands:
        return [Step("merge", argv=argv) for c in ctx.board.image_commands if (argv := ctx.substitute(c)) is not None]
    return [_image_step(ctx)]


def plan_flash(ctx: Context) -> list[Step]:
    steps = []
    if needed(ctx.board, "image"):
        steps += plan_image(ctx)
    if ctx.board.flasher_method == "pyocd":
        steps.append(_probe_step(ctx))
    steps += [Step("flash", argv=argv) for c in ctx.board.flash_commands if (argv := ctx.substitute(c)) is not None]
    return steps


def execute(steps: list[Step], dry_run: bool) -> int:
    for step in steps:
        print(step.describe())
    if dry_run:
        return 0
    for step in steps:
        if step.run is not None:
            step.run()
            continue
        assert step.argv is not None
        hint = NRFUTIL_HINT if step.argv[0] == "nrfutil" else None
        argv = [find_executable(step.argv[0], hint), *step.argv[1:]]
        print(f"hourglass: running {shlex.join(step.argv)}", flush=True)
        if step.argv[0] == "mpremote":
            _wait_for_port(argv)
        proc = subprocess.run(argv)
        if proc.returncode:
            raise UserError(f"{step.argv[0]} exited with {proc.returncode}")
    return 0


def _wait_for_port(argv: list[str], timeout: float = 20.0) -> None:
    """After a DFU/UF2/probe write the board re-enumerates: give its serial port time to come back."""
    port = argv[argv.index("connect") + 1] if "connect" in argv else ""
    if not port.startswith("/dev/"):
        return
    deadline = time.monotonic() + timeout
    while not os.path.exists(port) and time.monotonic() < deadline:
        time.sleep(0.5)


# ---------------------------------------------------------------------------------------------- firmware pin

def published_name_pattern(board: Board) -> re.Pattern[str]:
    """micropython.org's file names: BOARD-YYYYMMDD-vX.Y.Z.ext (the date stamp is the build's)."""
    ext = re.escape(Path(board.firmware_name).suffix)
    return re.compile(rf"{re.escape(board.name)}-\d{{8}}-v{re.escape(board.mp_version)}{ext}")


def pin_firmware(board: Board, path: Path) -> str:
    """Check `path` against `board` (published name, kind, size within the firmware region) and write its
    name and sha256 into the board's board.toml. Returns the digest."""
    if not path.is_file():
        raise UserError(f"firmware file {path} does not exist")
    if not published_name_pattern(board).fullmatch(path.name):
        raise UserError(f"{path.name} is not a MicroPython {board.mp_version} firmware file for {board.name}: "
                        f"its published name is {board.name}-YYYYMMDD-v{board.mp_version}"
                        f"{Path(board.firmware_name).suffix} (e.g. {board.firmware_name})")
    check_firmware_file(board, path)
    digest = sha256_file(path)
    toml = board.folder / "board.toml"
    text = toml.read_text()
    start = text.index("[micropython]")
    end = text.find("\n[", start + 1)
    end = len(text) if end < 0 else end + 1
    table = text[start:end]
    table = re.sub(r'(?m)^firmware = ".*"$', f'firmware = "{path.name}"', table, count=1)
    note = (f"# Pinned with `hourglass firmware pin` from {path.name} ({path.stat().st_size} bytes): check it "
            "against a trusted source before you pin.\n")
    table = re.sub(r'(?m)^(#.*\n)*sha256 = ".*"$', note + f'sha256 = "{digest}"', table, count=1)
    toml.write_text(text[:start] + table + text[end:])
    pinned = load_board(board.name, board.folder.parent)
    assert (pinned.firmware_name, pinned.firmware_sha256) == (path.name, digest)
    return digest


# ---------------------------------------------------------------------------------------------- CLI

def _context(args: argparse.Namespace, board: Board) -> Context:
    layout = BuildLayout(board.name, args.build_dir) if args.build_dir else BuildLayout(board.name)
    size = built_flash_size(layout)
    if size and size != board.flash_size:
        board = board.with_flash_size(size)
    found = []
    try:
        firmware = find_firmware(board, args.firmware)
    except UserError as exc:
        found.append(str(exc))
        firmware = (args.firmware if args.firmware and not args.firmware.is_dir()
                    else firmware_search_dirs(args.firmware)[0] / board.firmware_name)
    return Context(board, layout, firmware, port=getattr(args, "port", "") or "",
                   drive=getattr(args, "drive", "") or "", sha256=args.sha256,
                   probe_timeout=getattr(args, "probe_timeout", PROBE_TIMEOUT), found=found)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--board", "-b", default=os.environ.get("BOARD"), help="board folder name under boards/")
    p.add_argument("--firmware", type=Path, default=None,
                   help=f"MicroPython firmware file, or a folder holding it (default: ${FIRMWARE_DIR_ENV}, "
                        f"then {DEFAULT_FIRMWARE_CACHE})")
    p.add_argument("--sha256", default=None, help="pin for the firmware file when board.toml has none")
    p.add_argument("--build-dir", type=Path, default=None, help="the board's build folder (default build/<board>)")
    p.add_argument("--dry-run", "-n", action="store_true",
                   help="report refusals and print the exact tool invocations; run nothing (exit 1 if refused)")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("flash", help="write MicroPython and the bundle's filesystem to a board",
                              description=__doc__)
    _common(p)
    p.add_argument("--port", "-p", default=os.environ.get("PORT"), help="serial port (e.g. /dev/ttyUSB0)")
    p.add_argument("--drive", default=os.environ.get("DRIVE"),
                   help="mounted UF2 bootloader drive (UF2 boards, e.g. /media/$USER/XIAO-SENSE)")
    p.add_argument("--probe-timeout", type=float, default=PROBE_TIMEOUT,
                   help=f"seconds to wait for a debug probe (pyOCD boards, default {PROBE_TIMEOUT:g})")
    p.set_defaults(func=main_flash)
    q = subparsers.add_parser("image", help="one flashable image of MicroPython + the bundle (ESP32: merge-bin)",
                              description=__doc__)
    _common(q)
    q.set_defaults(func=main_image)
    f = subparsers.add_parser("firmware", help="manage the local MicroPython firmware files (pin)",
                              description="`hourglass firmware pin FILE --board B`: check a downloaded firmware "
                                          "file against the board (published name, kind, size) and write its "
                                          "name and sha256 into boards/B/board.toml.")
    actions = f.add_subparsers(dest="firmware_command", metavar="ACTION", required=True)
    pin = actions.add_parser("pin", help="pin FILE's sha256 in the board's board.toml")
    pin.add_argument("file", type=Path)
    pin.add_argument("--board", "-b", default=os.environ.get("BOARD"), help="board folder name under boards/")
    pin.set_defaults(func=main_pin)


def _board(args: argparse.Namespace) -> Board:
    if not args.board:
        raise UserError(f"give --board NAME (boards: {', '.join(board_names())})")
    return load_board(args.board)


def _run(args: argparse.Namespace, action: str) -> int:
    ctx = _context(args, _board(args))
    board = ctx.board
    found = refusals(ctx, action)
    for reason in found[:-1] if not args.dry_run else found:
        print(f"hourglass {action}: {'would refuse: ' if args.dry_run else ''}{reason}", file=sys.stderr)
    if found and not args.dry_run:
        raise UserError(found[-1])
    print(f"hourglass {action}: {board.name} ({board.flasher_method}), firmware {ctx.firmware}, "
          f"filesystem {ctx.layout.fs_image} at {board.fs_offset:#x} ({board.fs_block_count} blocks, "
          f"flash {board.flash_size:#x})" + (" -- dry run, nothing is written" if args.dry_run else ""))
    if board.flasher_note:
        print(f"hourglass {action}: note: {board.flasher_note}")
    steps = plan_flash(ctx) if action == "flash" else plan_image(ctx)
    execute(steps, args.dry_run)
    if args.dry_run:
        if found:
            print(f"hourglass {action}: dry run: the real run would refuse ({len(found)} reason"
                  f"{'s' if len(found) > 1 else ''} above)", file=sys.stderr)
        return 1 if found else 0
    if action == "image" and board.flasher_method == "esptool":
        print(f"hourglass image: flash it with: esptool --chip {board.chip} --port PORT write-flash 0x0 {ctx.image}")
    return 0


def main_flash(args: argparse.Namespace) -> int:
    return _run(args, "flash")


def main_image(args: argparse.Namespace) -> int:
    return _run(args, "image")


def main_pin(args: argparse.Namespace) -> int:
    board = _board(args)
    digest = pin_firmware(board, args.file)
    print(f"hourglass firmware: pinned {args.file.name} (sha256 {digest}) in {board.folder / 'board.toml'}")
    return 0
