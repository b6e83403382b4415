"""Hardware in the loop: the on-device test cases (host_tests/device/case_*.py) on a board, through mpremote.

`pytest --board-port PORT --board NAME` (host_tests/conftest.py) runs each case file as one batch on the board:

    mpremote connect PORT mount <repo> exec "<sys.path setup>; hgrunner.main([case, tests...])"

mpremote soft-resets the board first (fresh heap for every case file) and mounts the repository at /remote.
The case files, hgtest/hgrunner and lib/ are compiled to .mpy on the host first (build/hil/), and the board
imports them from the mount and reads vectors from host_tests/vectors (its working directory is the repo).
hgrunner prints one framed record per test (result, time, heap), parsed by mpvm.parse_results().
`--board-lib build` imports the board's compiled bundle (fs/lib or romfs/lib of its common.BuildLayout, from
`hourglass build`) instead of lib/ sources. Board facts (the heap a case file's
MP_HEAP is compared with) come from boards.Board. Before each batch the board is brought to its prompt
(repl.take_over), so an app that owns the console cannot make the run hang.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hourglass import boards, mpvm, repl
from hourglass.common import BuildLayout, UserError, find_executable

REPO = mpvm.REPO
MOUNT = "/remote"  # where mpremote mounts the host directory
STAGE = REPO / "build" / "hil"  # compiled case files and lib/ for the board
DEFAULT_TIMEOUT = 300.0  # seconds per case file batch (pytest --board-timeout)


@dataclass(frozen=True)
class BoardTarget:
    port: str
    board: boards.Board
    lib: str = "source"  # source | build
    resume: bool = False
    timeout: float = DEFAULT_TIMEOUT

    @property
    def name(self) -> str:
        return self.board.name

    @property
    def vm_heap(self) -> int:
        """The board's heap in MicroPython-VM bytes (Board.vm_heap): what a case file's MP_HEAP compares with."""
        return mpvm.heap_bytes(self.board.vm_heap)


def target(port: str, name: str, lib: str = "source", resume: bool = False,
           timeout: float = DEFAULT_TIMEOUT) -> BoardTarget:
    if not port:
        raise UserError("no board port: pass --board-port PORT (a serial port, or a vboard pty)")
    try:
        board = boards.load_board(name)
    except boards.BoardError as e:
        raise UserError(str(e)) from None
    return BoardTarget(port, board, lib, resume, timeout)


def _remote(path: Path) -> str:
    path = Path(path).resolve()
    if not path.is_relative_to(REPO):
        raise UserError(f"{path} is outside the repository mounted on the board ({REPO})")
    rel = path.relative_to(REPO).as_posix()
    return MOUNT if rel == "." else f"{MOUNT}/{rel}"


def _stage_tree(src_root: Path, dest_root: Path) -> None:
    """Compile every .py under src_root to .mpy under dest_root (bytecode only, so the same files load on any
    board and on the VM); a file mpy-cross rejects (e.g. @viper without -march) is staged as source. A staged
    file carries its source's mtime, so any change (a checkout back to an older file too) recompiles it;
    staged files whose source is gone are removed."""
    wanted = set()
    for src in sorted(src_root.rglob("*.py")):
        rel = src.relative_to(src_root)
        if any(part.startswith((".", "__pycache__")) for part in rel.parts) or rel.name == "manifest.py":
            continue
        mpy = dest_root / rel.with_suffix(".mpy")
        py = dest_root / rel
        wanted.update((mpy, py))
        mtime = src.stat().st_mtime_ns
        if any(p.exists() and p.stat().st_mtime_ns == mtime for p in (mpy, py)):
            continue
        mpy.parent.mkdir(parents=True, exist_ok=True)
        tmp = mpy.with_name(mpy.name + ".tmp")
        proc = subprocess.run([find_executable("mpy-cross"), "-o", str(tmp), "-s", rel.as_posix(), str(src)],
                              capture_output=True)
        if proc.returncode == 0:
            out, other = mpy, py
        else:
            shutil.copyfile(src, tmp)
            out, other = py, mpy
        os.utime(tmp, ns=(mtime, mtime))
        os.replace(tmp, out)  # never a half-written file on the mount
        other.unlink(missing_ok=True)
    for p in dest_root.rglob("*"):
        if p.is_file() and p not in wanted:
            p.unlink()


def stage(t: BoardTarget, case_dir: Path = mpvm.DEVICE_TESTS) -> list[str]:
    """Compile the case files, hgtest/hgrunner and (with lib="source") lib/ into build/hil/ and return the
    board's sys.path entries for them. Compiling on the host spares the board's heap: a 56 KiB ESP32 cannot
    compile the larger case files from source."""
    case_dir = Path(case_dir).resolve()
    paths = []
    for d in dict.fromkeys([case_dir, mpvm.DEVICE_TESTS]):
        dest = STAGE / d.relative_to(REPO)
        _stage_tree(d, dest)
        paths.append(_remote(dest))
    if t.lib == "build":
        layout = BuildLayout(t.name)
        libs = [d / "lib" for d in (layout.fs_dir, layout.romfs_dir) if (d / "lib").is_dir()]
        if not libs:
            raise UserError(f"no build for {t.name} in {layout.root}: run `make build BOARD={t.name}` first")
        paths += [_remote(d) for d in libs]
    else:
        for pkg in mpvm.lib_package_dirs():
            dest = STAGE / "lib" / pkg.name
            _stage_tree(pkg, dest)
            paths.append(_remote(dest))
    return paths


def runner_code(t: BoardTarget, module: str, names: list[str], case_dir: Path = mpvm.DEVICE_TESTS) -> str:
    return (f"import sys\nsys.path[:0] = {stage(t, case_dir)!r}\n"
            f"import hgrunner\nhgrunner.main({[module, *names]!r})\n")


def command(t: BoardTarget, module: str, names: list[str], case_dir: Path = mpvm.DEVICE_TESTS) -> list[str]:
    cmd = [find_executable("mpremote"), "connect", t.port]
    if t.resume:
        cmd.append("resume")
    return cmd + ["mount", str(REPO), "exec", runner_code(t, module, names, case_dir)]


def run_cases(t: BoardTarget, module: str, names: list[str], timeout: float = DEFAULT_TIMEOUT,
              case_dir: Path = mpvm.DEVICE_TESTS) -> tuple[dict[str, mpvm.CaseResult], subprocess.CompletedProcess]:
    """Same contract as mpvm.run_cases(), on a board. The board is brought to its prompt first (an app that
    owns the console, such as the nRF serial CoAP app, is stopped one Ctrl-C at a time); a board that shows no
    prompt gives no results and stderr says why. A batch that outlives `timeout` keeps the results of the
    tests that finished; the rest have none, and stderr says why."""
    cmd = command(t, module, names, case_dir)
    try:
        repl.take_over(t.port, min(timeout, repl.TAKE_OVER_TIMEOUT))
    except UserError as e:
        return {}, subprocess.CompletedProcess(cmd, None, b"", f"hourglass hil: {e}".encode())
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        proc = subprocess.CompletedProcess(cmd, None, e.stdout or b"",
                                           (e.stderr or b"") + f"\ntimed out after {timeout:g} s".encode())
    return mpvm.parse_results(proc.stdout.decode("utf-8", "replace")), proc
