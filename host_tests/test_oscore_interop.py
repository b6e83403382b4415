"""OSCORE interop with aiocoap (pinned in requirements.lock, with its [oscore] extra) over 127.0.0.1, our side
on the MicroPython VM:

- aiocoap (its Python API, and `aiocoap-client --credentials`) -> our OSCORE server on the VM: GET with a query,
  POST, PUT with Block1 and GET with Block2 (3000 bytes), Observe (6 notifications), an unknown context; then the
  VM server restarts from its persisted state and aiocoap's next request goes through the Echo round trip. A
  relay in this process records every datagram: no Partial IV is ever sent twice by the same sender.
- our client on the VM -> an aiocoap OSCORE server (OscoreSiteWrapper): the same requests and Observe.
The security contexts are written in aiocoap's credential format (a directory with settings.json).
"""
from __future__ import annotations

import asyncio
import gc
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hourglass import mpvm
from hourglass.common import free_udp_port

aiocoap = pytest.importorskip("aiocoap")
pytest.importorskip("cryptography")

SECRET = bytes(range(1, 17))
SALT = bytes.fromhex("9e7ca92223786340")
DEVICE_ID = b"D"  # the VM side's Sender ID
PEER_ID = b"P"    # aiocoap's Sender ID

VM_SERVER = r'''
import sys, asyncio
from coap.udp import UDPTransport
from coap.transport import Params
from coap.server import Server
from coap.msg import Message
from coap import defs as D
from oscore import Context
from oscore.transform import Oscore, context_of
from store import FileStore
import binascii

port = int(sys.argv[1])
h = binascii.unhexlify
ctx = Context(h(sys.argv[2]), h(sys.argv[3]), h(sys.argv[4]), h(sys.argv[5]), store=FileStore(sys.argv[6]),
              name="peer", k=int(sys.argv[7]))
print("BOOT seq=%d synced=%d" % (ctx.seq, ctx.synced))
srv = Server(UDPTransport(("127.0.0.1", port), Params()))
srv.transform = Oscore([ctx], require=("/",))
srv.on_error = lambda e: sys.print_exception(e)
store = {"v": b"initial", "n": 0}


class Pattern:
    def __init__(self, size):
        self.size = size

    def read(self, off, n):
        n = min(n, self.size - off)
        b = bytearray(n)
        for i in range(n):
            b[i] = (off + i) * 7 & 255
        return b


def hello(req):
    c = context_of(req)
    return "hello %s via %s" % ("&".join(req.query()), binascii.hexlify(c.recipient_id).decode() if c else "-")


def put(req):
    store["v"] = bytes(req.payload)
    return (D.CHANGED, b"")


def post(req):
    store["n"] += 1
    return (D.CREATED, b"posted %d: %s" % (store["n"], bytes(req.payload)))


srv.route("/hello", get=hello)
srv.route("/data", get=lambda r: store["v"], put=put, post=post, max_body=16384)
srv.route("/big", get=lambda r: Pattern(3000))


def wide(req):
    # 1000 bytes (one inner block) and a 300-byte Location-Query: protected, over the link's 1280 bytes
    return Message(code=D.CONTENT, payload=bytes(Pattern(1000).read(0, 1000))).add(20, "q" * 300)


srv.route("/wide", get=wide)
tick = {"n": 0}
clock = srv.route("/clock", get=lambda r: b"tick %d" % tick["n"], observable=True)


def wide_clock(req):
    # notifications over the link's size, as /wide: they go in Outer Block2 blocks
    return Message(code=D.CONTENT, payload=b"tick %04d " % tick["n"] + bytes(990)).add(20, "q" * 300)


wide_clock_res = srv.route("/wideclock", get=wide_clock, observable=True)
srv.start()


async def main():
    print("READY")
    while True:
        await asyncio.sleep(0.2)
        tick["n"] += 1
        srv.notify(clock)
        if tick["n"] % 3 == 0:  # slower: a notification's blocks are fetched before the next one replaces it
            srv.notify(wide_clock_res)

asyncio.run(main())
'''

