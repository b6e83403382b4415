"""Hardware in the loop against virtual boards: `pytest --board-port PORT --board NAME` runs the same device case
files on a board through mpremote, with per-test result, time and heap in the pytest report (junit XML here).
CI has no hardware, so an ESP32-budget and an nRF52840-budget virtual board stand in."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from hourglass import boards, hil, mpvm, vboard
from hourglass.common import UserError

REPO = Path(__file__).resolve().parents[1]
DEVICE = REPO / "host_tests" / "device"
ALL_CASE_FILES = sorted(DEVICE.glob("case_*.py"))
# case_suit_powercut.py: its 650 install/cut/recover cycles through mpremote's mounted filesystem outlast the
# 300 s board timeout; the plain VM runs it in `make test`.
HIL_SKIP = {"case_suit_powercut.py"}
CASE_FILES = [p for p in ALL_CASE_FILES if p.name not in HIL_SKIP]


def run_hil(port: str, board: str, paths: list[Path], tmp_path: Path, *extra: str):
    junit = tmp_path / f"{board}-{uuid.uuid4().hex[:6]}.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--board-port", port, "--board", board,
         f"--junitxml={junit}", "-q", *extra, *map(str, paths)],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    cases = {}
    for tc in ET.parse(junit).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in tc.iter("property")}
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            node = tc.find(tag)
            if node is not None:
                outcome = (tag, node.get("message") or "", node.text or "")
        cases[f"{tc.get('classname').rsplit('.', 1)[-1]}::{tc.get('name')}"] = (outcome, props)
    return proc, cases


def test_every_case_file_declares_its_budget():
    undeclared = [p.name for p in CASE_FILES if not re.search(r'^MP_HEAP = "\d+k"', p.read_text(), re.M)]
    assert not undeclared, f"case files without MP_HEAP: {undeclared}"


@pytest.mark.parametrize("board", ["ESP32_GENERIC", "PCA10056"])
def test_device_cases_run_on_a_virtual_board(board, tmp_path):
    """Every case file, on each board's budget: no failures (MemoryError included); what does not fit is
    skipped with the reason."""
    b = boards.load_board(board)
    with vboard.VirtualBoard(tmp_path / "flash", board) as vb:
        proc, cases = run_hil(vb.port, board, CASE_FILES, tmp_path)
    report = proc.stdout[-6000:] + proc.stderr[-2000:]
    assert cases and all(name.endswith("[board]") for name in cases), report
    assert {n.split("::")[0] for n in cases} == {p.stem for p in CASE_FILES}
    for name, (outcome, props) in cases.items():
        assert props["runtime"] == "board" and props["board"] == board, name
        if outcome != "passed":
            assert outcome[0] == "skipped" and outcome[1], (name, outcome)
            continue
        assert int(props["time_us"]) >= 0 and "heap_delta" in props, name
    assert proc.returncode == 0, report
    assert len([n for n in cases if n.startswith("case_harness")]) == 3
    # A case file runs where its MP_HEAP fits the board's heap on the VM scale, and is skipped where not.
    vm_heap = mpvm.heap_bytes(b.vm_heap)
    for path in CASE_FILES:
        heap = mpvm.heap_bytes(re.search(r'^MP_HEAP = "(\d+k)"', path.read_text(), re.M).group(1))
        outcomes = [o for n, (o, _) in cases.items() if n.split("::")[0] == path.stem]
        if heap > vm_heap:
            assert all(o[0] == "skipped" and f"{b.name} has" in o[1] for o in outcomes), (path.name, outcomes)
        else:
            assert any(o == "passed" for o in outcomes), (path.name, outcomes)
    assert "time and heap per test" in proc.stdout
    if board == "PCA10056":
        sym = {n: o for n, (o, _) in cases.items() if n.startswith("case_crypto_sym")}
        assert sym["case_crypto_sym::test_aes_pure_matches_cryptolib_random[board]"][0] == "skipped"
        assert sum(o == "passed" for o in sym.values()) == len(sym) - 1
        # The serial transport's UART stand-in on a VM whose stdin is the board's pty (it once polled fd 0).
        serial = [o for n, (o, _) in cases.items() if n.startswith("case_coap_serial_transport")]
        assert len(serial) == 4 and all(o == "passed" for o in serial), serial


def test_failures_tracebacks_and_memory_errors_come_back(tmp_path):
    # The mount only serves the repository and the harness options live in host_tests/conftest.py, so this
    # case file goes in a hidden folder under host_tests/ (pytest does not recurse into it) while it runs.
    case_dir = REPO / "host_tests" / f".hil-selftest-{uuid.uuid4().hex[:8]}"
    case_dir.mkdir()
    try:
        (case_dir / "case_hilcheck.py").write_text(
            "import hgtest\n"
            "MP_HEAP = '64k'\n"
            "def test_passes():\n    assert hgtest.IS_MICROPYTHON\n"
            "def test_fails():\n    assert 1 + 1 == 3, 'arithmetic on the board'\n"
            "def test_skips():\n    hgtest.skip('not on this board')\n"
            "def test_runs_out_of_heap():\n    b = bytearray(300 * 1024)\n"
            "def test_reads_a_vector():\n    assert len(hgtest.read_vector('cose/examples.json')) > 1000\n"
            "def test_never_ends():\n    while True:\n        pass\n")
        with vboard.VirtualBoard(tmp_path / "flash", "ESP32_GENERIC") as vb:
            proc, cases = run_hil(vb.port, "ESP32_GENERIC", [case_dir / "case_hilcheck.py"], tmp_path,
                                  "--board-timeout", "8")
            # The next session's Ctrl-C stops the test still running on the board: it is usable again.
            again, harness = run_hil(vb.port, "ESP32_GENERIC", [DEVICE / "case_harness.py"], tmp_path)
    finally:
        for p in sorted(case_dir.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        case_dir.rmdir()
    assert proc.returncode == 1
    assert cases["case_hilcheck::test_passes[board]"][0] == "passed"
    outcome = cases["case_hilcheck::test_fails[board]"][0]
    assert outcome[0] == "failure" and "arithmetic on the board" in outcome[2]
    assert "board ESP32_GENERIC at" in outcome[2]
    assert cases["case_hilcheck::test_skips[board]"][0][0] == "skipped"
    assert "MemoryError" in cases["case_hilcheck::test_runs_out_of_heap[board]"][0][2]
    assert cases["case_hilcheck::test_reads_a_vector[board]"][0] == "passed"
    hang = cases["case_hilcheck::test_never_ends[board]"][0]
    assert hang[0] == "failure" and "timed out after 8 s" in hang[2]
    assert again.returncode == 0 and len(harness) == 3


def test_runner_command_mounts_the_repo_and_uses_compiled_cases():
    t = hil.target("/dev/ttyUSB0", "ESP32_GENERIC")
    cmd = hil.command(t, "case_harness", ["test_raises_helper"])
    assert cmd[1:4] == ["connect", "/dev/ttyUSB0", "mount"] and cmd[4] == str(REPO) and cmd[5] == "exec"
    assert "hgrunner.main(['case_harness', 'test_raises_helper'])" in cmd[6]
    assert (REPO / "build" / "hil" / "host_tests" / "device" / "hgrunner.mpy").is_file()
    assert "/remote/build/hil/lib/cbor" in cmd[6]


def test_unknown_board_and_missing_port_are_user_errors():
    with pytest.raises(UserError, match="unknown board 'NOPE'"):
        hil.target("/dev/ttyUSB0", "NOPE")
    with pytest.raises(UserError, match="--board-port"):
        hil.target("", "ESP32_GENERIC")


def test_a_dead_port_is_one_clear_line(tmp_path):
    t = hil.target(str(tmp_path / "ttyNOPE"), "ESP32_GENERIC", timeout=20)
    results, proc = hil.run_cases(t, "case_harness", [])
    assert results == {} and proc.stderr.decode().startswith(f"hourglass hil: cannot open {tmp_path / 'ttyNOPE'}: "
                                                              "no such device")
    # A port that opens but where nothing answers (no MicroPython): no prompt, said once, no hang.
    master, slave = os.openpty()
    try:
        t = hil.target(os.ttyname(slave), "ESP32_GENERIC", timeout=3)
        start = time.monotonic()
        results, proc = hil.run_cases(t, "case_harness", [], timeout=3)
        assert time.monotonic() - start < 10
    finally:
        os.close(master)
        os.close(slave)
    assert results == {} and "no MicroPython prompt" in proc.stderr.decode()
    assert len(proc.stderr.decode().splitlines()) == 1


SERIAL_APP = """
import asyncio
from coap.serial import SerialTransport
from coap.server import Server


