"""The device agent (firmware/) on the ESP32_GENERIC-OTA virtual board, as the board build deploys it (.mpy), with
each failure path injected: a configuration with bad members, the controller down (then up), a full filesystem
(then room again), a MemoryError in a task. In every case the agent keeps answering, retries with backoff, and
gets there once the fault is gone. (A bad update is the demo's last phase: test_demo.py.)

The VM heap is 464k: the whole agent does not fit the ESP32's 2 x 56 KiB (README, board matrix)."""
from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
from pathlib import Path

import aiocoap
import aiocoap.resource
import cbor2
import pytest

from hourglass import boards, build, vboard
from hourglass.common import BuildLayout
from hourglass.common import board_udp_port, free_udp_port
from hourglass.demo import CLASS, VENDOR, Console

BOARD = "ESP32_GENERIC-OTA"
HEAP = "464k"
_FS: dict[str, Path] = {}


def _fs(tmp_root: Path) -> Path:
    if "fs" not in _FS:
        out = tmp_root / "agent-build"
        build.build(boards.load_board(BOARD), out=out, arch=build.host_arch())
        _FS["fs"] = BuildLayout(BOARD, out).fs_dir
    return _FS["fs"]


@pytest.fixture(scope="module")
def fs_tree(tmp_path_factory):
    return _fs(tmp_path_factory.mktemp("agent"))


def _flash(tmp_path: Path, fs_tree: Path, cfg: dict | str) -> tuple[Path, int]:
    flash = tmp_path / "flash"
    shutil.copytree(fs_tree, flash)
    port = board_udp_port()
    if isinstance(cfg, dict):
        cfg = json.dumps({"port": port, "vendor": VENDOR, "class": CLASS, **cfg})
    (flash / "config.json").write_text(cfg)
    return flash, port


async def _get(port: int, path: str, timeout: float = 20):
    ctx = await aiocoap.Context.create_client_context()
    try:
        return await asyncio.wait_for(ctx.request(aiocoap.Message(
            code=aiocoap.GET, uri=f"coap://127.0.0.1:{port}{path}")).response, timeout)
    finally:
        await ctx.shutdown()


async def _health(port: int) -> dict:
    r = await _get(port, "/health")
    assert r.code == aiocoap.CONTENT, r
    return cbor2.loads(r.payload)


class Host:
    """The CoAP-EAP controller and EAP-NOOB server (SQLite), started when the test says so."""

    def __init__(self, d: Path, port: int, lifetime: int = 0):
        from hourglass import noob_server as ns
        from hourglass.noob_db import Database
        self.d, self.port = d, port
        self.db = Database(d / "noob.sqlite")
        info = '{"Type":"hourglass","ServerURL":"https://hourglass.local/oob"}'
        self.server = ns.NoobServer(info, registry=self.db, dirs=3, sleep_time=1)
        self.controller = None
        self.lifetime = lifetime

    async def start(self):
        from hourglass.noob_controller import Controller
        self.controller = Controller(self.server, self.db, self.d / "state", lifetime=self.lifetime)
        await self.controller.start(("127.0.0.1", self.port))

    async def register(self, con: Console, timeout: float = 90):
        m = await con.wait(r"^OOB (\S+)$", timeout)
        end = time.monotonic() + timeout
        while not self.server.accept_oob(m.group(1)):
            assert time.monotonic() < end, "the server never took the device's OOB message"
            await asyncio.sleep(0.1)
        while not self.controller.contexts:
            assert time.monotonic() < end, "the device did not become Registered:\n" + con.tail(30)
            await asyncio.sleep(0.1)

    async def close(self):
        if self.controller:
            await self.controller.close()


def _run(coro):
    asyncio.run(asyncio.wait_for(coro, 240))


def test_bad_config_is_reported_and_safe_defaults_used(tmp_path, fs_tree):
    flash, port = _flash(tmp_path, fs_tree, {})
    cfg = {"port": port, "vendor": VENDOR, "class": CLASS, "log": "loud", "poll": -5, "sensor": {"period": "soon"},
           "wifi": {"ssid": 7, "password": "hunter2-secret"}, "colour": "blue"}
    (flash / "config.json").write_text(json.dumps(cfg))

    async def main():
        with vboard.VirtualBoard(flash, BOARD, heap=HEAP) as vb:
            con = Console(vb.port)
            try:
                await con.wait("agent: ready", 60)
                text = con.text()
                for needle in ("config log='loud' is not valid: default 'info' used", "config poll=-5 is not valid",
                               "config sensor.period='soon' is not valid", "config wifi.ssid=7 is not valid",
                               "config colour is unknown"):
                    assert needle in text, text
                assert "hunter2" not in text
                h = await _health(port)
                assert h["app"] == 1 and h["registered"] is False
            finally:
                con.close()

        # not JSON at all: one clear line, and the defaults (port 5683 is the default, so only the message)
        (flash / "config.json").write_text("{port: 5683")
        with vboard.VirtualBoard(flash, BOARD, heap=HEAP) as vb:
            con = Console(vb.port)
            try:
                await con.wait("config.json is not JSON", 60)
                await con.wait("agent: ready", 60)
            finally:
                con.close()
    _run(main())


