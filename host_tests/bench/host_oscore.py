"""OSCORE figures that need the host: the heap of importing lib/oscore as .mpy on the VM (beyond what it imports
from coap and crypto), the heap after importing the CoAP stack with and without OSCORE, the heap one security
context keeps, and the wire bytes OSCORE adds to a request and its responses against the same exchange
unprotected."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

VM_IMPORT = r'''
import gc, sys
import asyncio, socket, os  # firmware modules (frozen / built in): not part of the figures
base = sys.argv[1].split(",") if sys.argv[1] else []
extra = sys.argv[2].split(",")
for m in base:
    __import__(m)
gc.collect()
a = gc.mem_alloc()
for m in extra:
    __import__(m)
gc.collect()
print("HEAP", gc.mem_alloc() - a)
'''

# The same import with the qstr pool grown first. The VM interns names into pools that double in size; the
# pool that fills up next (about 1.8 KB on the VM) is charged to whatever import crosses its boundary, and with
# only coap.msg and crypto loaded that is oscore's. Here dummy names are interned until a new pool is made, so the
# import lands in one with room, and the host charges each name it added at its share of a pool (QSTR_ENTRY).
VM_IMPORT_POOLED = r'''
import gc, sys, micropython
import asyncio, socket, os  # firmware modules (frozen / built in): not part of the figures
for m in sys.argv[1].split(","):
    __import__(m)
i = 0
while True:  # hasattr interns its name: stop at the first one that allocates a new pool
    gc.collect()
    a = gc.mem_alloc()
    hasattr(None, "pool_%d" % i)
    i += 1
    if gc.mem_alloc() - a > 1024:
        break
gc.collect()
micropython.qstr_info()
a = gc.mem_alloc()
for m in sys.argv[2].split(","):
    __import__(m)
gc.collect()
print("HEAP", gc.mem_alloc() - a)
micropython.qstr_info()
'''
QSTR_ENTRY = 11  # bytes of a pool entry on the 64-bit VM: the string pointer, a 2-byte hash, a 1-byte length

VM_CONTEXTS = r'''
import gc, sys
from oscore import Context
pure = sys.argv[1] == "pure"
keep = [Context(b"k" * 16, b"s" * 8, b"\x01", b"\x02", pure=pure)]  # warm: imports, qstrs
gc.collect()
a = gc.mem_alloc()
for i in range(8):
    keep.append(Context(b"k" * 16, b"s" * 8, bytes((i + 2,)), b"\x01", pure=pure))
gc.collect()
print("HEAP", (gc.mem_alloc() - a) // 8)
'''

VM_CIPHERS = r'''
import gc, sys
import crypto.ccm  # what oscore.aead imports with the first cipher: not part of the figure
import oscore as C
pure = sys.argv[1] == "pure"
a = C.Context(b"k" * 16, b"s" * 8, b"\x01", b"\x02", pure=pure)
gc.collect()
x = gc.mem_alloc()
C.aead(a.sender_key, pure)
C.aead(a.recipient_key, pure)  # the cache: a list with the two ciphers a context uses
gc.collect()
print("HEAP", gc.mem_alloc() - x)
'''

PACKAGES = ("coap", "oscore", "crypto", "store")


def _compile(ctx, out: Path) -> int:
    """lib packages as .mpy for the VM's CPU; returns the .mpy bytes of lib/oscore for xtensawin."""
    from hourglass.build import host_arch, mpy_cross_binary
    size = 0
    for pkg in PACKAGES:
        for src in (ctx.repo / "lib" / pkg).rglob("*.py"):
            if src.name == "manifest.py" or src.name.startswith("_cpython"):
                continue
            rel = src.relative_to(ctx.repo / "lib" / pkg).with_suffix(".mpy")
            shown = src.relative_to(ctx.repo).as_posix()  # the source name the board build embeds (interned)
            dest = out / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([mpy_cross_binary(), f"-march={host_arch()}", "-s", shown, "-o", str(dest), str(src)],
                           check=True)
            if pkg == "oscore":
                x = out.parent / "xtensa.mpy"
                subprocess.run([mpy_cross_binary(), "-march=xtensawin", "-s", shown, "-o", str(x), str(src)],
                               check=True)
                size += x.stat().st_size
    return size


def _vm_out(ctx, mpy: Path, script: str, *args) -> str:
    f = mpy.parent / "script.py"
    f.write_text(script)
    # a relative path, as on a board (sys.path "/lib"): a module's __file__ is interned on import
    env = dict(os.environ, MICROPYPATH=f".frozen:{mpy.name}")
    p = subprocess.run([ctx.mpvm.micropython_binary(), "-X", "heapsize=128k", str(f), *args], env=env,
                       capture_output=True, timeout=120, cwd=str(mpy.parent))
    return p.stdout.decode()


def _vm_pooled(ctx, mpy: Path, base: str, extra: str) -> tuple[int, int]:
    """(heap of importing extra into a qstr pool with room, plus its names' pool entries; names added)."""
    out = _vm_out(ctx, mpy, VM_IMPORT_POOLED, base, extra)
    heap = next((int(x.split()[1]) for x in out.splitlines() if x.startswith("HEAP ")), -1)
    pools = [x for x in out.splitlines() if x.startswith("qstr pool:")]
    n = [int(x.split("n_qstr=")[1].split(",")[0]) for x in pools]
    if heap < 0 or len(n) != 2 or pools[0].split(",")[0] != pools[1].split(",")[0]:
        return -1, 0  # a pool was still made during the import: no figure rather than a wrong one
    return heap + QSTR_ENTRY * (n[1] - n[0]), n[1] - n[0]


