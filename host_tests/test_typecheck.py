"""Type-check device code (lib/, firmware/) against each board family's MicroPython stubs with mypy.

The stubs (micropython-esp32-stubs, micropython-nrf-stubs, pinned in boards/stubs-*.txt and installed by
`make setup` into .venv/stubs/<family>) replace CPython's standard library (--custom-typeshed-dir), so a module,
function or method the board firmware lacks is a mypy error. boards/mypy.ini keeps only the error codes that
speak about that (unknown module / attribute / name, wrong call arity) and this test keeps the ones that are:
  * about the board API: a module attribute, an import, or a type the stubs define (socket, ...);
  * not guarded: device code runs on CPython too, so `try: <MicroPython API> except (ImportError,
    AttributeError): <CPython fallback>` is the sanctioned pattern, and both sides of such a try are skipped,
    as are the CPython side of `if _IS_MICROPYTHON:` and imports inside functions (callers gate those).
What is left is a call that would fail on the board. Findings already reported to the code's owners are listed
in boards/typecheck-known.txt (file, error text; no line numbers) and do not fail the test.
"""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

from hourglass import build as hbuild
from hourglass.boards import REPO, all_boards

STUBS_ROOT = REPO / ".venv" / "stubs"
CONFIG = REPO / "boards" / "mypy.ini"
KNOWN = REPO / "boards" / "typecheck-known.txt"
FAMILIES = ("esp32", "nrf")
ALWAYS_RELEVANT = {"import-not-found", "import-untyped", "name-defined"}
GUARD_EXCEPTIONS = {"ImportError", "ModuleNotFoundError", "AttributeError", "NameError", "Exception",
                    "BaseException"}
# attr-defined speaks about the type in front: `"Pin" has no attribute "x"`, and `"type[Pin]" has no attribute
# "x"` for an attribute of the class itself (machine.Pin.x()).
MISSING_ATTRIBUTE = re.compile(r'^"(?:type\[)?(?P<owner>\w+)\]?" has no attribute ')
LINE = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): error: (?P<msg>.*?)\s+\[(?P<code>[a-z-]+)\]$")


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    code: str
    message: str

    def key(self) -> str:
        return f"{self.path}: {self.message}"

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message} [{self.code}]"


def stubs_dir(family: str) -> Path:
    d = STUBS_ROOT / family
    assert (d / "machine.pyi").is_file(), (
        f"{d} has no board stubs: run `make setup` (pip install --target {d} -r boards/stubs-{family}.txt)")
    return d


def stub_names(stubs: Path) -> set[str]:
    """Classes and functions the stubs define: a missing attribute on one of these is a board API error."""
    names: set[str] = set()
    pattern = re.compile(r"^\s*(?:class|def)\s+(\w+)", re.M)
    for pyi in stubs.rglob("*.pyi"):
        names.update(pattern.findall(pyi.read_text(errors="replace")))
    return names


def _span(nodes: list[ast.stmt]) -> set[int]:
    lines: set[int] = set()
    for n in nodes:
        lines.update(range(n.lineno, (n.end_lineno or n.lineno) + 1))
    return lines


def _interpreter_test(test: ast.expr) -> bool | None:
    """True for a test meaning "on MicroPython", False for "on CPython", None for anything else."""
    negated = isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)
    inner = test.operand if negated else test
    text = ast.unparse(inner).lower()
    if "micropython" in text or "implementation" in text:
        on_mp = "!=" not in text and "cpython" not in text
        return on_mp != negated
    return None