async def main():
    s = Server(SerialTransport())
    s.start()
    print("serial app ready")
    while True:
        await asyncio.sleep(1)

asyncio.run(main())
"""


def test_hil_takes_over_a_board_running_the_serial_app(tmp_path):
    """The nRF serial CoAP app reads every console byte (mpremote's Ctrl-C + Ctrl-A back to back lose the
    Ctrl-A): the runner stops it one Ctrl-C at a time and the case file runs."""
    import shutil

    flash = tmp_path / "flash"
    for pkg in mpvm.lib_package_dirs():
        shutil.copytree(pkg, flash / "lib", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("manifest.py", "package.json", "__pycache__"))
    (flash / "main.py").write_text(SERIAL_APP)
    with vboard.VirtualBoard(flash, "PCA10056") as vb:
        deadline = time.monotonic() + 20
        while vb.repl.intr_char != -1 and time.monotonic() < deadline:  # the app has the console
            time.sleep(0.05)
        assert vb.repl.intr_char == -1
        start = time.monotonic()
        proc, cases = run_hil(vb.port, "PCA10056", [DEVICE / "case_harness.py"], tmp_path,
                              "--board-timeout", "60")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert len(cases) == 3 and all(o == "passed" for o, _ in cases.values())
    assert time.monotonic() - start < 60