VM_CLIENT = r'''
import sys, asyncio, hashlib, binascii
from coap.udp import UDPTransport
from coap.transport import Params
from coap.client import Client
from coap import defs as D
from oscore import Context
from oscore import client as Q
from oscore.transform import Oscore

R = ("127.0.0.1", int(sys.argv[1]))
h = binascii.unhexlify
ctx = Context(h(sys.argv[2]), h(sys.argv[3]), h(sys.argv[4]), h(sys.argv[5]))


def body(n):
    b = bytearray(n)
    for i in range(n):
        b[i] = (i * 11 + 3) & 255
    return bytes(b)


async def main():
    c = Client(UDPTransport(("127.0.0.1", 0), Params()))
    c.transform = tf = Oscore(client=ctx)
    r = await Q.request(tf, c, D.GET, R, "/hello?who=vm&x=1")
    print("HELLO", r.code, bytes(r.payload).decode())
    r = await c.post(R, "/data", b"abc")
    print("POST", r.code, bytes(r.payload).decode())
    b = body(3000)
    r = await c.put(R, "/data", b, szx=3)
    print("PUT", r.code)
    h = hashlib.sha256()
    n = [0]

    def sink(off, data):  # a device streams a body (to flash, a hash) rather than holding it
        assert off == n[0]
        h.update(data)
        n[0] += len(data)
    r = await c.get(R, "/data", szx=3, sink=sink)
    print("GET", r.code, n[0], h.digest() == hashlib.sha256(b).digest())
    got = []
    o = await c.observe(R, "/clock", lambda m: got.append(bytes(m.payload).decode()))
    for _ in range(100):
        if len(got) >= 6:
            break
        await asyncio.sleep(0.1)
    await o.cancel()
    print("OBSERVE", "|".join(got))
    print("SEQ", ctx.seq)
    print("DONE 1")

asyncio.run(main())
'''

AIOCOAP_SERVER = r'''
import asyncio, sys
import aiocoap
import aiocoap.resource as resource
from aiocoap.credentials import CredentialsMap
from aiocoap.oscore_sitewrapper import OscoreSiteWrapper


class Hello(resource.Resource):
    async def render_get(self, request):
        return aiocoap.Message(payload=("hello " + "&".join(request.opt.uri_query)).encode())


class Data(resource.Resource):
    def __init__(self):
        super().__init__()
        self.v = b"initial"

    async def render_get(self, request):
        return aiocoap.Message(payload=self.v)

    async def render_put(self, request):
        self.v = request.payload
        return aiocoap.Message(code=aiocoap.CHANGED)

    async def render_post(self, request):
        return aiocoap.Message(code=aiocoap.CREATED, payload=b"posted " + request.payload)


class Clock(resource.ObservableResource):
    def __init__(self):
        super().__init__()
        self.n = 0

    async def tick(self):
        while True:
            await asyncio.sleep(0.2)
            self.n += 1
            self.updated_state()

    async def render_get(self, request):
        return aiocoap.Message(payload=b"tick %d" % self.n)


async def main():
    site = resource.Site()
    site.add_resource(["hello"], Hello())
    site.add_resource(["data"], Data())
    clock = Clock()
    site.add_resource(["clock"], clock)
    creds = CredentialsMap()
    creds.load_from_dict({":device": {"oscore": {"basedir": sys.argv[2]}}})
    ctx = await aiocoap.Context.create_server_context(OscoreSiteWrapper(site, creds),
                                                      bind=("127.0.0.1", int(sys.argv[1])),
                                                      transports=["oscore", "udp6"])
    asyncio.ensure_future(clock.tick())
    print("READY", flush=True)
    await asyncio.get_running_loop().create_future()

asyncio.run(main())
'''



def write_aiocoap_context(d: Path, sender: bytes, recipient: bytes) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "settings.json").write_text(json.dumps({
        "sender-id_hex": sender.hex(), "recipient-id_hex": recipient.hex(), "secret_hex": SECRET.hex(),
        "salt_hex": SALT.hex(), "algorithm": "AES-CCM-16-64-128"}))
    return d


def vm_args() -> list[str]:
    return [SECRET.hex(), SALT.hex(), DEVICE_ID.hex(), PEER_ID.hex()]


def vm_env() -> dict:
    """The lib packages our side needs, compiled with mpy-cross for the VM's CPU, as a board runs them."""
    env = dict(os.environ)
    env["MICROPYPATH"] = ".frozen:" + str(mpvm.compiled_packages(("coap", "oscore", "crypto", "store")))
    return env