def cpython_side_lines(tree: ast.AST) -> set[int]:
    """Lines that only run on CPython: the other side of `if IS_MICROPYTHON:` / `if sys.implementation...`,
    including the statements after a MicroPython branch that always returns."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody", "handlers"):
            block = getattr(node, field, None)
            if not isinstance(block, list):
                continue
            for i, stmt in enumerate(block):
                if not isinstance(stmt, ast.If):
                    continue
                side = _interpreter_test(stmt.test)
                if side is None:
                    continue
                mp_branch, cp_branch = (stmt.body, stmt.orelse) if side else (stmt.orelse, stmt.body)
                lines |= _span(cp_branch)
                if mp_branch and isinstance(mp_branch[-1], (ast.Return, ast.Raise)):
                    lines |= _span(block[i + 1:])
    return lines


def guarded_lines(path: Path) -> set[int]:
    """Lines inside a try that handles ImportError/AttributeError (or broader): runtime-probed API use; and
    lines that run on CPython only."""
    try:
        tree = ast.parse(path.read_text())
    except (SyntaxError, OSError):
        return set()
    lines: set[int] = cpython_side_lines(tree)
    # A function-level (lazy) import fails only when that function runs, and its callers gate it on the
    # feature (e.g. `if _has("socket")`); a module-level import of a missing module breaks the whole module.
    for func in ast.walk(tree):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(func):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        caught: set[str] = set()
        for handler in node.handlers:
            if handler.type is None:
                caught.add("BaseException")
            for t in (handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]):
                if isinstance(t, ast.Name):
                    caught.add(t.id)
        if caught & GUARD_EXCEPTIONS:
            for part in [*node.body, *[h for h in node.handlers]]:
                lines.update(range(part.lineno, (part.end_lineno or part.lineno) + 1))
    return lines


def run_mypy(family: str, modules: list[str], roots: list[Path], cwd: Path = REPO) -> list[Finding]:
    stubs = stubs_dir(family)
    env = dict(os.environ, MYPYPATH=os.pathsep.join([str(stubs), *map(str, roots)]))
    # No cache: several developers and xdist workers run this at once in one tree.
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(CONFIG), "--custom-typeshed-dir", str(stubs),
           "--cache-dir", os.devnull, "--no-error-summary"]
    for m in modules:
        cmd += ["-m", m]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode not in (0, 1) or "errors prevented further checking" in proc.stdout:
        raise AssertionError(f"mypy did not run: {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    findings = []
    for line in proc.stdout.splitlines():
        m = LINE.match(line.strip())
        if m:
            path = Path(m["path"])
            rel = (cwd / path).resolve()
            shown = rel.relative_to(REPO).as_posix() if rel.is_relative_to(REPO) else path.as_posix()
            findings.append(Finding(shown, int(m["line"]), m["code"], m["msg"]))
    return findings


def api_owner(message: str) -> str | None:
    """The class or function an attr-defined/call-arg message is about: the type missing the attribute, or the
    callee of a wrong call (`Too many arguments for "reset_cause"`, the last quoted name)."""
    missing = MISSING_ATTRIBUTE.match(message)
    if missing:
        return missing["owner"]
    quoted = re.findall(r'"(\w+)"', message)
    return quoted[-1] if quoted else None


def board_api_errors(findings: list[Finding], family: str, base: Path = REPO) -> list[Finding]:
    names = stub_names(stubs_dir(family))
    guards: dict[str, set[int]] = {}
    errors = []
    for f in findings:
        if f.code in ALWAYS_RELEVANT:
            relevant = True
        elif f.code in ("attr-defined", "call-arg"):
            relevant = f.message.startswith("Module") or api_owner(f.message) in names
        else:
            relevant = False
        if not relevant:
            continue
        if f.path not in guards:
            guards[f.path] = guarded_lines(base / f.path)
        if f.line not in guards[f.path]:
            errors.append(f)
    return errors


def device_modules(family: str, lib_dir: Path = hbuild.LIB, firmware_dir: Path = hbuild.FIRMWARE) \
        -> tuple[list[str], list[Path], set[str]]:
    """The modules the family's boards carry (their build excludes applied), the import roots, and the
    repo-relative files of those modules (mypy also reports on modules they import, e.g. excluded ones)."""
    boards = [b for b in all_boards() if b.stubs == family]
    assert boards, f"no board uses the {family} stubs"
    modules, files = set(), set()
    for src in hbuild.collect_sources(lib_dir, firmware_dir):
        if any(hbuild.excluded_reason(b, src) is None for b in boards):
            modules.add(src.module)
            files.add(src.path.resolve().relative_to(REPO).as_posix())
    roots = [p for p in sorted(lib_dir.iterdir()) if p.is_dir() and not p.name.startswith((".", "_"))]
    if firmware_dir.is_dir():
        roots.append(firmware_dir)
    return sorted(modules), roots, files


def known_findings() -> set[str]:
    if not KNOWN.is_file():
        return set()
    return {line.strip() for line in KNOWN.read_text().splitlines() if line.strip() and not line.startswith("#")}


@pytest.mark.parametrize("family", FAMILIES)
def test_device_code_uses_only_the_board_api(family):
    modules, roots, files = device_modules(family)
    assert modules, "no device modules found under lib/ and firmware/"
    errors = [e for e in board_api_errors(run_mypy(family, modules, roots), family) if e.path in files]
    known = known_findings()
    new = [e for e in errors if f"{family} {e.key()}" not in known]
    seen = {f"{family} {e.key()}" for e in errors}
    stale = sorted(k for k in known if k.startswith(family + " ") and k not in seen)
    if stale:
        warnings.warn(f"boards/typecheck-known.txt lists findings that no longer occur: {stale}")
    assert not new, (f"device code calls what the {family} firmware lacks (unguarded):\n"
                     + "\n".join(map(str, new)))


def _write_pkg(tmp_path: Path, body: str) -> tuple[list[str], list[Path]]:
    root = tmp_path / "probe"
    root.mkdir()
    (root / "probe_mod.py").write_text(body)
    return ["probe_mod"], [root]


def _errors(tmp_path: Path, family: str, body: str) -> list[Finding]:
    modules, roots = _write_pkg(tmp_path, body)
    findings = run_mypy(family, modules, roots, cwd=tmp_path)
    return board_api_errors(findings, family, base=tmp_path)


@pytest.mark.parametrize("family", FAMILIES)
def test_catches_a_machine_function_the_firmware_lacks(tmp_path, family):
    errors = _errors(tmp_path, family,
                     "import machine\n\n\ndef reboot_later():\n    machine.reset_cause()\n"
                     "    machine.frobnicate(3)\n")
    assert [(e.line, e.code) for e in errors] == [(6, "attr-defined")], errors
    assert "frobnicate" in errors[0].message


@pytest.mark.parametrize("family", FAMILIES)
def test_guarded_fallbacks_are_not_errors(tmp_path, family):
    body = ("try:\n    from time import ticks_ms\nexcept ImportError:\n    import time\n\n"
            "    def ticks_ms():\n        return int(time.monotonic() * 1000)\n\n"
            "try:\n    import cryptolib\nexcept ImportError:\n    cryptolib = None\n")
    assert _errors(tmp_path, family, body) == []


def test_nrf_lacks_cryptolib_socket_and_esp32(tmp_path):
    body = "import cryptolib\nimport socket\nimport esp32\n\n\ndef f():\n    return esp32.Partition\n"
    (tmp_path / "n").mkdir()
    nrf = {(e.line, e.code) for e in _errors(tmp_path / "n", "nrf", body)}
    assert nrf == {(1, "import-not-found"), (2, "import-not-found"), (3, "import-not-found")}
    (tmp_path / "e").mkdir()
    assert _errors(tmp_path / "e", "esp32", body) == []


def test_esp32_catches_a_wrong_method_on_a_board_type(tmp_path):
    body = "import socket\n\n\ndef f():\n    s = socket.socket()\n    return s.getsockname()\n"
    errors = _errors(tmp_path, "esp32", body)
    assert [(e.line, e.code) for e in errors] == [(6, "attr-defined")], errors


def test_interpreter_branches_check_only_the_micropython_side(tmp_path):
    body = ("import sys\nimport asyncio\nimport machine\n"
            "_IS_MICROPYTHON = sys.implementation.name == 'micropython'\n\n\n"
            "def f():\n    if _IS_MICROPYTHON:\n        return machine.frobnicate()\n"
            "    return asyncio.get_running_loop()\n")
    errors = _errors(tmp_path, "esp32", body)
    assert [(e.line, e.code) for e in errors] == [(9, "attr-defined")], errors


def test_inline_interpreter_tests_guard_the_cpython_side(tmp_path):
    body = ("import sys\nimport asyncio\nimport machine\n\n\n"
            "def f():\n    if sys.implementation.name == 'micropython':\n        machine.frobnicate()\n"
            "        return 1\n    return asyncio.get_running_loop()\n\n\n"
            "def g():\n    if sys.implementation.name != 'micropython':\n        return asyncio.get_running_loop()\n"
            "    return machine.frobnicate2()\n")
    errors = _errors(tmp_path, "esp32", body)
    assert sorted((e.line, e.code) for e in errors) == [(8, "attr-defined"), (16, "attr-defined")], errors


def test_lazy_imports_are_left_to_their_callers(tmp_path):
    body = ("import network\n\n\ndef connect():\n    import network as net\n    return net.WLAN(0)\n")
    errors = _errors(tmp_path, "nrf", body)
    assert [(e.line, e.code) for e in errors] == [(1, "import-not-found")], errors


@pytest.mark.parametrize("family", FAMILIES)
def test_catches_a_missing_attribute_of_a_board_class(tmp_path, family):
    """mypy reports `"type[Pin]" has no attribute ...` for an attribute of the class itself: at module level
    and inside a function, both are calls that fail on the board."""
    errors = _errors(tmp_path, family,
                     "import machine\n\nmachine.Pin.nonexistent()\n\n\ndef f():\n    machine.Pin.other()\n"
                     "    return machine.Pin(2).value()\n")
    assert [(e.line, e.code) for e in errors] == [(3, "attr-defined"), (7, "attr-defined")], errors
    assert errors[0].message == '"type[Pin]" has no attribute "nonexistent"'


def test_api_owner_of_mypy_messages():
    assert api_owner('"type[Pin]" has no attribute "nonexistent"') == "Pin"
    assert api_owner('"socket" has no attribute "getsockname"') == "socket"
    assert api_owner('Too many arguments for "reset_cause"') == "reset_cause"
    assert api_owner('Module "machine" has no attribute "frobnicate"') == "frobnicate"
