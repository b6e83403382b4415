"""Peak heap of the EC operations on the VM, measured by filling the heap to the last block.

Why not only benchrunner's peak search: its ballast is bytearrays, which cannot fill the many one- or two-block
holes that big-int garbage leaves behind; the operation then runs in those holes and the figure comes out too
small (or, with another heap history, too large). Here the ballast is a chain of 2-tuples, one GC block each,
allocated until MemoryError, so no free block is left anywhere; then the newest k blocks (the end of the heap,
contiguous) are released and one operation runs. The smallest k that works, times the block size, is the
operation's peak heap beyond its inputs and the module's persistent tables (which setup builds first).
"""
from __future__ import annotations

SCRIPT = r"""
import gc, sys
import bench_crypto_ec as b
from crypto import ed25519, p256
ed25519._b_table()
p256._g_table()

gc.collect()
_a = gc.mem_alloc()
_t = (None, 0)
BLOCK = gc.mem_alloc() - _a
_t = None


def probe(op, k):
    gc.collect()
    chain = None
    try:
        while True:
            chain = (chain, 0)
    except MemoryError:
        pass
    while k:  # no range(): the heap is full
        chain = chain[0]
        k -= 1
    gc.collect()
    try:
        op()
        ok = True
    except MemoryError:
        ok = False
    chain = None
    gc.collect()
    return ok


def peak(op):
    lo = 0
    hi = 4096
    if not probe(op, hi):
        return -1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if probe(op, mid):
            hi = mid
        else:
            lo = mid
    return hi * BLOCK


for name in sys.argv[1:]:
    op = getattr(b, name)()
    op()
    print("@@PEAK", name, peak(op), BLOCK)
"""

OPS = ("bench_ed25519_verify", "bench_ed25519_sign", "bench_p256_verify", "bench_p256_sign", "bench_p256_ecdh",
       "bench_x25519", "bench_sha512_1_block", "bench_sha512_pure_1_block")
BOARD_TARGET = 16 * 1024
VM_TARGET = 32 * 1024
HEAP = "256k"


def measure(ctx, ops=OPS) -> dict[str, int | None]:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "ec_peak.py"
        script.write_text(SCRIPT)
        proc = ctx.mpvm.run([str(script), *ops], heap=HEAP,
                            path=ctx.mpvm.device_path([ctx.repo / "host_tests" / "bench"]), timeout=600)
    out: dict[str, int | None] = {name: None for name in ops}
    for line in proc.stdout.decode().splitlines():
        if line.startswith("@@PEAK "):
            _, name, value, _block = line.split()
            out[name] = None if int(value) < 0 else int(value)
    return out


def run(ctx) -> list[dict]:
    rows = []
    for name, value in measure(ctx).items():
        rows.append({"name": f"peak heap of one {name[6:]} (heap filled to the last block)",
                     "runtime": "micropython", "value": value, "unit": "B",
                     "target": f"≤ {VM_TARGET} on the VM (≈ {BOARD_TARGET} on a board)",
                     "note": "beyond inputs and persistent tables; the VM is 64-bit, a board needs about half"})
    return rows