def wait_line(proc: subprocess.Popen, marker: bytes, timeout=30.0) -> bytes:
    end = time.monotonic() + timeout
    buf = b""
    while time.monotonic() < end:
        r, _, _ = select.select([proc.stdout], [], [], 0.2)
        if r:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
            if marker in buf:
                return buf
        if proc.poll() is not None:
            break
    raise RuntimeError(f"no {marker!r} from the process: {buf!r}")


def stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return b"".join(f.read() or b"" for f in (proc.stdout, proc.stderr) if f).decode(errors="replace")


class Relay(threading.Thread):
    """UDP relay between one client and the server that records every datagram (direction, bytes)."""

    def __init__(self, target: int):
        super().__init__(daemon=True)
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.port = self.front.getsockname()[1]
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind(("127.0.0.1", 0))
        self.target = ("127.0.0.1", target)
        self.client = None
        self.log: list[tuple[str, bytes]] = []
        self.running = True

    def run(self):
        while self.running:
            r, _, _ = select.select([self.front, self.back], [], [], 0.1)
            for s in r:
                data, addr = s.recvfrom(2048)
                if s is self.front:
                    self.client = addr
                    self.log.append(("c>s", data))
                    self.back.sendto(data, self.target)
                elif self.client:
                    self.log.append(("s>c", data))
                    self.front.sendto(data, self.client)

    def close(self):
        self.running = False
        self.join(2)
        self.front.close()
        self.back.close()


def partial_ivs(log, direction):
    """The Partial IVs the sender in `direction` put on the wire, in order."""
    out = []
    for d, data in log:
        if d != direction:
            continue
        m = aiocoap.Message.decode(data)
        v = m.opt.oscore
        if v and v[0] & 7:
            out.append(v[1:1 + (v[0] & 7)])
    return out


