"""CoAP-EAP wire bytes: the datagrams each EAP-NOOB exchange puts on the wire when carried over CoAP-EAP (the
trigger, each EAP request's POST and the device's 2.01, the closing EAP-Failure or the OSCORE-protected
EAP-Success), for the bootstrap and each Reconnect KeyingMode in both cryptosuites. The replay of
bench_eapnoob.py (the RFC 9140 authors' transcripts through lib/coapeap on the MicroPython VM, the controller a
stand-in sending what ours sends: CON POSTs with a 2-byte token, Content-Format 269, {1: [0], 2: RID-C} on the
first and Session-Lifetime on EAP-Success)."""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

VM_WIRE = r'''
import sys
import bench_eapnoob as b
name, reconnect = sys.argv[1], sys.argv[2] == "1"
n = {}


def count(exchange, size):
    c = n.setdefault(exchange, [0, 0])
    c[0] += 1
    c[1] += size


bench = b.Bench(name, count)
stores = bench.run_bootstrap()
if reconnect:
    n.clear()
    bench.run_reconnect(stores)
for exchange in ("Initial", "Waiting", "Completion", "Reconnect"):
    if exchange in n:
        print("WIRE", exchange, n[exchange][0], n[exchange][1])
'''

CASES = (("cs1_1_0", "X25519", False), ("cs2_2_0", "P-256", False),
         ("cs1_1_0", "X25519, KeyingMode 1", True), ("cs1_1_1", "X25519, KeyingMode 2", True),
         ("cs1_2_1", "KeyingMode 3, X25519 to P-256", True), ("cs2_2_0", "P-256, KeyingMode 1", True),
         ("cs2_2_1", "P-256, KeyingMode 2", True), ("cs2_1_1", "KeyingMode 3, P-256 to X25519", True))


def run(ctx) -> list[dict]:
    rows = []
    bench = ctx.repo / "host_tests" / "bench"
    env = dict(os.environ, MICROPYPATH=":".join([".frozen"] + ctx.mpvm.device_path([bench, ctx.mpvm.DEVICE_TESTS])))
    with tempfile.TemporaryDirectory(prefix="bench-coapeap-") as tmp:
        script = Path(tmp) / "wire.py"
        script.write_text(VM_WIRE)
        for name, label, reconnect in CASES:
            p = subprocess.run([ctx.mpvm.micropython_binary(), "-X", "heapsize=384k", str(script), name,
                                "1" if reconnect else "0"], env=env, capture_output=True, timeout=300,
                               cwd=str(ctx.repo))
            lines = [ln.split() for ln in p.stdout.decode().splitlines() if ln.startswith("WIRE ")]
            if p.returncode or not lines:
                raise RuntimeError(f"{name}: " + (p.stdout + p.stderr).decode()[-500:])
            for _, exchange, datagrams, size in lines:
                rows.append({"name": f"coapeap wire bytes, {exchange} exchange ({label})", "runtime": "micropython",
                             "value": int(size), "unit": "B", "note": f"{datagrams} datagrams, both ways"})
    return rows


if __name__ == "__main__":  # python host_tests/bench/host_coapeap.py: the figures without the whole bench
    from types import SimpleNamespace

    from hourglass import mpvm
    for r in run(SimpleNamespace(repo=mpvm.REPO, mpvm=mpvm)):
        print(r["value"], r["unit"], r["name"], r["note"])
