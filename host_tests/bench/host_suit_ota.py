"""SUIT over the air, host scenarios: the device's Block2 download (suit.ota_run on lib/coap, .mpy on the VM) of
a 1 MiB payload from `hourglass suit serve`'s server (aiocoap, payload read from disk per block) against
libcoap's coap-client-notls fetching the same payload from the same server with the same block size; and the
smallest VM heap in which the device's download of 64 KiB and of 4 MiB completes (it should not grow)."""
from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

PACKAGES = ("cbor", "coap", "cose", "crypto", "store", "suit")
HEAP_LADDER = (48, 64, 80, 96, 128, 160)

VM_DOWNLOAD = r'''
import sys, time, asyncio, gc
from coap.endpoint import Endpoint
from coap.udp import UDPTransport
from store import FileStore
from suit.ota import Updater
from suit.spool import FileSpool
import suit.ota_run as run
host, port, path, szx = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
async def main():
    ep = Endpoint(UDPTransport(("127.0.0.1", 0)), szx=szx).start()
    up = Updater(ep, None, FileStore("state"), b"bench", (host, port), FileSpool("."), szx=szx)
    gc.collect()
    t0 = time.ticks_ms()
    n = await run.download(up, 0, "coap://%s:%d%s" % (host, port, path), 0, None, [b"", 0, None, 0], 0)
    dt = time.ticks_diff(time.ticks_ms(), t0)
    print("RUN", n, dt)
asyncio.run(main())
'''


def _compile(ctx, out: Path) -> None:
    cross = Path(ctx.mpvm.micropython_binary()).parent / "mpy-cross"
    for pkg in PACKAGES:
        root = ctx.repo / "lib" / pkg
        for src in sorted(root.rglob("*.py")):
            if src.name == "manifest.py" or "viper" in src.name or "_cpython" in src.name:
                continue
            dst = out / src.relative_to(root).with_suffix(".mpy")
            dst.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([str(cross), "-o", str(dst), str(src)], check=True)


class _Server:
    """The update server on its own loop in a thread, with one poll campaign per payload."""

    def __init__(self, tmp: Path, payloads: dict[str, Path]):
        import cbor2
        from hourglass import cli
        from hourglass import keys as hk
        from hourglass.suit_server import Campaigns, UpdateServer
        from hourglass.suit_store import Store
        key = hk.generate(hk.algs.HMAC_256_256, b"bench")
        (tmp / "k.key").write_bytes(cbor2.dumps(key, canonical=True))
        self.store = Store(tmp / "bench.db")
        for name, path in payloads.items():
            (tmp / f"{name}.json").write_text(
                '{"vendor-id": "00", "class-id": "00", "sequence-number": 1, "component": [{"id": ["x"], '
                f'"file": "{path}", "uri": "coap://127.0.0.1/suit/p/{name}/p"}}]}}')
            assert cli.main(["suit", "build", str(tmp / f"{name}.json"), "-k", str(tmp / "k.key"),
                             "-o", str(tmp / f"{name}.suit")]) == 0
            Campaigns(self.store).push(name, (tmp / f"{name}.suit").read_bytes(), key, {"p": path},
                                       {"bench": None}, mode="poll")
        import socket
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.server = UpdateServer(self.store, "127.0.0.1", self.port)
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()
        self.ready.wait(20)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.start())
        self.ready.set()
        self.loop.run_forever()

    def stop(self):
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(20)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.th.join(10)


def _vm(ctx, mpy: Path, cwd: Path, args, heap="256k", timeout=600):
    f = mpy / "dl.py"
    f.write_text(VM_DOWNLOAD)
    env = dict(os.environ, MICROPYPATH=f".frozen:{mpy}")
    return subprocess.run([ctx.mpvm.micropython_binary(), "-X", f"heapsize={heap}", str(f), *map(str, args)],
                          env=env, capture_output=True, timeout=timeout, cwd=str(cwd))


def run(ctx) -> list[dict]:
    from hourglass.common import find_executable
    out: list[dict] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-suit-ota-"))
    try:
        mpy = tmp / "mpy"
        _compile(ctx, mpy)
        sizes = {"m1": 1 << 20, "k64": 64 << 10, "m4": 4 << 20}
        paths = {}
        for name, n in sizes.items():
            paths[name] = tmp / f"{name}.bin"
            paths[name].write_bytes(os.urandom(n))
        srv = _Server(tmp, paths)
        try:
            dev = tmp / "dev"
            dev.mkdir()
            szx = 6
            p = _vm(ctx, mpy, dev, ("127.0.0.1", srv.port, "/suit/p/m1/p", szx))
            ours = None
            if b"RUN" in p.stdout:
                n, ms = map(int, p.stdout.split(b"RUN")[1].split()[:2])
                ours = n / (ms / 1000)
                assert (dev / ".suit" / "dl" / "0").read_bytes() == paths["m1"].read_bytes()
            client = find_executable("coap-client-notls")
            t0 = time.monotonic()
            cp = subprocess.run([client, "-m", "get", "-b", str(16 << szx), "-o", str(tmp / "cc.bin"),
                                 f"coap://127.0.0.1:{srv.port}/suit/p/m1/p"], capture_output=True, timeout=600)
            dt = time.monotonic() - t0
            ref = (1 << 20) / dt if (tmp / "cc.bin").exists() and \
                (tmp / "cc.bin").read_bytes() == paths["m1"].read_bytes() else None
            out.append({"name": "OTA download of 1 MiB, 1024-byte blocks: the device (suit.ota_run on the VM) vs "
                        "coap-client-notls, same server", "runtime": "micropython",
                        "value": round(ours) if ours else None, "unit": "B/s",
                        "target": ">= 0.8x coap-client-notls",
                        "note": f"coap-client-notls {round(ref) if ref else 'failed'} B/s; ratio "
                                f"{ours / ref:.2f}" if ours and ref else f"failed: {p.stderr[-300:]!r} {cp.stderr[-200:]!r}"})
            for name, label in (("k64", "64 KiB"), ("m4", "4 MiB")):
                smallest = None
                for kib in HEAP_LADDER:  # a run that runs out of heap may hang in its loop: a short timeout
                    d = tmp / f"dev-{name}-{kib}"
                    d.mkdir()
                    try:
                        q = _vm(ctx, mpy, d, ("127.0.0.1", srv.port, f"/suit/p/{name}/p", szx), heap=f"{kib}k",
                                timeout=60)
                        done = q.returncode == 0 and b"RUN" in q.stdout
                    except subprocess.TimeoutExpired:
                        done = False
                    shutil.rmtree(d, ignore_errors=True)
                    if done:
                        smallest = kib
                        break
                out.append({"name": f"OTA download of {label} on the VM: smallest heap of {HEAP_LADDER} KiB "
                            "that completes it", "runtime": "micropython", "value": smallest, "unit": "KiB",
                            "target": "flat (64 KiB vs 4 MiB)",
                            "note": "interpreter, endpoint, client and spool included; 64-bit VM (about half on "
                                    "a board)"})
        finally:
            srv.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
