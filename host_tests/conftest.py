"""Dual-runtime harness.

Device test cases live in host_tests/device/case_*.py. They are plain functions named test_* that use only
what MicroPython has. Each case is collected twice, as `name[cpython]` and `name[micropython]`:
- on CPython it runs in-process;
- on MicroPython the whole module runs as one batch in the VM (`-X heapsize=`, default 128k or the module's
  `MP_HEAP = "..."`), and each item reports its own result with the MicroPython traceback.
With `--board-port PORT --board NAME` the cases run instead as `name[board]` on a board (real, or the virtual
board) through mpremote, one batch per case file (tools/hourglass/hil.py); a case file whose MP_HEAP (its budget,
declared by every case file) is larger than the board's heap on the VM scale (boards.Board.vm_heap) is skipped.
"""
from __future__ import annotations

import ast
import importlib
import os
import sys
from collections import Counter

import pytest
from hypothesis import settings

from hourglass import hil, mpvm

# make test runs a seeded sample of every property test (the same examples on every run, so a CI failure
# reproduces); HYPOTHESIS_PROFILE=explore draws new examples each run.
settings.register_profile("seeded", derandomize=True, database=None)
settings.register_profile("explore")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "seeded"))

RUNTIMES = ("cpython", "micropython")
BOARD = "board"  # the runtime of hardware-in-the-loop runs (--board-port)

# CPython imports device code the way the VM does: each lib package folder is an import root.
for _p in reversed(mpvm.device_path([mpvm.DEVICE_TESTS])):
    if _p not in sys.path:
        sys.path.insert(0, _p)


def pytest_addoption(parser):
    group = parser.getgroup("hourglass")
    group.addoption("--runtime", choices=("both",) + RUNTIMES, default="both",
                    help="which runtime runs the device test cases (default: both)")
    group.addoption("--mp-heap", default=None,
                    help="MicroPython VM heap for device cases, e.g. 96k (default: the module's MP_HEAP or 128k)")
    group.addoption("--board-port", default=None, metavar="PORT",
                    help="run the device cases on the board at PORT through mpremote, instead of CPython and the VM")
    group.addoption("--board", default="ESP32_GENERIC", metavar="NAME",
                    help="the board at --board-port (boards/NAME): its heap decides which case files fit")
    group.addoption("--board-lib", choices=("source", "build"), default="source",
                    help="with --board-port: import lib/ sources (default) or the board's build/NAME bundle")
    group.addoption("--board-timeout", type=float, default=hil.DEFAULT_TIMEOUT, metavar="SECONDS",
                    help="with --board-port: time limit for each case file's batch on the board (default 300)")


def pytest_configure(config):
    config.addinivalue_line("markers", f"{BOARD}: device case run on a board through mpremote (--board-port)")


def pytest_pycollect_makemodule(module_path, parent):
    # case_*.py is in python_files (pyproject.toml); this replaces pytest's own Module for them, so a case
    # file named on the command line is not collected a second time as a plain module.
    if module_path.name.startswith("case_"):
        return DeviceCaseFile.from_parent(parent, path=module_path)
    return None


class DeviceTestFailure(Exception):
    pass


class DeviceCaseFile(pytest.File):
    def collect(self):
        tree = ast.parse(self.path.read_text(), str(self.path))
        self.heap = mpvm.DEFAULT_HEAP
        self.declared_heap = None
        names = []
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                names.append(node.name)
            elif (isinstance(node, ast.Assign) and len(node.targets) == 1
                  and getattr(node.targets[0], "id", None) == "MP_HEAP"):
                self.heap = self.declared_heap = ast.literal_eval(node.value)
        self.heap = self.config.getoption("--mp-heap") or self.heap
        choice = self.config.getoption("--runtime")
        runtimes = RUNTIMES if choice == "both" else (choice,)
        if self.config.getoption("--board-port"):
            runtimes = (BOARD,)
        self._mp_results = None
        self._board_results = None
        self._mp_names = [n for n in names]
        for name in names:
            for runtime in runtimes:
                yield DeviceCaseItem.from_parent(self, name=f"{name}[{runtime}]", func=name, runtime=runtime)

    def micropython_results(self):
        if self._mp_results is None:
            # Only the selected items run (e.g. with -k), still as one process.
            wanted = [i.func for i in self.session.items if i.parent is self and i.runtime == "micropython"]
            results, proc = mpvm.run_cases(self.path.stem, wanted or self._mp_names, heap=self.heap,
                                           case_dir=self.path.parent)
            self._mp_results = (results, proc)
        return self._mp_results

    def board_target(self):
        opt = self.config.getoption
        return hil.target(opt("--board-port"), opt("--board"), lib=opt("--board-lib"),
                          timeout=opt("--board-timeout"))

    def board_results(self):
        if self._board_results is None:
            wanted = [i.func for i in self.session.items if i.parent is self and i.runtime == BOARD]
            target = self.board_target()
            self._board_results = hil.run_cases(target, self.path.stem, wanted or self._mp_names,
                                                timeout=target.timeout, case_dir=self.path.parent)
        return self._board_results


