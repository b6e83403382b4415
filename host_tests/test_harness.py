"""The dual-runtime harness itself: failures carry the MicroPython traceback, the heap limit is real,
a crashed VM is reported, and each case file runs as one VM process."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from hourglass import mpvm

REPO = mpvm.REPO


def run_pytest_on(tmp_path: Path, source: str, *args: str) -> subprocess.CompletedProcess:
    """Run pytest with our conftest on a throwaway case file placed in host_tests/device's import path."""
    case_dir = tmp_path / "device"
    case_dir.mkdir()
    case = case_dir / "case_harness_probe.py"
    case.write_text(textwrap.dedent(source))
    # Load the project's harness (host_tests/conftest.py) as a plugin into a pytest run in tmp_path.
    env = dict(os.environ, PYTHONPATH=str(REPO / "host_tests"))
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-v",
                           "-p", "no:xdist", "--rootdir", str(tmp_path), str(case), *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)


def test_failure_shows_micropython_traceback_and_runtime(tmp_path):
    proc = run_pytest_on(tmp_path, """
        def helper_that_fails():
            raise KeyError("deep inside")

        def test_fails():
            helper_that_fails()

        def test_passes():
            assert 1 + 1 == 2
    """)
    out = proc.stdout
    assert proc.returncode == 1, out
    assert "test_fails[micropython] FAILED" in out and "test_fails[cpython] FAILED" in out, out
    assert "test_passes[micropython] PASSED" in out and "test_passes[cpython] PASSED" in out, out
    assert "MicroPython traceback" in out
    assert 'in helper_that_fails' in out and "KeyError: deep inside" in out
    assert "micropython  1 failed, 1 passed" in out


def test_heap_limit_is_enforced(tmp_path):
    proc = run_pytest_on(tmp_path, """
        MP_HEAP = "64k"

        def test_big_allocation():
            import hgtest
            if not hgtest.IS_MICROPYTHON:
                hgtest.skip("heap limits apply to the VM")
            b = bytearray(100 * 1024)
    """)
    assert "test_big_allocation[micropython] FAILED" in proc.stdout, proc.stdout
    assert "MemoryError" in proc.stdout
    assert "heap 64k" in proc.stdout
    # A larger heap from the command line lets it pass.
    (tmp_path / "again").mkdir()
    proc = run_pytest_on(tmp_path / "again", """
        MP_HEAP = "64k"

        def test_big_allocation():
            b = bytearray(100 * 1024)
    """, "--mp-heap", "256k")
    assert "test_big_allocation[micropython] PASSED" in proc.stdout, proc.stdout


def test_crashed_vm_is_reported(tmp_path):
    proc = run_pytest_on(tmp_path, """
        def test_exits_the_vm():
            import sys, hgtest
            if hgtest.IS_MICROPYTHON:
                sys.exit(3)

        def test_after():
            pass
    """)
    assert "test_exits_the_vm[micropython] FAILED" in proc.stdout, proc.stdout
    assert "no result from the MicroPython VM (exit code 3" in proc.stdout
    assert "test_after[micropython] FAILED" in proc.stdout


def test_parse_results_handles_output_and_tracebacks():
    text = "\n".join([
        "@@HG batch m 2", "@@HG start test_a", "hello from the test", "@@HG end test_a pass 12 64",
        "@@HG start test_b", "@@HG traceback", "Traceback (most recent call last):", "ValueError: x",
        "@@HG end test_b fail 5 0", "@@HG start test_c", "@@HG reason not here", "@@HG end test_c skip 1 0",
        "@@HG start test_d", "partial output"])
    r = mpvm.parse_results(text)
    assert r["test_a"].status == "pass" and r["test_a"].output == ["hello from the test"]
    assert r["test_a"].elapsed_us == 12 and r["test_a"].heap == 64
    assert r["test_b"].status == "fail" and "ValueError: x" in r["test_b"].traceback
    assert r["test_c"].status == "skip" and r["test_c"].reason == "not here"
    assert r["test_d"].status == "missing" and r["test_d"].output == ["partial output"]