def start_vm_server(tmp: Path, port: int, k=8):
    script = tmp / "vm_oscore_server.py"
    script.write_text(VM_SERVER)
    # 192k: the test server keeps 3000-byte bodies in a heap that 1 KiB blocks fragment (as the plain CoAP
    # interop server does); the OSCORE heap figures are measured in the benchmark, not here.
    proc = subprocess.Popen([mpvm.micropython_binary(), "-X", "heapsize=192k", str(script), str(port), *vm_args(),
                             str(tmp / "device-state"), str(k)], cwd=mpvm.REPO, env=vm_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return proc, wait_line(proc, b"READY")


def test_aiocoap_against_vm_oscore_server(tmp_path):
    port = free_udp_port()
    proc, boot = start_vm_server(tmp_path, port)
    relay = Relay(port)
    relay.start()
    creddir = write_aiocoap_context(tmp_path / "peer-ctx", PEER_ID, DEVICE_ID)
    u = f"coap://127.0.0.1:{relay.port}"
    creds = {f"{u}/*": {"oscore": {"basedir": str(creddir) + "/"}}}
    body = bytes((i * 13 + 1) & 255 for i in range(3000))

    async def session(first: bool):
        ctx = await aiocoap.Context.create_client_context()
        ctx.client_credentials.load_from_dict(creds)
        try:
            r = await ctx.request(aiocoap.Message(code=aiocoap.GET, uri=f"{u}/hello?a=1&b=two")).response
            assert r.code == aiocoap.CONTENT and r.payload == b"hello a=1&b=two via " + PEER_ID.hex().encode()
            if not first:
                return
            r = await ctx.request(aiocoap.Message(code=aiocoap.POST, uri=f"{u}/data", payload=b"xyz")).response
            assert r.code == aiocoap.CREATED and r.payload == b"posted 1: xyz"
            r = await ctx.request(aiocoap.Message(code=aiocoap.PUT, uri=f"{u}/data", payload=body)).response
            assert r.code == aiocoap.CHANGED
            r = await ctx.request(aiocoap.Message(code=aiocoap.GET, uri=f"{u}/data")).response
            assert r.payload == body
            r = await ctx.request(aiocoap.Message(code=aiocoap.GET, uri=f"{u}/big")).response
            assert r.payload == bytes((i * 7) & 255 for i in range(3000))
            req = ctx.request(aiocoap.Message(code=aiocoap.GET, uri=f"{u}/clock", observe=0))
            seen = [(await req.response).payload]
            async for n in req.observation:
                seen.append(n.payload)
                if len(seen) >= 7:
                    req.observation.cancel()
                    break
            assert len(set(seen)) == 7, seen
        finally:
            await ctx.shutdown()

    try:
        assert b"synced=1" in boot
        # The command-line client with a credentials file, as a user would talk to a board (first: it holds the
        # context directory's lock while it runs).
        cred_file = tmp_path / "creds.json"
        cred_file.write_text(json.dumps(creds))
        cli = Path(sys.executable).parent / "aiocoap-client"
        p = subprocess.run([str(cli), "--credentials", str(cred_file), f"{u}/hello?via=cli"], capture_output=True,
                           timeout=60)
        assert b"hello via=cli via 50" in p.stdout, p.stdout + p.stderr
        asyncio.run(asyncio.wait_for(session(True), 90))
        gc.collect()  # aiocoap releases the context directory's lock when its context object goes
        # Unprotected: the whole tree requires OSCORE.
        plain = f"coap://127.0.0.1:{relay.port}/hello"

        async def unprotected():
            ctx = await aiocoap.Context.create_client_context()
            try:
                r = await ctx.request(aiocoap.Message(code=aiocoap.GET, uri=plain)).response
                assert r.code == aiocoap.UNAUTHORIZED and r.payload == b"OSCORE required"
            finally:
                await ctx.shutdown()
        asyncio.run(asyncio.wait_for(unprotected(), 30))
        # Reboot: the VM server restarts from its persisted sequence number, without its replay window.
        before = partial_ivs(relay.log, "s>c")
        stop(proc)
        proc, boot = start_vm_server(tmp_path, port)
        assert b"synced=0" in boot, boot
        mark = len(relay.log)
        asyncio.run(asyncio.wait_for(session(False), 60))
        after = relay.log[mark:]
        codes = [aiocoap.Message.decode(d).code for _, d in after]
        # aiocoap's request, the protected 4.01 Echo challenge (outer 2.04), the retry with Echo, the answer.
        assert len([d for d, _ in after if d == "c>s"]) == 2, codes
        challenge = aiocoap.Message.decode(after[1][1])
        assert challenge.opt.oscore[0] & 7, "the challenge carries the server's own Partial IV"
        pivs = partial_ivs(relay.log, "s>c")
        assert len(pivs) > len(before) >= 6
        assert len(set(pivs)) == len(pivs), "the server never sent a Partial IV twice (no nonce reuse)"
        client_pivs = partial_ivs(relay.log, "c>s")
        assert len(set(client_pivs)) == len(client_pivs)
    finally:
        relay.close()
        out = stop(proc)
    assert "Traceback" not in out, out


def test_aiocoap_outer_blockwise_against_vm_server(tmp_path):
    """aiocoap fragments a protected request over 1124 bytes with Outer Block1 (RFC 8613 4.1.3.4.2) and follows
    Outer Block2 of a protected response; our VM server puts the request together before verifying it and
    serves its oversized protected response in Outer Block2 blocks."""
    port = free_udp_port()
    proc, boot = start_vm_server(tmp_path, port)
    relay = Relay(port)
    relay.start()
    creddir = write_aiocoap_context(tmp_path / "peer-ctx", PEER_ID, DEVICE_ID)
    u = f"coap://127.0.0.1:{relay.port}"
    body = bytes((i * 5 + 3) & 255 for i in range(1024))  # one inner block: aiocoap's inner Block1 starts above
    query = "k=" + "v" * 150

    async def session():
        ctx = await aiocoap.Context.create_client_context()
        ctx.client_credentials.load_from_dict({f"{u}/*": {"oscore": {"basedir": str(creddir) + "/"}}})
        try:
            r = await ctx.request(aiocoap.Message(code=aiocoap.PUT, uri=f"{u}/data?{query}", payload=body)).response
            assert r.code == aiocoap.CHANGED, r
            r = await ctx.request(aiocoap.Message(code=aiocoap.GET, uri=f"{u}/data")).response
            assert r.payload == body
            r = await ctx.request(aiocoap.Message(code=aiocoap.GET, uri=f"{u}/wide")).response
            assert r.code == aiocoap.CONTENT and r.payload == bytes((i * 7) & 255 for i in range(1000))
            assert r.opt.location_query == ("q" * 300,)
        finally:
            await ctx.shutdown()

    try:
        asyncio.run(asyncio.wait_for(session(), 60))
        msgs = [(d, aiocoap.Message.decode(data)) for d, data in relay.log]
        outer_b1 = [m for d, m in msgs if d == "c>s" and m.opt.oscore is not None and m.opt.block1 is not None]
        assert len(outer_b1) == 2 and outer_b1[0].opt.block1.more and not outer_b1[1].opt.block1.more
        assert len({m.opt.oscore for m in outer_b1}) == 1, "the blocks of one protected request"
        cont = [m for d, m in msgs if d == "s>c" and m.code == aiocoap.CONTINUE]
        assert len(cont) == 1 and cont[0].opt.oscore is None, "2.31 Continue is an outer (unprotected) answer"
        outer_b2 = [m for d, m in msgs if d == "s>c" and m.opt.oscore is not None and m.opt.block2 is not None]
        assert [m.opt.block2.block_number for m in outer_b2] == [0, 1] and outer_b2[0].opt.size2 > 1200
        again = [m for d, m in msgs if d == "c>s" and m.opt.block2 is not None and m.opt.block2.block_number]
        assert len(again) == 1 and again[0].opt.oscore, "the next block is asked for with the protected request"
    finally:
        relay.close()
        out = stop(proc)
    assert "Traceback" not in out, out


def _outer_notifications(log):
    # (first blocks with Observe, later blocks asked for) of the Outer Block2 notifications on the relay's wire
    msgs = [(d, aiocoap.Message.decode(data)) for d, data in log]
    first = [m for d, m in msgs if d == "s>c" and m.opt.observe is not None and m.opt.block2 is not None]
    asks = [m for d, m in msgs if d == "c>s" and m.opt.block2 is not None and m.opt.block2.block_number]
    return msgs, first, asks


def test_aiocoap_observes_protected_notifications_in_outer_blocks(tmp_path):
    """aiocoap observes a resource whose protected notifications are larger than the link: our VM server sends
    each in Outer Block2 blocks (Observe on the first), aiocoap asks for the rest with the registration's
    protected request and verifies every notification whole (RFC 8613 4.1.3.4.2, RFC 7959 3.4)."""
    port = free_udp_port()
    proc, boot = start_vm_server(tmp_path, port)
    relay = Relay(port)
    relay.start()
    creddir = write_aiocoap_context(tmp_path / "peer-ctx", PEER_ID, DEVICE_ID)
    u = f"coap://127.0.0.1:{relay.port}"

    async def session():
        ctx = await aiocoap.Context.create_client_context()
        ctx.client_credentials.load_from_dict({f"{u}/*": {"oscore": {"basedir": str(creddir) + "/"}}})
        try:
            req = ctx.request(aiocoap.Message(code=aiocoap.GET, uri=f"{u}/wideclock", observe=0))
            seen = [await req.response]
            async for n in req.observation:
                seen.append(n)
                if len(seen) >= 6:
                    req.observation.cancel()
                    break
            return seen
        finally:
            await ctx.shutdown()

    try:
        seen = asyncio.run(asyncio.wait_for(session(), 90))
        ticks = [m.payload[:9] for m in seen]
        assert len(set(ticks)) == 6 and all(t.startswith(b"tick ") for t in ticks), ticks
        assert all(len(m.payload) == 1000 and m.opt.location_query == ("q" * 300,) for m in seen)
        msgs, first, asks = _outer_notifications(relay.log)
        assert len(first) >= 6 and all(m.opt.block2.block_number == 0 and m.opt.block2.more for m in first)
        assert all(m.opt.oscore is not None for m in first)
        assert len(asks) >= 6 and all(m.opt.oscore and m.opt.observe is None for m in asks), \
            "the rest is asked for with the protected registration, without Observe"
        assert max(len(d) for x, d in relay.log if x == "s>c") <= 1280, "no datagram over the link (UDPTransport: 1280)"
        pivs = [m.opt.oscore for m in first]  # its later blocks carry the same OSCORE option: one message, cut
        assert len(set(pivs)) == len(pivs) and all(p[0] & 7 for p in pivs), "each notification its own Partial IV"
    finally:
        relay.close()
        out = stop(proc)
    assert "Traceback" not in out, out


VM_CLIENT_OBSERVE = r'''
import sys, asyncio, binascii
from coap.udp import UDPTransport
from coap.transport import Params
from coap.client import Client
from oscore import Context
from oscore.transform import Oscore
from oscore import outer

R = ("127.0.0.1", int(sys.argv[1]))
h = binascii.unhexlify
ctx = Context(h(sys.argv[2]), h(sys.argv[3]), h(sys.argv[4]), h(sys.argv[5]))


async def main():
    c = Client(UDPTransport(("127.0.0.1", 0), Params()))
    c.transform = tf = Oscore(client=ctx)
    got = []
    o = await outer.observe(tf, c, R, "/wideclock",
                            lambda m: got.append((bytes(m.payload[:9]).decode(), len(m.payload), m.opt(20))))
    for _ in range(150):
        if len(got) >= 6:
            break
        await asyncio.sleep(0.1)
    await o.cancel()
    print("OBSERVE", "|".join("%s,%d,%d" % (t, n, len(q or b"")) for t, n, q in got))
    print("DONE 1")

asyncio.run(main())
'''


def test_vm_client_observes_vm_server_in_outer_blocks(tmp_path):
    """Our client and our server, each on its own VM over 127.0.0.1: the registration's response and the
    notifications are larger than the link, come in Outer Block2 blocks and are verified whole (aiocoap's
    OSCORE server protects each inner block instead, so there is no aiocoap server to do this against)."""
    port = free_udp_port()
    proc, boot = start_vm_server(tmp_path, port)
    relay = Relay(port)
    relay.start()
    try:
        client = tmp_path / "vm_oscore_observer.py"
        client.write_text(VM_CLIENT_OBSERVE)
        args = [SECRET.hex(), SALT.hex(), PEER_ID.hex(), DEVICE_ID.hex()]
        p = subprocess.run([mpvm.micropython_binary(), "-X", "heapsize=128k", str(client), str(relay.port), *args],
                           cwd=mpvm.REPO, env=vm_env(), capture_output=True, timeout=120)
        text = p.stdout.decode()
        assert p.returncode == 0 and "DONE 1" in text, text + p.stderr.decode()
        got = dict(line.split(" ", 1) for line in text.splitlines() if " " in line)["OBSERVE"].split("|")
        assert len(got) >= 6 and len({g.split(",")[0] for g in got}) == len(got), got
        assert all(g.endswith(",1000,300") for g in got), got
        msgs, first, asks = _outer_notifications(relay.log)
        assert len(first) >= 6 and len(asks) >= 6
        assert all(m.opt.observe is None and m.opt.oscore for m in asks)
        assert max(len(d) for x, d in relay.log if x == "s>c") <= 1280
    finally:
        relay.close()
        out = stop(proc)
    assert "Traceback" not in out, out


def test_vm_client_against_aiocoap_oscore_server(tmp_path):
    port = free_udp_port()
    creddir = write_aiocoap_context(tmp_path / "server-ctx", PEER_ID, DEVICE_ID)
    script = tmp_path / "aiocoap_server.py"
    script.write_text(AIOCOAP_SERVER)
    server = subprocess.Popen([sys.executable, str(script), str(port), str(creddir) + "/"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    try:
        wait_line(server, b"READY")
        client = tmp_path / "vm_oscore_client.py"
        client.write_text(VM_CLIENT)
        p = subprocess.run([mpvm.micropython_binary(), "-X", "heapsize=128k", str(client), str(port), *vm_args()],
                           cwd=mpvm.REPO, env=vm_env(), capture_output=True, timeout=120)
        text = p.stdout.decode()
        assert p.returncode == 0 and "DONE 1" in text, text + p.stderr.decode()
        lines = dict(line.split(" ", 1) for line in text.splitlines() if " " in line)
        assert lines["HELLO"] == "69 hello who=vm&x=1"
        assert lines["POST"] == "65 posted abc"
        assert lines["PUT"] == "68"
        assert lines["GET"] == "69 3000 True"
        ticks = lines["OBSERVE"].split("|")
        assert len(ticks) >= 6 and len(set(ticks)) == len(ticks), ticks
    finally:
        out = stop(server)
    assert "Traceback" not in out, out
