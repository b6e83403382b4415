"""CoAP interop with real peers on 127.0.0.1, our side running on the MicroPython VM.

- our client (VM) -> libcoap coap-server-notls
- libcoap coap-client-notls -> our server (VM)
- aiocoap client -> our server (VM); our client (VM) -> aiocoap-fileserver
- loss: our client (VM) -> seeded 30 % lossy UDP relay (this process) -> our server (VM)
coap-client exits 0 even when a request fails, so its output is checked, never just its exit code.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import random
import re
import select
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from hourglass import mpvm
from hourglass.common import free_udp_port

pytestmark = pytest.mark.skipif(shutil.which("coap-server-notls") is None,
                                reason="libcoap3-bin not installed (tools/setup-system.sh)")

# Our test server on the VM: the same resource set as coap-server-notls (/, /time observable, /async separate,
# /example_data GET/PUT) plus /big (3000 bytes via a source), /large?N, /echo (POST, counted) and /stats.
VM_SERVER = r'''
import sys, asyncio
from coap.udp import UDPTransport
from coap.transport import Params
from coap.server import Server
from coap.msg import Message
from coap import defs as D

port = int(sys.argv[1])
ack = int(sys.argv[2])
retransmit = int(sys.argv[3])
counts = {}
store = {"v": b"initial"}


def count(name):
    counts[name] = counts.get(name, 0) + 1


class Pattern:
    # A body read block by block: byte i is (i * 7) & 255.
    def __init__(self, size):
        self.size = size
        self.etag = b"pat%d" % size

    def read(self, off, n):
        n = min(n, self.size - off)
        b = bytearray(n)
        for i in range(n):
            b[i] = (off + i) * 7 & 255
        return b


def get_data(req):
    count("get_data")
    return Message(code=D.CONTENT, payload=store["v"]).add(D.CONTENT_FORMAT, 0)


def put_data(req):
    count("put_data")
    store["v"] = bytes(req.payload)
    return (D.CHANGED, b"")


async def slow(req):
    count("async")
    await asyncio.sleep(1)
    return b"done"


def post_echo(req):
    count("echo:" + bytes(req.payload).decode())
    return (D.CHANGED, b"echo:" + bytes(req.payload))


srv = Server(UDPTransport(("127.0.0.1", port), Params(ack_timeout=ack, max_retransmit=retransmit)))


def on_error(e):
    sys.print_exception(e) if hasattr(sys, "print_exception") else print(repr(e))


srv.on_error = on_error
srv.route("/", get=lambda r: b"Hourglass CoAP test server", ct=0, title="General Info")
tick = {"n": 0}
time_res = srv.route("/time", get=lambda r: b"tick %d" % tick["n"], observable=True, rt="ticks", if_="clock",
                     ct=0, max_age=2)
srv.route("/async", get=slow, ct=0)
srv.route("/example_data", get=get_data, put=put_data, rt="data", ct=0, max_body=16384)


def get_big(req):
    count("big")
    return Pattern(3000)


srv.route("/big", get=get_big, rt="blob", ct=42)
srv.route("/large", get=lambda r: Pattern(int(r.query()[0]) if r.query() else 1 << 20), ct=42)
srv.route("/echo", post=post_echo, rt="echo")
srv.route("/stats", get=lambda r: ";".join("%s=%d" % kv for kv in sorted(counts.items())))


def mem(req):
    import gc, micropython
    gc.collect()
    micropython.mem_info(1)
    return "alloc=%d free=%d" % (gc.mem_alloc(), gc.mem_free())


srv.route("/mem", get=mem)
srv.start()


async def main():
    print("READY")
    while True:
        await asyncio.sleep(0.3)
        tick["n"] += 1
        srv.notify(time_res)

asyncio.run(main())
'''

# Our client on the VM: runs one scenario and prints "KEY value" lines for the test to check.
VM_CLIENT = r'''
import sys, asyncio, hashlib
from coap.udp import UDPTransport
from coap.transport import Params
from coap.client import Client
from coap import defs as D
import binascii

mode = sys.argv[1]
R = ("127.0.0.1", int(sys.argv[2]))
ack = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
retransmit = int(sys.argv[4]) if len(sys.argv) > 4 else 4


def out(k, v):
    print(k, v)


def body(n, k=7):
    b = bytearray(n)
    for i in range(n):
        b[i] = (i * k + 3) & 255
    return bytes(b)


def sha(b):
    return binascii.hexlify(hashlib.sha256(b).digest()).decode()


class Sink:
    def __init__(self):
        self.h = hashlib.sha256()
        self.n = 0
        self.calls = 0

    def __call__(self, off, data):
        assert off == self.n
        self.h.update(data)
        self.n += len(data)
        self.calls += 1


async def libcoap(c):
    r = await c.get(R, "/.well-known/core")
    out("WK", bytes(r.payload).decode())
    r = await c.get(R, "/")
    out("ROOT", "%d %s" % (r.code, bytes(r.payload)[:40].decode()))
    b = body(3000)
    r = await c.put(R, "/example_data", b, szx=2)
    out("PUT", r.code)
    s = Sink()
    r = await c.get(R, "/example_data", sink=s, szx=2)
    out("GET3000", "%d %d %d %s" % (r.code, s.n, s.calls, s.h.digest() == hashlib.sha256(b).digest()))
    r = await c.get(R, "/async")
    out("ASYNC", "%d %d %s" % (r.type, r.code, bytes(r.payload).decode()))
    got = []
    o = await c.observe(R, "/time", lambda m: got.append((m.uint(D.OBSERVE), bytes(m.payload).decode())))
    for _ in range(80):
        if len(got) >= 4:
            break
        await asyncio.sleep(0.1)
    await o.cancel()
    out("OBSERVE", repr(got))
    out("PING", await c.ping(R))


async def fileserver(c):
    s = Sink()
    r = await c.get(R, "/f3000.bin", sink=s, szx=2)
    out("F3000", "%d %d %d %s" % (r.code, s.n, s.calls, binascii.hexlify(s.h.digest()).decode()))
    s = Sink()
    r = await c.get(R, "/f100k.bin", sink=s)
    out("F100K", "%d %d %d %s" % (r.code, s.n, s.calls, binascii.hexlify(s.h.digest()).decode()))
    r = await c.get(R, "/")
    out("LIST", bytes(r.payload).decode())
    b = body(2500, 11)
    r = await c.put(R, "/upload.bin", b, szx=3)
    out("PUT", "%d %s" % (r.code, sha(b)))


async def loss(c):
    for i in range(5):
        r = await c.post(R, "/echo", b"m%d" % i)
        out("ECHO", bytes(r.payload).decode())
    s = Sink()
    r = await c.get(R, "/big", sink=s, szx=4)
    out("BIG", "%d %d %s" % (s.n, s.calls, binascii.hexlify(s.h.digest()).decode()))
    b = body(3000, 5)
    r = await c.put(R, "/example_data", b, szx=4)
    out("PUT", r.code)
    r = await c.get(R, "/example_data", szx=4)
    out("BACK", bytes(r.payload) == b)


async def main():
    c = Client(UDPTransport(("127.0.0.1", 0), Params(ack_timeout=ack, max_retransmit=retransmit)))
    await {"libcoap": libcoap, "fileserver": fileserver, "loss": loss}[mode](c)
    out("DONE", 1)

asyncio.run(main())
'''



def vm_env() -> dict:
    env = dict(os.environ)
    env["MICROPYPATH"] = mpy_path()  # asyncio is frozen into the VM
    return env


def vm_cmd(script: Path, *args, heap="128k") -> list[str]:
    return [mpvm.micropython_binary(), "-X", f"heapsize={heap}", str(script), *map(str, args)]


def mpy_path() -> str:
    """lib/coap compiled with mpy-cross (as deployed on a board; all but the viper helper), then the other lib
    packages."""
    coap = mpvm.compiled_packages(("coap",), skip=("_slip_viper.py",))
    return ":".join([".frozen", str(coap)] + [p for p in mpvm.device_path() if not p.endswith("/coap")])


def wait_line(proc: subprocess.Popen, marker: bytes, timeout=30.0) -> None:
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
                return
        if proc.poll() is not None:
            break
    err = proc.stderr.read() if proc.poll() is not None else ""
    raise RuntimeError(f"process did not print {marker!r}: {buf!r} {err}")


def stop(proc: subprocess.Popen) -> str:
    """Stop a process we started; returns what it printed (for failure messages)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return b"".join(f.read() or b"" for f in (proc.stdout, proc.stderr) if f).decode(errors="replace")


