"""`hourglass flash` and `hourglass image`: write MicroPython and our filesystem image to a board.

The firmware file is never downloaded: it comes from --firmware (a file or a folder), $HOURGLASS_FIRMWARE_DIR, or
~/.cache/hourglass/firmware/, and must match the sha256 pinned in the board's board.toml (or given with
--sha256) before anything is written. Every command first prints its plan; --dry-run prints the exact tool
invocations and runs nothing. The tool invocations themselves come from boards/<NAME>/board.toml ([flasher]).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import shutil
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from hourglass.boards import Board, BoardError, board_names, load_board

FIRMWARE_DIR_ENV = "HOURGLASS_FIRMWARE_DIR"
DEFAULT_FIRMWARE_CACHE = Path("~/.cache/hourglass/firmware")

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


class FlashError(RuntimeError):
    """Refusing to flash: firmware missing, unpinned or not matching its pin, tool missing, layout clash."""


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
            raise FlashError(f"firmware file {explicit} does not exist")
        return explicit
    for d in firmware_search_dirs(explicit):
        candidate = d / board.firmware_name
        if candidate.is_file():
            return candidate
    where = ", ".join(str(d) for d in firmware_search_dirs(explicit))
    raise FlashError(
        f"{board.name}: firmware {board.firmware_name} not found in {where}. Nothing is downloaded: fetch "
        f"MicroPython {board.mp_version} for {board.name} yourself and put it there, or pass FIRMWARE=<file>.")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_firmware(board: Board, path: Path, pin: str | None = None) -> str:
    """Check `path` against the pinned sha256 (board.toml, or an explicit --sha256 pin). Returns the digest."""
    if pin and board.firmware_sha256 and pin.lower() != board.firmware_sha256:
        raise FlashError(f"{board.name}: --sha256 {pin} conflicts with the sha256 pinned in "
                         f"boards/{board.name}/board.toml ({board.firmware_sha256}); the board's pin wins")
    expected = (board.firmware_sha256 or pin or "").lower()
    actual = sha256_file(path)
    if not expected:
        raise FlashError(
            f"{board.name}: no sha256 is pinned for {board.firmware_name} (boards/{board.name}/board.toml "
            f"[micropython] sha256), so {path} cannot be verified and nothing was written. Its sha256 is "
            f"{actual}: check it against a trusted source, then pin it in board.toml or pass --sha256.")
    if actual != expected:
        raise FlashError(
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
    """Main-flash (address, payload) pairs of a UF2 file; raises FlashError on malformed blocks."""
    if len(data) % UF2_BLOCK:
        raise FlashError(f"UF2 file length {len(data)} is not a multiple of {UF2_BLOCK}")
    chunks = []
    for i in range(0, len(data), UF2_BLOCK):
        block = data[i:i + UF2_BLOCK]
        m0, m1, flags, addr, size, _n, _total, fam = UF2_HEADER.unpack_from(block)
        (m_end,) = struct.unpack_from("<I", block, UF2_BLOCK - 4)
        if (m0, m1, m_end) != (UF2_MAGIC_START0, UF2_MAGIC_START1, UF2_MAGIC_END) or size > 476:
            raise FlashError(f"UF2 block {i // UF2_BLOCK} is malformed")
        if flags & UF2_FLAG_NOT_MAIN_FLASH:
            continue
        if family is not None and flags & UF2_FLAG_FAMILY_ID and fam != family:
            raise FlashError(f"UF2 block {i // UF2_BLOCK} is for family {fam:#x}, not {family:#x}")
        chunks.append((addr, bytes(block[32:32 + size])))
    return chunks


def firmware_chunks(path: Path, board: Board) -> list[tuple[int, bytes]]:
    """The firmware's (address, data) runs: .hex via intelhex, .uf2 parsed, .bin at the board's firmware offset."""
    suffix = path.suffix.lower()
    if suffix == ".hex":
        from intelhex import IntelHex

        ih = IntelHex(str(path))
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
                raise FlashError(
                    f"{board.name}: the firmware has data at {addr:#x}..{addr + len(data):#x}, inside the {what} "
                    f"region {start:#x}..{end:#x} of boards/{board.name}/board.toml: the layout there does not "
                    "match this firmware; refusing to write it.")
        if addr + len(data) > board.flash_size:
            raise FlashError(f"{board.name}: the firmware runs past the end of flash ({board.flash_size:#x})")


# ---------------------------------------------------------------------------------------------- planning

@dataclass
class Context:
    board: Board
    build_dir: Path
    firmware: Path
    port: str = ""
    drive: str = ""
    sha256: str | None = None

    @property
    def fs_image(self) -> Path:
        return self.build_dir / "fs.img"

    @property
    def romfs_image(self) -> Path:
        return self.build_dir / "romfs.img"

    @property
    def image(self) -> Path:
        ext = {"esptool": ".bin", "uf2": ".uf2"}.get(self.board.flasher_method, ".hex")
        return self.build_dir / f"{self.board.name}-image{ext}"

    @property
    def dfu_package(self) -> Path:
        return self.build_dir / f"{self.board.name}-dfu.zip"

    def fs_entries(self) -> list[str]:
        fs_dir = self.build_dir / "fs"
        return [str(p) for p in sorted(fs_dir.iterdir())] if fs_dir.is_dir() else [str(fs_dir)]

    def substitute(self, template: tuple[str, ...]) -> list[str] | None:
        """The argv for a board.toml command template; None when it would copy an empty fs/ tree."""
        values = {
            "port": self.port, "drive": self.drive, "firmware": str(self.firmware),
            "fs_image": str(self.fs_image), "romfs_image": str(self.romfs_image), "image": str(self.image),
            "dfu_package": str(self.dfu_package), "firmware_offset": f"{self.board.firmware_offset:#x}",
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
                raise FlashError(f"{self.board.name}: unknown placeholder {exc} in board.toml [flasher]") from exc
        return argv


def _verify_step(ctx: Context) -> Step:
    pin = ctx.sha256 or ctx.board.firmware_sha256 or "(none pinned)"

    def run() -> None:
        digest = verify_firmware(ctx.board, ctx.firmware, ctx.sha256)
        check_firmware_layout(ctx.board, firmware_chunks(ctx.firmware, ctx.board))
        print(f"hourglass: {ctx.firmware.name}: sha256 {digest} matches the pin; layout checked")
        if not ctx.fs_image.is_file():
            raise FlashError(f"{ctx.fs_image} is missing: run `make build BOARD={ctx.board.name}` first")

    return Step(f"verify sha256 of {ctx.firmware} against {pin} and check it leaves the filesystem region "
                f"{ctx.board.fs_offset:#x}+{ctx.board.fs_size:#x} alone", run=run)


def _internal_image_step(ctx: Context) -> Step:
    board = ctx.board

    def run() -> None:
        chunks = firmware_chunks(ctx.firmware, board)
        check_firmware_layout(board, chunks)
        fs = (board.fs_offset, ctx.fs_image.read_bytes())
        if board.flasher_method == "uf2":
            ctx.image.write_bytes(uf2_blocks(chunks + [fs], board.uf2_family))
        else:
            from intelhex import IntelHex

            merged = IntelHex()
            for addr, data in chunks + [fs]:
                merged.frombytes(data, offset=addr)
            merged.write_hex_file(str(ctx.image))
        print(f"hourglass: wrote {ctx.image} ({ctx.image.stat().st_size} bytes)")

    kind = f"UF2 (family {board.uf2_family:#x})" if board.flasher_method == "uf2" else "Intel HEX"
    return Step(f"write {ctx.image}: {kind} of {ctx.firmware.name} plus fs.img at {board.fs_offset:#x}", run=run)


def plan_image(ctx: Context) -> list[Step]:
    steps = [_verify_step(ctx)]
    if ctx.board.image_commands:
        steps += [Step("merge", argv=argv) for c in ctx.board.image_commands
                  if (argv := ctx.substitute(c)) is not None]
    else:
        steps.append(_internal_image_step(ctx))
    return steps


def plan_flash(ctx: Context) -> list[Step]:
    steps = [_verify_step(ctx)]
    if ctx.board.flasher_method == "uf2":
        steps.append(_internal_image_step(ctx))
    steps += [Step("flash", argv=argv) for c in ctx.board.flash_commands if (argv := ctx.substitute(c)) is not None]
    return steps


def resolve_tool(name: str) -> str:
    """Tools from the project venv first (esptool, pyocd, mpremote), then PATH (nrfutil, cp)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        hint = {"nrfutil": " (Nordic nrfutil with `nrfutil install nrf5sdk-tools`)"}.get(name, "")
        raise FlashError(f"tool {name!r} not found on PATH{hint}")
    return found


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
        argv = [resolve_tool(step.argv[0]), *step.argv[1:]]
        print(f"hourglass: running {shlex.join(step.argv)}", flush=True)
        if step.argv[0] == "mpremote":
            _wait_for_port(argv)
        proc = subprocess.run(argv)
        if proc.returncode:
            raise FlashError(f"{step.argv[0]} exited with {proc.returncode}")
    return 0