class DeviceCaseItem(pytest.Item):
    def __init__(self, *, func, runtime, **kw):
        super().__init__(**kw)
        self.func = func
        self.runtime = runtime
        self.add_marker(getattr(pytest.mark, runtime))

    def runtest(self):
        if self.runtime == "cpython":
            import hgtest
            if str(self.path.parent) not in sys.path:
                sys.path.insert(0, str(self.path.parent))
            module = importlib.import_module(self.path.stem)
            try:
                getattr(module, self.func)()
            except hgtest.SkipTest as e:
                pytest.skip(str(e))
            return
        if self.runtime == BOARD:
            target = self.parent.board_target()
            context = f"board {target.name} at {target.port}"
            source = context
            self.user_properties.append(("runtime", BOARD))
            self.user_properties.append(("board", target.name))
            # A case file's budget is its MP_HEAP, the heap it runs at on the VM (DEFAULT_HEAP when it declares
            # none): a board with less is skipped with the reason, never run into MemoryError.
            needed = self.parent.declared_heap or mpvm.DEFAULT_HEAP
            if mpvm.heap_bytes(needed) > target.vm_heap:
                how = f"MP_HEAP={needed}" if self.parent.declared_heap else f"the VM default {needed} (no MP_HEAP)"
                pytest.skip(f"case file needs {how} on the VM; {target.name} has "
                            f"{target.board.python_heap // 1024} KiB (VM scale: {target.board.vm_heap})")
            results, proc = self.parent.board_results()
        else:
            context = f"heap {self.parent.heap}"
            source = "the MicroPython VM"
            results, proc = self.parent.micropython_results()
            self.user_properties.append(("runtime", "micropython"))
            self.user_properties.append(("heap_vm", self.parent.heap))
        r = results.get(self.func)
        if r is None or r.status == "missing":
            stderr = proc.stderr.decode("utf-8", "replace")[-4000:]
            detail = r.traceback if r else ""
            # Both the VM and mpremote print an uncaught exception (e.g. an import error in the case file)
            # on stdout.
            detail += "\n--- stdout ---\n" + proc.stdout.decode("utf-8", "replace")[-4000:]
            raise DeviceTestFailure(
                f"no result from {source} (exit code {proc.returncode}, {context})\n"
                f"{detail}\n--- stderr ---\n{stderr}")
        self.user_properties.append(("time_us", r.elapsed_us))
        self.user_properties.append(("heap_delta", r.heap))
        if r.status == "skip":
            pytest.skip(r.reason)
        if r.status != "pass":
            out = "\n".join(r.output)
            raise DeviceTestFailure(f"MicroPython traceback ({context}):\n{r.traceback}"
                                    + (f"\n--- output ---\n{out}" if out else ""))

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, DeviceTestFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"{self.path.name}::{self.name}"


_outcomes: Counter = Counter()
_board_rows: list = []


def pytest_runtest_logreport(report):
    if report.when == "call" or (report.when == "setup" and report.skipped):
        for runtime in RUNTIMES + (BOARD,):
            if report.nodeid.endswith(f"[{runtime}]"):
                _outcomes[(runtime, report.outcome)] += 1
        if report.nodeid.endswith(f"[{BOARD}]"):
            props = dict(report.user_properties)
            _board_rows.append((report.nodeid, report.outcome, props.get("time_us"), props.get("heap_delta")))


def pytest_terminal_summary(terminalreporter):
    if not _outcomes:
        return
    terminalreporter.section("device cases by runtime")
    for runtime in RUNTIMES + (BOARD,):
        counts = {k[1]: v for k, v in _outcomes.items() if k[0] == runtime}
        if counts:
            terminalreporter.write_line(
                f"{runtime:12s} " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    if _board_rows:
        config = terminalreporter.config
        terminalreporter.section(f"board {config.getoption('--board')} at {config.getoption('--board-port')}: "
                                 f"time and heap per test")
        for nodeid, outcome, time_us, heap in _board_rows:
            cost = f"{time_us / 1000:10.1f} ms {heap:+8d} B heap" if time_us is not None else " " * 29
            terminalreporter.write_line(f"{outcome:8s}{cost}  {nodeid}")