def test_controller_down_then_up_and_a_full_filesystem(tmp_path, fs_tree):
    """The controller is not there (its port answers ICMP unreachable) and the filesystem is full: the agent
    answers /health throughout and retries; with the controller up and room again it bootstraps."""
    ctrl_port = free_udp_port()
    flash, port = _flash(tmp_path, fs_tree, {"controller": ["127.0.0.1", ctrl_port], "noob": {"retry": 1}})
    b = boards.load_board(BOARD)
    filler = flash / "filler.bin"
    total = b.fs_block_size * b.fs_block_count
    used = sum(p.stat().st_size for p in flash.rglob("*") if p.is_file())
    filler.write_bytes(b"\xff" * (total - used - 4 * b.fs_block_size))  # less room than the state records need
    host = Host(tmp_path, ctrl_port)

    async def main():
        with vboard.VirtualBoard(flash, BOARD, heap=HEAP) as vb:
            con = Console(vb.port)
            try:
                await con.wait("agent: ready", 60)
                await asyncio.sleep(3)  # announcements into the void
                h = await _health(port)
                assert h["registered"] is False and h["fs_free"] < 8 * b.fs_block_size
                await host.start()  # the controller comes up: the device talks, but cannot store its state
                await asyncio.sleep(4)
                assert (await _health(port))["app"] == 1  # still answering
                filler.unlink()  # room again
                await host.register(con)
                r = await _get(port, "/health")  # OSCORE-only once registered
                assert r.code == aiocoap.UNAUTHORIZED
                assert "Traceback" not in con.text(), con.text()
            finally:
                con.close()
                await host.close()
    _run(main())


def test_memory_error_in_a_task_is_survived(tmp_path, fs_tree):
    """A sensor driver that runs out of memory twice: the sensor task logs it, backs off and starts again; the
    other tasks and the endpoint never stop."""
    flash, port = _flash(tmp_path, fs_tree, {"sensor": {"kind": "module:flaky", "period": 1},
                                             "controller": ["127.0.0.1", free_udp_port()], "log": "debug"})
    (flash / "flaky.py").write_text(
        "n = 0\n\n\ndef read():\n    global n\n    n += 1\n    if n <= 2:\n"
        "        raise MemoryError('injected')\n    return 20 + n\n")

    async def main():
        with vboard.VirtualBoard(flash, BOARD, heap=HEAP) as vb:
            con = Console(vb.port)
            try:
                await con.wait("agent: ready", 60)
                await con.wait("sensor out of memory; again in 1000 ms", 30)
                await con.wait("sensor out of memory; again in 2000 ms", 30)
                assert (await _health(port))["app"] == 1
                end = time.monotonic() + 30
                while True:
                    r = await _get(port, "/sensor/temp")
                    if r.code == aiocoap.CONTENT:
                        break
                    assert time.monotonic() < end, r
                    await asyncio.sleep(0.5)
                value, unit, version = cbor2.loads(r.payload)
                assert value >= 23 and unit == "Cel" and version == 1
                # the endpoint's errors are logged at debug: after answering it lingers for the next request
                # through the agent's byte counter (recv_now(ms), as coap.udp's: a TypeError on every request once)
                assert "coap: TypeError" not in con.text(), con.tail(20)
            finally:
                con.close()
    _run(main())


