"""OSCORE end to end through the serial line: our OSCORE server on coap.serial.SerialTransport (on the MicroPython
VM, and on CPython) with its console on a pty, `hourglass gateway` bridging the pty to UDP, and aiocoap's OSCORE
client on the other side. The gateway only relays: protection holds across the hop (GET with a query, Block2 of
3000 bytes, PUT with Block1, Observe), and the board's text still comes out of the gateway."""
from __future__ import annotations

import asyncio
import os
import subprocess

import pytest

from hourglass import mpvm
from test_coap_serial_pty import Board, GatewayProc
from test_oscore_interop import DEVICE_ID, PEER_ID, SALT, SECRET, vm_env, write_aiocoap_context

aiocoap = pytest.importorskip("aiocoap")

BOARD = r'''
import sys
if sys.implementation.name == "micropython" and ".frozen" not in sys.path:
    sys.path.append(".frozen")
import asyncio, binascii
from coap.serial import SerialTransport
from coap.server import Server
from oscore import Context
from oscore.transform import Oscore

h = binascii.unhexlify
ctx = Context(h("SECRET"), h("SALT"), h("DEVICE"), h("PEER"))
state = {"r": b"initial", "n": 0}
BIG = bytes(i * 7 & 255 for i in range(3000))


def put_r(req):
    state["r"] = bytes(req.payload)
    print("put /r: %d bytes" % len(state["r"]))


async def notifier(s, obs):
    while True:
        await asyncio.sleep(0.2)
        state["n"] += 1
        s.notify(obs)


async def main():
    s = Server(SerialTransport())
    s.transform = Oscore([ctx], require=("/",))
    s.route("/hello", get=lambda req: ("hello " + "&".join(req.query())).encode())
    s.route("/r", get=lambda req: state["r"], put=put_r, max_body=8192)
    s.route("/big", get=lambda req: BIG)
    obs = s.route("/obs", get=lambda req: ("n=%d" % state["n"]).encode(), observable=True)
    s.start()
    print("board ready")
    asyncio.create_task(notifier(s, obs))
    while True:
        await asyncio.sleep(1)
        print("seq %d" % ctx.seq)


asyncio.run(main())
'''.replace("SECRET", SECRET.hex()).replace("SALT", SALT.hex()).replace("DEVICE", DEVICE_ID.hex()).replace(
    "PEER", PEER_ID.hex())


class OscoreBoard(Board):
    def start(self):
        if self.runtime != "micropython":
            return super().start()
        # lib as .mpy, 192k: the serial test server keeps 3000-byte bodies (heap figures: the benchmark)
        cmd = [mpvm.micropython_binary(), "-X", "heapsize=192k", str(self.path)]
        self.proc = subprocess.Popen(cmd, stdin=self.master, stdout=self.master, stderr=subprocess.PIPE,
                                     env=vm_env(), cwd=mpvm.REPO)
        os.close(self.master)
        return self


@pytest.mark.parametrize("runtime", ["micropython", "cpython"])
def test_aiocoap_oscore_through_the_serial_gateway(runtime, tmp_path):
    board = OscoreBoard(tmp_path, runtime, BOARD)
    gw = GatewayProc(board.tty, "-v", "--log", str(tmp_path / "board.log"))
    try:
        board.start()
        try:
            gw.wait_text("board ready")
        except AssertionError:
            raise AssertionError(board.stderr())
        creddir = write_aiocoap_context(tmp_path / "peer-ctx", PEER_ID, DEVICE_ID)
        u = gw.url
        body = bytes((i * 3 + 1) & 255 for i in range(2000))

        async def main():
            ctx = await aiocoap.Context.create_client_context()
            ctx.client_credentials.load_from_dict({f"{u}/*": {"oscore": {"basedir": str(creddir) + "/"}}})
            try:
                r = await ctx.request(aiocoap.Message(code=aiocoap.GET, uri=f"{u}/hello?via=serial")).response
                assert r.code == aiocoap.CONTENT and r.payload == b"hello via=serial"
                r = await ctx.request(aiocoap.Message(code=aiocoap.GET, uri=f"{u}/big")).response
                assert r.payload == bytes(i * 7 & 255 for i in range(3000))
                r = await ctx.request(aiocoap.Message(code=aiocoap.PUT, uri=f"{u}/r", payload=body)).response
                assert r.code == aiocoap.CHANGED
                r = await ctx.request(aiocoap.Message(code=aiocoap.GET, uri=f"{u}/r")).response
                assert r.payload == body
                req = ctx.request(aiocoap.Message(code=aiocoap.GET, uri=f"{u}/obs", observe=0))
                seen = [(await req.response).payload]
                async for n in req.observation:
                    seen.append(n.payload)
                    if len(seen) >= 5:
                        req.observation.cancel()
                        break
                assert len(set(seen)) == 5, seen
            finally:
                await ctx.shutdown()
            # without OSCORE the board refuses
            plain = await aiocoap.Context.create_client_context()
            try:
                r = await plain.request(aiocoap.Message(code=aiocoap.GET, uri=f"{u}/hello")).response
                assert r.code == aiocoap.UNAUTHORIZED
            finally:
                await plain.shutdown()

        asyncio.run(asyncio.wait_for(main(), 120))
        gw.wait_text("put /r: 2000 bytes")
        gw.wait_text("seq ")
    finally:
        gw.stop()
        board.close()
    assert "Traceback" not in gw.text(), gw.text()
