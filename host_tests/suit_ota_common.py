"""Shared pieces of the SUIT-over-the-air tests: keys, envelopes, an update server on a free port."""
from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import cbor2

from hourglass import cli
from hourglass import keys as hk
from hourglass.suit_server import Campaigns, UpdateServer
from hourglass.suit_store import Store

VENDOR = "fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe"
CLASS = "1492af14-2569-5e48-bf42-9b2d51f2ab45"
IDENTITY = {1: bytes.fromhex(VENDOR.replace("-", "")), 2: bytes.fromhex(CLASS.replace("-", ""))}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
        self.port = port or free_port()
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