def start_vm_server(tmp: Path, ack=2000, retransmit=4):
    script = tmp / "vm_server.py"
    script.write_text(VM_SERVER)
    port = free_udp_port()
    # 256k: the test server stores 3 KB bodies in a heap that Block2 traffic fragments; budgets are measured
    # in host_tests/bench/host_coap.py, not here.
    proc = subprocess.Popen(vm_cmd(script, port, ack, retransmit, heap="256k"), cwd=mpvm.REPO, env=vm_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_line(proc, b"READY")
    return proc, port


def run_vm_client(tmp: Path, mode: str, port: int, *extra, timeout=120) -> dict[str, list[str]]:
    script = tmp / "vm_client.py"
    script.write_text(VM_CLIENT)
    p = subprocess.run(vm_cmd(script, mode, port, *extra), cwd=mpvm.REPO, env=vm_env(), capture_output=True,
                       timeout=timeout)
    text = p.stdout.decode()
    assert p.returncode == 0 and "DONE 1" in text, text + p.stderr.decode()
    result: dict[str, list[str]] = {}
    for line in text.splitlines():
        k, _, v = line.partition(" ")
        result.setdefault(k, []).append(v)
    return result


def coap_client(*args, timeout=60) -> subprocess.CompletedProcess:
    # -B bounds how long a lost exchange can take; the exit code says nothing about CoAP errors.
    return subprocess.run(["coap-client-notls", "-B", "10", *map(str, args)], capture_output=True, timeout=timeout)


def cc_ok(p: subprocess.CompletedProcess) -> bytes:
    err = p.stderr.decode(errors="replace")
    assert not re.search(r"\b[45]\.\d\d\b", err), err
    assert "cannot send" not in err and "ERR" not in err, err
    return p.stdout.removesuffix(b"\n")  # coap-client ends what it prints with a newline


def pattern(n: int) -> bytes:
    return bytes((i * 7) & 255 for i in range(n))


def vm_body(n: int, k=7) -> bytes:
    return bytes((i * k + 3) & 255 for i in range(n))


@pytest.fixture(scope="module")
def vm_server(tmp_path_factory):
    proc, port = start_vm_server(tmp_path_factory.mktemp("vmsrv"))
    yield port
    print("VM server output:", stop(proc))


@pytest.fixture(scope="module")
def libcoap_server():
    port = free_udp_port()
    proc = subprocess.Popen(["coap-server-notls", "-A", "127.0.0.1", "-p", str(port), "-d", "20"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(50):
        if b"libcoap" in coap_client("-B", "1", "-m", "get", f"coap://127.0.0.1:{port}/").stdout:
            break
        time.sleep(0.1)
    yield port
    stop(proc)


# --- our client (VM) against libcoap's server

def test_vm_client_against_libcoap_server(libcoap_server, tmp_path):
    r = run_vm_client(tmp_path, "libcoap", libcoap_server)
    wk = r["WK"][0]
    assert '</time>;if="clock";rt="ticks";title="Internal Clock";ct=0;obs' in wk and "</async>" in wk
    assert r["ROOT"][0].startswith("69 This is a test server made with libcoap")
    assert r["PUT"] == ["65"] or r["PUT"] == ["68"]  # 2.01 Created (dynamic) or 2.04 Changed
    code, n, calls, same = r["GET3000"][0].split()
    assert (code, n, calls, same) == ("69", "3000", "47", "True")  # 47 blocks of 64 bytes
    assert r["ASYNC"][0] == "0 69 done"  # separate response: a CON after the empty ACK
    obs = eval(r["OBSERVE"][0])
    assert len(obs) >= 4 and len({p for _, p in obs}) >= 3
    seqs = [s for s, _ in obs]
    assert seqs == sorted(seqs)
    assert r["PING"] == ["True"]


# --- libcoap's client against our server (VM)

def test_libcoap_discovery_and_filtering(vm_server):
    u = f"coap://127.0.0.1:{vm_server}"
    wk = cc_ok(coap_client("-m", "get", f"{u}/.well-known/core")).decode()
    links = set(wk.split(","))
    assert '</time>;rt="ticks";if="clock";ct=0;obs' in links and '</example_data>;rt="data";ct=0' in links
    assert len(links) == 9
    assert cc_ok(coap_client("-m", "get", f"{u}/.well-known/core?rt=ticks")) == \
        b'</time>;rt="ticks";if="clock";ct=0;obs'
    assert cc_ok(coap_client("-m", "get", f"{u}/.well-known/core?rt=da*")) == b'</example_data>;rt="data";ct=0'
    assert set(cc_ok(coap_client("-m", "get", f"{u}/.well-known/core?ct=42")).split(b",")) == \
        {b'</big>;rt="blob";ct=42', b"</large>;ct=42"}
    assert set(cc_ok(coap_client("-m", "get", f"{u}/.well-known/core?href=/e*")).split(b",")) == \
        {b'</example_data>;rt="data";ct=0', b'</echo>;rt="echo"'}
    assert cc_ok(coap_client("-m", "get", f"{u}/.well-known/core?if=nothing")) == b""


def test_libcoap_get_put_and_errors(vm_server):
    u = f"coap://127.0.0.1:{vm_server}"
    assert cc_ok(coap_client("-m", "get", f"{u}/")) == b"Hourglass CoAP test server"
    cc_ok(coap_client("-m", "put", "-e", "short value", f"{u}/example_data"))
    assert cc_ok(coap_client("-m", "get", f"{u}/example_data")) == b"short value"
    p = coap_client("-m", "get", f"{u}/nothing")
    assert b"4.04" in p.stderr + p.stdout
    p = coap_client("-m", "delete", f"{u}/example_data")
    assert b"4.05" in p.stderr + p.stdout


def test_libcoap_block2_and_block1(vm_server, tmp_path):
    u = f"coap://127.0.0.1:{vm_server}"
    out = tmp_path / "big.out"
    cc_ok(coap_client("-m", "get", "-b", "64", "-o", out, f"{u}/big"))
    assert out.read_bytes() == pattern(3000)
    up = tmp_path / "up.bin"
    data = os.urandom(3000)
    up.write_bytes(data)
    cc_ok(coap_client("-m", "put", "-b", "64", "-f", up, f"{u}/example_data"))
    back = tmp_path / "back.bin"
    cc_ok(coap_client("-m", "get", "-b", "64", "-o", back, f"{u}/example_data"))
    assert back.read_bytes() == data


def test_libcoap_observe(vm_server):
    p = coap_client("-m", "get", "-s", "2", f"coap://127.0.0.1:{vm_server}/time", timeout=30)
    ticks = [int(x) for x in re.findall(rb"tick (\d+)", cc_ok(p))]
    assert len(ticks) >= 4 and ticks == sorted(ticks) and len(set(ticks)) == len(ticks)


def test_libcoap_separate_response(vm_server):
    p = coap_client("-v", "7", "-m", "get", f"coap://127.0.0.1:{vm_server}/async", timeout=30)
    log = cc_ok(p).decode()  # at -v 7 libcoap logs to stdout, the payload among the lines
    assert "\ndone" in log, log
    # libcoap logs the empty ACK and then our CON response carrying the payload.
    assert re.search(r"t:ACK c:0\.00", log), log
    assert re.search(r"t:CON c:2\.05", log), log


# --- aiocoap

def test_aiocoap_client_against_vm_server(vm_server):
    import aiocoap

    async def main():
        ctx = await aiocoap.Context.create_client_context()
        u = f"coap://127.0.0.1:{vm_server}"
        try:
            r = await ctx.request(aiocoap.Message(code=aiocoap.GET, uri=f"{u}/.well-known/core?rt=blob")).response
            assert r.payload == b'</big>;rt="blob";ct=42'
            assert r.opt.content_format == 40
            r = await ctx.request(aiocoap.Message(code=aiocoap.GET, uri=f"{u}/big")).response
            assert r.code == aiocoap.CONTENT and r.payload == pattern(3000)
            data = os.urandom(2000)
            r = await ctx.request(aiocoap.Message(code=aiocoap.PUT, uri=f"{u}/example_data", payload=data)).response
            assert r.code == aiocoap.CHANGED
            r = await ctx.request(aiocoap.Message(code=aiocoap.GET, uri=f"{u}/example_data")).response
            assert r.payload == data
            r = await ctx.request(aiocoap.Message(code=aiocoap.GET, uri=f"{u}/async")).response
            assert r.payload == b"done"
            req = ctx.request(aiocoap.Message(code=aiocoap.GET, uri=f"{u}/time", observe=0))
            first = await req.response
            seen = [first.payload]
            async for n in req.observation:
                seen.append(n.payload)
                if len(seen) >= 4:
                    req.observation.cancel()
                    break
            assert len(set(seen)) == 4
            r = await ctx.request(aiocoap.Message(code=aiocoap.GET, uri=f"{u}/nothing")).response
            assert r.code == aiocoap.NOT_FOUND
        finally:
            await ctx.shutdown()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_vm_client_against_aiocoap_fileserver(tmp_path):
    root = tmp_path / "files"
    root.mkdir()
    f3000 = os.urandom(3000)
    f100k = os.urandom(100 * 1024)
    (root / "f3000.bin").write_bytes(f3000)
    (root / "f100k.bin").write_bytes(f100k)
    port = free_udp_port()
    exe = Path(mpvm.micropython_binary()).parent / "aiocoap-fileserver"
    proc = subprocess.Popen([str(exe), "--write", "--bind", f"127.0.0.1:{port}", str(root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            if b"f3000" in coap_client("-B", "1", "-m", "get", f"coap://127.0.0.1:{port}/").stdout:
                break
            time.sleep(0.1)
        r = run_vm_client(tmp_path, "fileserver", port)
        assert r["F3000"][0] == f"69 3000 47 {hashlib.sha256(f3000).hexdigest()}"
        assert r["F100K"][0] == f"69 102400 100 {hashlib.sha256(f100k).hexdigest()}"
        assert "</f3000.bin>" in r["LIST"][0] and "</f100k.bin>" in r["LIST"][0]
        code, digest = r["PUT"][0].split()
        assert code in ("65", "68")
        assert hashlib.sha256((root / "upload.bin").read_bytes()).hexdigest() == digest
        assert (root / "upload.bin").read_bytes() == vm_body(2500, 11)
    finally:
        stop(proc)


# --- loss: a seeded relay dropping 30 % of datagrams in both directions

class LossyRelay:
    """UDP relay: the client talks to `port`; datagrams go on to the server and back; 30 % are dropped."""

    def __init__(self, server_port: int, loss=0.30, seed=7252):
        self.server = ("127.0.0.1", server_port)
        self.rng = random.Random(seed)
        self.loss = loss
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.port = self.front.getsockname()[1]
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind(("127.0.0.1", 0))
        self.client = None
        self.passed = self.dropped = 0
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while self.running:
            r, _, _ = select.select([self.front, self.back], [], [], 0.1)
            for s in r:
                data, addr = s.recvfrom(65535)
                if s is self.front:
                    self.client = addr
                    dest, out = self.server, self.back
                else:
                    dest, out = self.client, self.front
                if self.rng.random() < self.loss:
                    self.dropped += 1
                    continue
                self.passed += 1
                out.sendto(data, dest)

    def close(self):
        self.running = False
        self.thread.join()
        self.front.close()
        self.back.close()


def test_loss_30_percent_exactly_once(tmp_path):
    # Short timeouts, more retransmissions: parameters are per transport.
    proc, port = start_vm_server(tmp_path, ack=60, retransmit=12)
    relay = LossyRelay(port)
    try:
        r = run_vm_client(tmp_path, "loss", relay.port, 60, 12, timeout=240)
        assert r["ECHO"] == [f"echo:m{i}" for i in range(5)]
        assert r["BIG"][0] == f"3000 12 {hashlib.sha256(pattern(3000)).hexdigest()}"
        assert r["PUT"] == ["68"] and r["BACK"] == ["True"]
        assert relay.dropped > 10
        stats = cc_ok(coap_client("-m", "get", f"coap://127.0.0.1:{port}/stats")).decode()
        counts = dict(kv.split("=") for kv in stats.split(";"))
        # Every retransmitted request was answered from the dedup cache: each handler ran once.
        for i in range(5):
            assert counts[f"echo:m{i}"] == "1", stats
        assert counts["put_data"] == "1", stats
        # GETs too: one handler run per block request (12 blocks of 256 bytes each for /big, a source, and
        # for /example_data, bytes), duplicates answered from the cache (Block2 re-read from the source).
        assert counts["big"] == "12", stats
        assert counts["get_data"] == "12", stats
    finally:
        relay.close()
        stop(proc)