def _wait_for_port(argv: list[str], timeout: float = 20.0) -> None:
    """After a DFU/UF2/probe write the board re-enumerates: give its serial port time to come back."""
    port = argv[argv.index("connect") + 1] if "connect" in argv else ""
    if not port.startswith("/dev/"):
        return
    deadline = time.monotonic() + timeout
    while not os.path.exists(port) and time.monotonic() < deadline:
        time.sleep(0.5)


# ---------------------------------------------------------------------------------------------- CLI

def _context(args: argparse.Namespace, board: Board) -> Context:
    from hourglass.build import BUILD

    build_dir = args.build_dir or BUILD / board.name
    if args.dry_run:
        # A dry run shows the plan even before the firmware has been put in place.
        try:
            firmware = find_firmware(board, args.firmware)
        except FlashError:
            firmware = (args.firmware if args.firmware and not args.firmware.is_dir()
                        else firmware_search_dirs(args.firmware)[0] / board.firmware_name)
    else:
        firmware = find_firmware(board, args.firmware)
    return Context(board, build_dir, firmware, port=args.port or "", drive=getattr(args, "drive", "") or "",
                   sha256=args.sha256)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--board", "-b", default=os.environ.get("BOARD"), help="board folder name under boards/")
    p.add_argument("--firmware", type=Path, default=None,
                   help=f"MicroPython firmware file, or a folder holding it (default: ${FIRMWARE_DIR_ENV}, "
                        f"then {DEFAULT_FIRMWARE_CACHE})")
    p.add_argument("--sha256", default=None, help="pin for the firmware file when board.toml has none")
    p.add_argument("--build-dir", type=Path, default=None, help="the board's build folder (default build/<board>)")
    p.add_argument("--dry-run", "-n", action="store_true", help="print the exact tool invocations, run nothing")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("flash", help="write MicroPython and the bundle's filesystem to a board",
                              description=__doc__)
    _common(p)
    p.add_argument("--port", "-p", default=os.environ.get("PORT"), help="serial port (e.g. /dev/ttyUSB0)")
    p.add_argument("--drive", default=os.environ.get("DRIVE"),
                   help="mounted UF2 bootloader drive (UF2 boards, e.g. /media/$USER/XIAO-SENSE)")
    p.set_defaults(func=main_flash)
    q = subparsers.add_parser("image", help="one flashable image of MicroPython + the bundle (ESP32: merge-bin)",
                              description=__doc__)
    _common(q)
    q.set_defaults(func=main_image, port="", drive="")


