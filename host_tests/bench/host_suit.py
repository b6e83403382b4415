"""SUIT host scenarios, with lib/ compiled to .mpy as a board runs it: the heap lib/suit adds on the VM beyond
cbor/cose/crypto/store, that a verifier is imported only when a manifest uses it, and the smallest VM heap in
which a whole 64 KiB and 4 MiB install (HMAC-256 envelope, fetch from a file, digest, write, commit) completes."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

PACKAGES = ("cbor", "cose", "crypto", "store", "suit")
# what a plain install loads (suit.fs names suit.bundle's file operations for the other backends: not loaded)
SUIT_MODULES = ("suit", "suit.envelope", "suit.processor", "suit.bundle")

# the qstr pools before and after (micropython.qstr_info: "qstr pool: n_pool=.., n_qstr=.., n_str_data_bytes=..,
# n_total_bytes=.."): the interned names suit adds, and the pool it opens, if any
VM_IMPORT = r'''
import gc, sys, micropython
import cbor, cose, hashlib, store
from cbor import Decoder  # the streaming decoder is cbor's, and suit always uses it
from cose import key, mac0, sign1, algs
from crypto import kdf, util
gc.collect()
micropython.qstr_info()
base = gc.mem_alloc()
for m in sys.argv[1:]:
    __import__(m)
gc.collect()
print("HEAP", gc.mem_alloc() - base)
micropython.qstr_info()
'''
QSTR_ENTRY = 11  # bytes of a qstr pool entry on the 64-bit VM: the string's pointer, a 2-byte hash, a 1-byte length

VM_IMPORT_ROMFS = r'''
import gc, sys, vfs
with open(sys.argv[1], "rb") as f:
    image = f.read()
vfs.mount(vfs.VfsRom(image), "/rom")
sys.path.insert(0, "/rom")
import cbor, cose, hashlib, store
from cbor import Decoder  # the streaming decoder is cbor's, and suit always uses it
from cose import key, mac0, sign1, algs
from crypto import kdf, util
gc.collect()
base = gc.mem_alloc()
for m in sys.argv[2:]:
    __import__(m)
gc.collect()
print("HEAP", gc.mem_alloc() - base)
'''

VM_LAZY = r'''
import sys
from cose.key import CoseKey
from suit.processor import Processor
from suit.bundle import BundleDriver
B = sys.argv[1]
IDENTITY = {1: bytes.fromhex("fa6b4a53d5ad5fdfbe9de663e4d41ffe"), 2: bytes.fromhex("1492af1425695e48bf429b2d51f2ab45")}
def run(name, keyfile):
    with open(B + keyfile, "rb") as f:
        k = CoseKey.decode(f.read())
    with open(B + name, "rb") as f:
        env = f.read()
    res = Processor(BundleDriver("dev-" + name, IDENTITY), [k]).update(env)
    if not res.ok:
        raise SystemExit("install failed: " + res.message)
run("alg_hmac.suit", "hmac.key")
print("AFTER_HMAC", " ".join(sorted(m for m in sys.modules if m.startswith("crypto."))))
print("SUIT_AFTER_HMAC", " ".join(sorted(m for m in sys.modules if m.startswith("suit"))))
run("alg_es256.suit", "es256.pub")
print("AFTER_ES256", " ".join(sorted(m for m in sys.modules if m.startswith("crypto."))))
'''

VM_INSTALL = r'''
import sys, os
from hashlib import sha256
import cbor
from cose import mac0
from cose.key import CoseKey
from suit.processor import Processor
from suit.bundle import BundleDriver
path, size, digest = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3])
key = CoseKey.from_raw(5, bytes(range(32)))
common = {2: [[b"fw.bin"]], 4: cbor.dumps([20, {3: cbor.dumps([-16, digest]), 14: size}])}
m = {1: 1, 2: 1, 3: cbor.dumps(common), 20: cbor.dumps([20, {21: "file:p"}, 21, 2, 3, 15])}
mb = cbor.dumps(m, canonical=True)
d = cbor.dumps([-16, sha256(cbor.dumps(mb)).digest()])
env = cbor.dumps(cbor.Tag(107, {2: cbor.dumps([d, mac0.create(key, d, detached=True)]), 3: mb}))
res = Processor(BundleDriver("dev", {}, sources={"file:p": path}), [key], None, chunk_size=4096).update(env)
print("RUN" if res.ok else "FAIL " + res.message)
'''


# the update trigger's check as an agent runs it: the anchor (a COSE_Key file) and the envelope (the Block1 body in
# one buffer, or a file) on a VM with only cbor and suit loaded; authenticate in place and parse the manifest
VM_CHECK = r'''
import sys
import cbor, suit
B, alg, route = sys.argv[1], sys.argv[2], sys.argv[3]
env = B + "alg_%s.suit" % alg
if route == "buffer":
    with open(env, "rb") as f:
        env = f.read()
try:
    kf = open(B + alg + ".pub", "rb")
except OSError:
    kf = open(B + alg + ".key", "rb")
with kf:
    anchor = kf.read()
from cose.key import CoseKey
from suit.envelope import authenticate
m = authenticate(env, [CoseKey.decode(anchor)], 8192)
print("RUN", m.sequence_number)
'''


# the same check on a fragmented heap: every free byte in holes of H bytes (each pinned apart by a small live
# object), modules not yet imported. What fails on a serving heap in pieces is the one allocation bigger than
# any hole (the 5 KB signature copied, before the in-place walk), not the total.
VM_HOLES = r'''
import gc, sys
import cbor, suit
B, alg, H = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(B + "alg_%s.suit" % alg, "rb") as f:
    env = f.read()
try:
    kf = open(B + alg + ".pub", "rb")
except OSError:
    kf = open(B + alg + ".key", "rb")
with kf:
    anchor = kf.read()
gc.collect()
holes = pins = None
try:
    while True:
        holes = (holes, bytearray(H - 96))
        pins = (pins, bytearray(8))
except MemoryError:
    pass
holes = None
gc.collect()
from cose.key import CoseKey
from suit.envelope import authenticate
m = authenticate(env, [CoseKey.decode(anchor)], 8192)
print("RUN", m.sequence_number)
'''


def _compile(ctx, out: Path) -> None:
    """lib/ as a board holds it: out/<module>.mpy, each naming its source repo-relative as the board build does
    (`mpy-cross -s`): both that name and the module's file name are interned on import, so the bench's own
    directories (this worktree's, a temporary one) must not lengthen them."""
    cross = Path(ctx.mpvm.micropython_binary()).parent / "mpy-cross"
    for pkg in PACKAGES:
        root = ctx.repo / "lib" / pkg
        for src in sorted(root.rglob("*.py")):
            if src.name == "manifest.py" or "viper" in src.name:
                continue  # viper modules are native code for one CPU; crypto falls back without them
            dst = out / src.relative_to(root).with_suffix(".mpy")
            dst.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([str(cross), "-s", src.relative_to(ctx.repo).as_posix(), "-o", str(dst), str(src)],
                           check=True)


def _vm(ctx, mpy: Path, script: str, *args, heap="128k", timeout=600) -> subprocess.CompletedProcess:
    """Run script with the modules in mpy (a folder named lib) on the path as "lib", as a board's /lib."""
    f = mpy.parent / "script.py"
    f.write_text(script)
    env = dict(os.environ, MICROPYPATH=f".frozen:{mpy.name}")
    return subprocess.run([ctx.mpvm.micropython_binary(), "-X", f"heapsize={heap}", str(f), *map(str, args)],
                          env=env, capture_output=True, timeout=timeout, cwd=str(mpy.parent))


def _qstr_pools(text: str) -> list[dict]:
    return [dict((k, int(v)) for k, v in (kv.split("=") for kv in line.split(": ", 1)[1].split(", ")))
            for line in text.splitlines() if line.startswith("qstr pool:")]


def _min_heap(ctx, mpy: Path, args, lo=16, hi=256, script=VM_INSTALL) -> int:
    while lo < hi:
        mid = (lo + hi) // 2
        p = _vm(ctx, mpy, script, *args, heap=f"{mid}k")
        if p.returncode == 0 and b"RUN" in p.stdout:
            hi = mid
        else:
            lo = mid + 1
    return lo


def run(ctx) -> list[dict]:
    import hashlib
    out: list[dict] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-suit-"))
    try:
        mpy = tmp / "lib"
        _compile(ctx, mpy)
        p = _vm(ctx, mpy, VM_IMPORT, *SUIT_MODULES)
        text = p.stdout.decode()
        heap = next((int(line.split()[1]) for line in text.splitlines() if line.startswith("HEAP ")), -1)
        pools = _qstr_pools(text)
        out.append({"name": "suit heap after import as .mpy files (" + ", ".join(SUIT_MODULES) + ") beyond cbor, "
                    "cose (key, sign1, mac0), crypto.kdf, store", "runtime": "micropython", "value": heap, "unit": "B",
                    "target": "<= 16384", "note": "VM is 64-bit: about half on a 32-bit board; bytecode is "
                    "copied into RAM"})
        if heap >= 0 and len(pools) == 2:
            a, b = pools
            names = b["n_qstr"] - a["n_qstr"]
            opened = (b["n_total_bytes"] - b["n_str_data_bytes"]) - (a["n_total_bytes"] - a["n_str_data_bytes"])
            out.append({"name": "the same, with the qstr pool charged per entry: the pool the import opens "
                        f"({opened:,} B) replaced by {QSTR_ENTRY} B for each of the {names} names it interns",
                        "runtime": "micropython", "value": heap - opened + names * QSTR_ENTRY, "unit": "B",
                        "note": "a pool doubles when the last one is full, so whichever import crosses the line pays "
                        "for the whole new pool: with this base (cbor, cose, crypto, store: "
                        f"{a['n_qstr']} names in {a['n_pool']} pools) suit's import does; on a board the app "
                        "imported before suit has interned more names, and the boundary falls elsewhere"})
            out.append({"name": "the names the same import interns beyond the base (function, method, attribute, "
                        "global, argument names and short strings of the .mpy files; MicroPython never frees one)",
                        "runtime": "micropython", "value": names, "unit": "names",
                        "note": f"qstr pools before: {a['n_pool']} with {a['n_qstr']} names; after: {b['n_pool']} "
                        f"with {b['n_qstr']} (a new pool, 320 entries here, costs {QSTR_ENTRY * 320:,} B and more)"})
        from hourglass.build import make_romfs_image
        image = tmp / "romfs.img"
        make_romfs_image(mpy, image)
        p = _vm(ctx, mpy, VM_IMPORT_ROMFS, image, *SUIT_MODULES, heap="512k")
        heap = int(p.stdout.split()[1]) if p.returncode == 0 else -1
        out.append({"name": "suit heap after import from ROMFS (the same modules, bytecode run in place)",
                    "runtime": "micropython", "value": heap, "unit": "B", "target": "<= 16384",
                    "note": "how the nRF52840 (and an ESP32 ROMFS build) holds lib/"})
        p = _vm(ctx, mpy, VM_LAZY, str(ctx.repo / "host_tests" / "vectors" / "suit" / "built") + "/", heap="256k")
        lines = dict(line.split(" ", 1) if " " in line else (line, "") for line in p.stdout.decode().splitlines())
        out.append({"name": "crypto modules loaded after an HMAC-256 manifest / after an ES256 one",
                    "runtime": "micropython", "value": None, "unit": "",
                    "note": f"{lines.get('AFTER_HMAC', '?') or '(none)'} / {lines.get('AFTER_ES256', '?')}"})
        out.append({"name": "suit modules loaded by a plain install (one integrated file, HMAC-256)",
                    "runtime": "micropython", "value": None, "unit": "",
                    "note": lines.get("SUIT_AFTER_HMAC", "?") + " (commands, bundle_more, bundle_dir, encryption, "
                    "spool, fs, reasons, _text load only when a manifest needs them)"})
        built = str(ctx.repo / "host_tests" / "vectors" / "suit" / "built") + "/"
        for alg, label in (("hss", "HSS-LMS"), ("esp256", "ESP256"), ("ed25519", "Ed25519"), ("hmac", "HMAC-256")):
            for route in ("buffer", "file"):
                h = _min_heap(ctx, mpy, (built, alg, route), script=VM_CHECK)
                out.append({"name": f"suit.envelope.authenticate, {label} envelope in a {route}: smallest VM heap "
                            "(imports of cose.key, suit.envelope, the verifier, and the check's own peak)",
                            "runtime": "micropython", "value": h, "unit": "KiB",
                            "note": "the agent's trigger check; before the in-place walk (24720a7, Envelope + "
                            "authenticate + Manifest, same script): HSS-LMS 77, ESP256 74, Ed25519 90, HMAC-256 55 KiB "
                            "with the envelope in a buffer"})
        for alg, label in (("hss", "HSS-LMS"), ("esp256", "ESP256")):
            hole = None
            for h in (1024, 1280, 1536, 2048, 2560, 3072, 4096, 6144):
                p = _vm(ctx, mpy, VM_HOLES, built, alg, h, heap="256k")
                if p.returncode == 0 and b"RUN" in p.stdout:
                    hole = h
                    break
            out.append({"name": f"suit.envelope.authenticate, {label} envelope in a buffer, on a heap whose free "
                        "space is all in holes: the smallest hole it completes in (imports included)",
                        "runtime": "micropython", "value": hole, "unit": "B",
                        "note": "before the in-place walk (24720a7, same ladder): HSS-LMS 3072 (2048: 'not valid "
                        "CBOR: out of memory', the signature's copy), ESP256 2048"})
        for label, size in (("64 KiB", 64 << 10), ("4 MiB", 4 << 20)):
            data = os.urandom(size)
            path = tmp / f"p{size}"
            path.write_bytes(data)
            h = _min_heap(ctx, mpy, (str(path), size, hashlib.sha256(data).hexdigest()))
            out.append({"name": f"suit install of {label} (.mpy, HMAC-256): smallest VM heap that completes it",
                        "runtime": "micropython", "value": h, "unit": "KiB", "target": "flat (64 KiB vs 4 MiB)",
                        "note": "includes interpreter start-up and every imported module"})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
