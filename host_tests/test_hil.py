"""Hardware in the loop against virtual boards: `pytest --board-port PORT --board NAME` runs the same device case
files on a board through mpremote, with per-test result, time and heap in the pytest report (junit XML here).
CI has no hardware, so an ESP32-budget and an nRF52840-budget virtual board stand in."""
from __future__ import annotations

import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from hourglass import hil, vboard

REPO = Path(__file__).resolve().parents[1]
DEVICE = REPO / "host_tests" / "device"
# Case files both budgets run in CI (the whole directory takes ~25 s per board; see the report for which fit).
CASES = ["case_harness.py", "case_cbor.py", "case_coap_msg.py", "case_cose_sign.py"]
# The nRF52840's ~200 KiB heap runs every case file (~50 s): there the pure-Python AES path runs, as the
# board has no cryptolib. Left out: case_coap_serial_transport.py, whose UART stand-in (an io.IOBase stream)
# never becomes ready in the unix port's poll() while the VM's stdin is the board's pty — a limit of the
# virtual board, not of the board; the plain VM runs it in `make test`. The ESP32's 56 KiB heap is too small
# for some files (e.g. test_hkdf_limits), so it runs the list above.
# case_suit_powercut.py: its 650 install/cut/recover cycles through mpremote's mounted filesystem outlast the
# 300 s board timeout; the plain VM runs it in `make test`.
NRF_SKIP = {"case_coap_serial_transport.py", "case_suit_powercut.py"}
EXTRA_CASES = {"PCA10056": sorted(p.name for p in DEVICE.glob("case_*.py") if p.name not in set(CASES) | NRF_SKIP)}


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


@pytest.mark.parametrize("board", ["ESP32_GENERIC", "PCA10056"])
def test_device_cases_run_on_a_virtual_board(board, tmp_path):
    heap = vboard.board_profile(board).python_heap
    with vboard.VirtualBoard(tmp_path / "flash", board) as vb:
        proc, cases = run_hil(vb.port, board, [DEVICE / c for c in CASES + EXTRA_CASES.get(board, [])], tmp_path)
    report = proc.stdout[-6000:] + proc.stderr[-2000:]
    assert cases and all(name.endswith("[board]") for name in cases), report
    # Every test ran on the board and reported its time and heap.
    for name, (outcome, props) in cases.items():
        assert props["runtime"] == "board" and props["board"] == board, name
        if outcome != "passed" and outcome[0] == "skipped":
            continue
        assert int(props["time_us"]) >= 0 and "heap_delta" in props, name
        if outcome != "passed":
            # At the ESP32's 56 KiB only running out of heap is tolerated (a budget finding, printed in the
            # report); any other failure is a bug, and on the nRF52840's 200 KiB nothing may fail.
            assert board == "ESP32_GENERIC" and "MemoryError" in outcome[2], (name, outcome)
    assert all(o == "passed" for n, (o, _) in cases.items() if n.startswith("case_harness")), report
    assert len([n for n in cases if n.startswith("case_harness")]) == 3
    if board == "PCA10056":
        assert proc.returncode == 0, report
    # case_cose_sign declares MP_HEAP = "192k": more than an ESP32's 56 KiB (x2), less than an nRF52840's.
    sign = {n: o for n, (o, _) in cases.items() if n.startswith("case_cose_sign")}
    assert sign
    if 2 * heap < 192 * 1024:
        assert all(o[0] == "skipped" and "MP_HEAP=192k" in o[1] for o in sign.values()), sign
    else:
        assert all(o == "passed" for o in sign.values()), sign
    assert "time and heap per test" in proc.stdout
    if board == "PCA10056":
        sym = {n: o for n, (o, _) in cases.items() if n.startswith("case_crypto_sym")}
        assert sym["case_crypto_sym::test_aes_pure_matches_cryptolib_random[board]"][0] == "skipped"
        assert sum(o == "passed" for o in sym.values()) == len(sym) - 1


def test_failures_tracebacks_and_memory_errors_come_back(tmp_path):
    # The mount only serves the repository and the harness options live in host_tests/conftest.py, so this
    # case file goes in a hidden folder under host_tests/ (pytest does not recurse into it) while it runs.
    case_dir = REPO / "host_tests" / f".hil-selftest-{uuid.uuid4().hex[:8]}"
    case_dir.mkdir()
    try:
        (case_dir / "case_hilcheck.py").write_text(
            "import hgtest\n"
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