def _vm(ctx, mpy: Path, script: str, *args) -> int:
    for line in _vm_out(ctx, mpy, script, *args).splitlines():
        if line.startswith("HEAP "):
            return int(line.split()[1])
    return -1


def _wire_rows() -> list[dict]:
    from coap.msg import Message
    from oscore import Context
    from oscore.client import protect_request
    from oscore.transform import unprotect_request, protect_response

    client = Context(b"k" * 16, b"s" * 8, b"\x01", b"\x02")
    server = Context(b"k" * 16, b"s" * 8, b"\x02", b"\x01")
    client.seq = 300  # a two-byte Partial IV, as after a few hundred messages
    server.seq = 300
    req = Message(0, 1, 0x1234, b"\x5a\x17\x02\xc3").set_path("/sensors/temp")
    req.add(17, 50)
    out, _ = protect_request(client, req)
    _, binding = unprotect_request([server], out)
    resp = Message(2, 69, 0x1234, b"\x5a\x17\x02\xc3", bytes(32)).add(12, 50)
    r_out = protect_response(list(binding), resp)
    notif = Message(1, 69, 0x1235, b"\x5a\x17\x02\xc3", bytes(32)).add(6, 7).add(12, 50)
    n_out = protect_response(list(binding), notif)
    rows = []
    for label, plain, prot in (("request (GET /sensors/temp, Accept, 4-byte token, kid 1 byte)", req, out),
                               ("response (2.05, 32 bytes, the request's nonce)", resp, r_out),
                               ("notification (own Partial IV)", notif, n_out)):
        a, b = len(plain.encode()), len(prot.encode())
        rows.append({"name": f"oscore wire bytes added, {label}: {a} -> {b}", "runtime": "codec",
                     "value": b - a, "unit": "B"})
    return rows


def run(ctx) -> list[dict]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-oscore-"))
    try:
        return _rows(ctx, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _rows(ctx, tmp: Path) -> list[dict]:
    out: list[dict] = []
    mpy = tmp / "lib"
    size = _compile(ctx, mpy)
    out.append({"name": "oscore .mpy size, whole package", "runtime": "mpy-cross xtensawin", "value": size,
                "unit": "B"})
    deps = "coap.msg,crypto.ccm,crypto.kdf,crypto.util"
    for label, base, extra in (
            ("oscore core + endpoint transform (context, protect/unprotect, the server role) beyond coap.msg and "
             "crypto", deps, "oscore.transform"),
            ("oscore.client (the client role: loaded with the first protected request) beyond the core + transform",
             deps + ",oscore.transform", "oscore.client"),
            ("oscore.derive (making a context: loaded with the first one) beyond the core + transform", deps +
             ",oscore.transform", "oscore.derive"),
            ("oscore.outer (Outer Block-wise: loaded on first use) beyond the core + transform and coap.block",
             deps + ",oscore.transform,coap.block", "oscore.outer"),
            ("CoAP stack (client, server, UDP) without OSCORE", "", "coap.client,coap.server,coap.udp"),
            ("CoAP stack + the crypto OSCORE uses (AES-CCM, HKDF), without OSCORE", "",
             "coap.client,coap.server,coap.udp,crypto.ccm,crypto.kdf,crypto.util"),
            ("CoAP stack (client, server, UDP) with OSCORE in both roles (transform, context, derive, "
             "client, AES-CCM, HKDF)", "",
             "coap.client,coap.server,coap.udp,oscore.transform,oscore.derive,oscore.client,crypto.ccm")):
        heap = _vm(ctx, mpy, VM_IMPORT, base, extra)
        row = {"name": f"oscore heap after import (.mpy), {label}", "runtime": "micropython", "value": heap,
               "unit": "B", "note": "VM is 64-bit: about half on a 32-bit board"}
        if base == deps:
            row["target"] = "<= 8192"
        out.append(row)
        if base == deps:
            pooled, names = _vm_pooled(ctx, mpy, base, extra)
            out.append({"name": f"oscore heap after import (.mpy), {label}, into a qstr pool with room ({names} "
                        f"names at {QSTR_ENTRY} B of pool each, not the next pool whole)", "runtime": "micropython",
                        "value": pooled, "unit": "B", "target": "<= 8192",
                        "note": "VM is 64-bit: about half on a 32-bit board"})
    for aes in ("cryptolib", "pure"):
        out.append({"name": f"oscore heap kept per security context ({aes} AES)", "runtime": "micropython",
                    "value": _vm(ctx, mpy, VM_CONTEXTS, aes), "unit": "B", "target": "<= 1024"})
        out.append({"name": f"oscore heap of the shared AES-CCM objects, CIPHERS=2 ({aes} AES): once, not per context",
                    "runtime": "micropython", "value": _vm(ctx, mpy, VM_CIPHERS, aes), "unit": "B"})
    out += _wire_rows()
    return out


if __name__ == "__main__":  # python host_tests/bench/host_oscore.py: the figures without the whole bench
    import sys
    from types import SimpleNamespace

    from hourglass import mpvm
    sys.path[:0] = mpvm.device_path()
    for r in run(SimpleNamespace(repo=mpvm.REPO, mpvm=mpvm)):
        print(r["value"], r["unit"], r["name"], r.get("target", ""))
