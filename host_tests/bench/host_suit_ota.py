"""SUIT over the air, host scenarios: the device's Block2 download (suit.ota_run on lib/coap, .mpy on the VM) of
a 1 MiB payload from `hourglass suit serve`'s server (aiocoap, payload read from disk per block) against
libcoap's coap-client-notls fetching the same payload from the same server with the same block size (rounds
interleaved, the best of each: the machine's load shows in the spread, noted); the smallest VM heap in which
the device's download of 64 KiB and of 4 MiB completes (it should not grow); and a whole update of a 1 MiB
firmware image on the ESP32_GENERIC-OTA virtual board (push, download, install at boot, restart, confirm):
the time of each phase (the server's moments), the live heap at each phase, and the smallest VM heap in which
the whole update passes, with the phase that fails below it."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from hourglass.common import board_udp_port

PACKAGES = ("cbor", "coap", "cose", "crypto", "store", "suit")
HEAP_LADDER = (48, 64, 68, 72, 76, 80, 84, 88, 92, 96, 112, 128, 160)  # KiB: 4 KiB steps where the peak lies
ROUNDS = 5
UPDATE_LADDER = (112, 116, 120, 124, 128, 132, 136, 140, 144, 152, 160, 176)  # KiB of VM heap for the whole update
INSTALL_LADDER = (96, 104, 112, 120, 128, 136, 144, 152, 160)  # KiB for the install at boot and the confirmation

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
            szx = 6
            client = find_executable("coap-client-notls")
            ours, ref, ratios, err = [], [], [], ""
            for i in range(ROUNDS):  # interleaved, so both sides see the same load
                dev = tmp / f"dev{i}"
                dev.mkdir()
                p = _vm(ctx, mpy, dev, ("127.0.0.1", srv.port, "/suit/p/m1/p", szx))
                t0 = time.monotonic()
                cp = subprocess.run([client, "-m", "get", "-b", str(16 << szx), "-o", str(tmp / "cc.bin"),
                                     f"coap://127.0.0.1:{srv.port}/suit/p/m1/p"], capture_output=True, timeout=600)
                dt = time.monotonic() - t0
                if b"RUN" not in p.stdout or (dev / ".suit" / "dl" / "0").read_bytes() != paths["m1"].read_bytes():
                    err = f"device failed: {p.stderr[-300:]!r}"
                    break
                if not (tmp / "cc.bin").exists() or (tmp / "cc.bin").read_bytes() != paths["m1"].read_bytes():
                    err = f"coap-client-notls failed: {cp.stderr[-200:]!r}"
                    break
                n, ms = map(int, p.stdout.split(b"RUN")[1].split()[:2])
                ours.append(n / (ms / 1000))
                ref.append((1 << 20) / dt)
                ratios.append(ours[-1] / ref[-1])
                shutil.rmtree(dev, ignore_errors=True)
            best = max(ours) / max(ref) if ours and not err else None
            out.append({"name": "OTA download of 1 MiB, 1024-byte blocks: the device (suit.ota_run on the VM) vs "
                        "coap-client-notls, same server", "runtime": "micropython",
                        "value": round(max(ours)) if best else None, "unit": "B/s",
                        "target": ">= 0.8x coap-client-notls",
                        "note": f"best of {ROUNDS} interleaved rounds each; coap-client-notls {round(max(ref))} B/s; "
                                f"ratio {best:.2f} (per round {min(ratios):.2f}-{max(ratios):.2f})" if best
                                else err})
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
        out += _whole_update(ctx, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _whole_update(ctx, tmp: Path) -> list[dict]:
    """A pushed 1 MiB firmware image on the ESP32_GENERIC-OTA virtual board (the tests' app), per phase; then
    the smallest heap of UPDATE_LADDER in which a whole (150 KB) update passes."""
    import sys
    sys.path.insert(0, str(ctx.repo / "host_tests"))
    import suit_ota_common as common
    from hourglass import vboard
    from hourglass.suit_store import PHASES
    rows = []

    def once(d: Path, heap: str | None, size: int, alg: str = "ES256", timeout: float = 300):
        from hourglass import keys as hk
        d.mkdir()
        key, pub = common.write_key(d, "k", getattr(hk.algs, alg))

        async def go():
            fleet = await common.Fleet(d).start()
            dev_port = board_udp_port()
            cfg = {"kind": "ota", "device": "dev1", "server": ["127.0.0.1", fleet.port], "port": dev_port, "szx": 6,
                   "deadline": 20000}
            vb = vboard.VirtualBoard(common.flash_board(d, tmp, cfg, pub), "ESP32_GENERIC-OTA", heap=heap)
            vb.start()
            con = common.Console(vb.port)
            try:
                await con.wait("OTA ready", timeout=60)
                (d / "fw.bin").write_bytes(common.image(size, 1))
                env = common.build(d, "fw", 1, [{"id": ["firmware"], "file": "fw.bin", "uri": fleet.uri("fw", "fw")}],
                                   key)
                import cbor2
                fleet.campaigns.push("fw", env, cbor2.loads(key.read_bytes()), {"fw": d / "fw.bin"},
                                     {"dev1": f"127.0.0.1:{dev_port}"})
                row = await fleet.wait_state("fw", "dev1", ("confirmed", "failed"), timeout)
                if row["state"] != "confirmed":
                    return row["message"], None, None, con.text()
                await con.wait("OTA boot confirmed", timeout=30)
                await con.wait("OTA ready", 3, timeout=30)  # restarts: the download's boot, after the verdict
                heap_now = await common.read_heap(f"coap://127.0.0.1:{dev_port}/heap")
                return None, fleet.campaigns.phases("fw")[0], heap_now, con.text()
            except AssertionError as e:
                return str(e).splitlines()[0], None, None, con.text()
            finally:
                con.close()
                vb.stop()
                await fleet.stop()
        return asyncio.run(go())

    heap = common.ESP32_UPDATE_HEAP
    err, phases, heap_now, console = once(tmp / "whole", heap, 1 << 20)
    for phase, _, _ in PHASES + (("total", None, None),):
        rows.append({"name": f"OTA push to confirmed of a 1 MiB firmware image (ESP32_GENERIC-OTA virtual board, "
                     f"{heap} VM heap): {phase}", "runtime": "micropython",
                     "value": round(phases[phase], 2) if phases and phases[phase] is not None else None, "unit": "s",
                     "target": "", "note": "the server's moments (suit_store.PHASES); install: download end to "
                     "the device's install report (a soft reset, the install at boot, a hard reset)"
                     if phases else f"failed: {err}; {console[-300:]!r}"})
    if heap_now:
        live = ", ".join(f"{k} {v[0]:,}" for k, v in heap_now[3].items())
        boots = [line.split("heap")[1].split()[0] for line in console.splitlines() if "OTA phase" in line]
        rows.append({"name": "OTA update on the ESP32_GENERIC-OTA virtual board: live VM heap at each phase",
                     "runtime": "micropython", "value": max(int(b) for b in boots), "unit": "B",
                     "target": "", "note": f"after a collection, at the last boot: {live}; every phase line: "
                     + " ".join(boots)})
    rows.append(_install_ladder(tmp, common, vboard))
    # the signature's verification is the trigger's largest part: every algorithm a manifest may use
    for alg in ("ES256", "ESP256", "ED25519", "HSS_LMS", "HMAC_256_256"):
        smallest, below = None, ""
        for kib in UPDATE_LADDER:
            # (a 150 KB update takes seconds; short of heap, its datagrams fail and it stalls: a minute at most)
            err, phases, _, console = once(tmp / f"ladder-{alg}-{kib}", f"{kib}k", 150_000, alg, 60)
            if phases:
                smallest = kib
                break
            below = f"at {kib}k: {err}"
        rows.append({"name": f"OTA update of a 150 KB firmware image ({alg}), ESP32_GENERIC-OTA virtual board: "
                     f"smallest VM heap of {UPDATE_LADDER} KiB that passes", "runtime": "micropython",
                     "value": smallest, "unit": "KiB", "target": "the board's budget (VM 112k + 8k + 8k)",
                     "note": below or "passes at the first"})
    return rows


def _install_ladder(tmp: Path, common, vboard) -> dict:
    """The install at boot and the confirmation alone: a 150 KB image is pushed and downloaded at the tests'
    heap with the app holding the install ("hold_install"); then, from a copy of that flash, the board boots
    at each heap of INSTALL_LADDER and installs, restarts into the image and confirms it."""
    import cbor2
    d = tmp / "install"
    d.mkdir()
    key, pub = common.write_key(d, "k")

    async def download():
        fleet = await common.Fleet(d).start()
        dev_port = board_udp_port()
        cfg = {"kind": "ota", "device": "dev1", "server": ["127.0.0.1", fleet.port], "port": dev_port, "szx": 6,
               "deadline": 20000, "hold_install": True}
        flash = common.flash_board(d, tmp, cfg, pub)
        vb = vboard.VirtualBoard(flash, "ESP32_GENERIC-OTA", heap=common.ESP32_UPDATE_HEAP)
        vb.start()
        con = common.Console(vb.port)
        try:
            await con.wait("OTA ready", timeout=60)
            (d / "fw.bin").write_bytes(common.image(150_000, 2))
            env = common.build(d, "fw", 1, [{"id": ["firmware"], "file": "fw.bin", "uri": fleet.uri("fw", "fw")}],
                               key)
            fleet.campaigns.push("fw", env, cbor2.loads(key.read_bytes()), {"fw": d / "fw.bin"},
                                 {"dev1": f"127.0.0.1:{dev_port}"})
            await con.wait("OTA holding", 3, timeout=120)  # the download's boot, downloaded, soft reset, held
        finally:
            con.close()
            vb.stop()
            await fleet.stop()
        return flash, cfg

    async def install(flash: Path, heap: str) -> tuple[bool, str]:
        vb = vboard.VirtualBoard(flash, "ESP32_GENERIC-OTA", heap=heap)
        vb.start()
        con = common.Console(vb.port)
        try:
            await con.wait("OTA ready", timeout=60)  # printed after the boot's verdict
            return "OTA boot confirmed" in con.text(), con.text()[-120:]
        except AssertionError:
            return False, con.text()[-120:]
        finally:
            con.close()
            vb.stop()

    async def go():
        flash, cfg = await download()
        fleet = await common.Fleet(d, cfg["server"][1]).start()  # the same server: the health check pings it
        smallest, below = None, ""
        try:
            for kib in INSTALL_LADDER:
                at = d / f"at-{kib}"
                shutil.copytree(flash, at / "flash")
                for suffix in (".ota", ".otadata"):
                    shutil.copy(flash.with_name(flash.name + suffix), at / ("flash" + suffix))
                (at / "flash" / "ota.json").write_text(json.dumps(
                    {**json.loads((flash / "ota.json").read_text()), "hold_install": False}))
                ok, tail = await install(at / "flash", f"{kib}k")
                if ok:
                    smallest = kib
                    break
                last = fleet.campaigns.reports("dev1")[-1]
                below = f"at {kib}k: {last['phase']}: {last['message']} ({tail!r})"
        finally:
            await fleet.stop()
        return smallest, below

    smallest, below = asyncio.run(go())
    return {"name": f"OTA install at boot, restart into the image and confirmation (150 KB image, ESP32_GENERIC-OTA "
            f"virtual board): smallest VM heap of {INSTALL_LADDER} KiB", "runtime": "micropython",
            "value": smallest, "unit": "KiB", "target": "the board's budget (VM 112k + 8k + 8k)",
            "note": below or "passes at the first"}