def test_registered_agent_rekeys_and_loads_eap_noob_only_for_it(tmp_path, fs_tree):
    """After EAP-Success the agent restarts on a clean heap, registered, without EAP-NOOB; before the session ends
    it re-keys (EAP-NOOB Reconnect): the peer is loaded again from its record, the new OSCORE context works, and
    the agent restarts again without it."""
    ctrl_port = free_udp_port()
    flash, port = _flash(tmp_path, fs_tree, {"controller": ["127.0.0.1", ctrl_port], "noob": {"retry": 2},
                                             "log": "debug"})
    host = Host(tmp_path, ctrl_port, lifetime=15)  # re-key at 90 % of the lifetime

    async def main():
        with vboard.VirtualBoard(flash, BOARD, heap=HEAP) as vb:
            con = Console(vb.port)
            try:
                await host.start()
                await con.wait("agent: ready", 60)
                await host.register(con)
                peer_id = next(iter(host.controller.contexts))
                first = host.controller.contexts[peer_id]
                await con.wait("restarting on a clean heap", 30)
                await con.wait(r"peer state \(not loaded\) registered", 30)
                # the re-key: a Reconnect, a new context, and the second restart
                await con.wait("restarting on a clean heap", 60, count=2)
                assert host.controller.contexts[peer_id] is not first
                await con.wait(r"peer state \(not loaded\) registered", 30, count=2)
                text = con.text()
                after = text.split("restarting on a clean heap")[1]
                assert "peer state 4 registered" in after  # the Reconnect loaded the peer from its record
                assert "OOB " not in after  # and never the OOB step
                # a boot that installed nothing keeps no update code but suit.ota (the spool loads for an update)
                mods = re.search(r"modules: (.*) heap", text.split("restarting on a clean heap")[1]).group(1).split()
                assert "suit.ota" in mods and "suit.spool" not in mods and "eapnoob" not in mods, mods
                r = await host.controller.request(peer_id, aiocoap.GET, "/health")
                assert r.code == aiocoap.CONTENT and cbor2.loads(r.payload)["registered"] is True
                assert "Traceback" not in text, text
            finally:
                con.close()
                await host.close()
    _run(main())


def test_memory_error_in_the_boot_verdict_restarts_and_decides_again(tmp_path, fs_tree):
    """The first boot after an update runs out of memory in its verdict (here: the new app's health check): the
    agent never stops at its REPL; it restarts on a clean heap, the verdict runs again (the update's record is
    still there), confirms and reports to the update server."""
    import hashlib

    suit_port = free_udp_port()
    flash, port = _flash(tmp_path, fs_tree, {"controller": ["127.0.0.1", free_udp_port()],
                                             "suit": ["127.0.0.1", suit_port], "health_deadline": 30})
    (flash / "app.py").write_text(
        "VERSION = 2\n\n\ndef healthy():\n    import os\n    try:\n        os.stat('oom-once')\n"
        "    except OSError:\n        open('oom-once', 'w').close()\n        raise MemoryError('injected')\n"
        "    return True\n\n\ndef describe(value):\n    return [value, 'Cel', VERSION]\n")
    (flash / "app.mpy").unlink(missing_ok=True)
    from hourglass import keys as hk
    key = hk.generate(hk.ALG_NAMES["ES256"], b"verdict")  # the trust anchor the processor is made with
    (flash / "anchor.cbor").write_bytes(cbor2.dumps(hk.public_of(key), canonical=True))
    for d in (".suit/old", ".suit/stage"):  # the bundle driver's folders, the old files gone already
        (flash / d).mkdir(parents=True, exist_ok=True)
    state = flash / ".hg"
    state.mkdir(exist_ok=True)
    pend = cbor2.dumps({0: "bundle", 1: 1, 2: cbor2.dumps([-16, bytes(32)]), 4: "restart"})
    (state / "suit-pend").write_bytes(pend + hashlib.sha256(pend).digest()[:4])  # lib/store's framing
    reports = []

    class Report(aiocoap.resource.Resource):
        async def render_post(self, request):
            reports.append(cbor2.loads(request.payload))
            return aiocoap.Message(code=aiocoap.CHANGED)

    async def main():
        site = aiocoap.resource.Site()
        site.add_resource(["suit", "report"], Report())
        server = await aiocoap.Context.create_server_context(site, bind=("127.0.0.1", suit_port), transports=["udp6"])
        try:
            with vboard.VirtualBoard(flash, BOARD, heap=HEAP) as vb:
                con = Console(vb.port)
                try:
                    await con.wait("boot verdict out of memory; restarting on a clean heap", 60)
                    await con.wait("update: boot confirmed", 60)
                    await con.wait("agent: ready", 60)
                    assert (await _health(port))["app"] == 2
                    assert [r[6] for r in reports] == ["confirmed"] and reports[0][3] is True
                    assert "Traceback" not in con.text(), con.text()
                finally:
                    con.close()
        finally:
            await server.shutdown()
    _run(main())