def _run(args: argparse.Namespace, action: str) -> int:
    if not args.board:
        print(f"hourglass {action}: give --board NAME (boards: {', '.join(board_names())})", file=sys.stderr)
        return 2
    try:
        board = load_board(args.board)
        if action == "flash":
            missing = [n for n, v in (("--port", args.port), ("--drive", args.drive))
                       if any(f"{{{n[2:]}}}" in a for c in board.flash_commands for a in c) and not v]
            if missing and not args.dry_run:
                print(f"hourglass flash: {board.name} needs {' and '.join(missing)}", file=sys.stderr)
                return 2
        ctx = _context(args, board)
        steps = plan_flash(ctx) if action == "flash" else plan_image(ctx)
        print(f"hourglass {action}: {board.name} ({board.flasher_method}), firmware {ctx.firmware}, "
              f"filesystem {ctx.fs_image} at {board.fs_offset:#x}"
              + (" -- dry run, nothing is written" if args.dry_run else ""))
        if board.flasher_note:
            print(f"hourglass {action}: note: {board.flasher_note}")
        status = execute(steps, args.dry_run)
        if action == "image" and not args.dry_run and board.flasher_method == "esptool":
            print(f"hourglass image: flash it with: esptool --chip {board.chip} --port PORT write-flash 0x0 {ctx.image}")
        return status
    except (BoardError, FlashError) as exc:
        print(f"hourglass {action}: error: {exc}", file=sys.stderr)
        return 1


def main_flash(args: argparse.Namespace) -> int:
    return _run(args, "flash")


def main_image(args: argparse.Namespace) -> int:
    return _run(args, "image")
