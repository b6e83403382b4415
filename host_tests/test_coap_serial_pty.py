"""CoAP over a serial line, end to end: our server (coap.server on coap.serial.SerialTransport) runs on the
MicroPython VM, and on CPython, with its console (stdin/stdout) on a pty, as a board's USB CDC console would
be; `hourglass gateway` opens the pty's other end and bridges it to UDP on 127.0.0.1; libcoap's
coap-client-notls and aiocoap reach the server through it. The board prints while CoAP flows, and its text
must come out of the gateway intact.
"""
from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import uuid
import sys
import threading
import time
import tty

import pytest

from hourglass import mpvm
from hourglass.common import free_udp_port

pytestmark = pytest.mark.skipif(shutil.which("coap-client-notls") is None,
                                reason="coap-client-notls (Debian libcoap3-bin) is not installed")

BIG = bytes(i & 255 for i in range(3000))
TICKS = 40

BOARD = r'''
import sys
if sys.implementation.name == "micropython" and ".frozen" not in sys.path:
    sys.path.append(".frozen")  # asyncio is frozen into the VM
import asyncio
from coap.serial import SerialTransport
from coap.server import Server

state = {"r": b"initial", "n": 0}
BIG = bytes(i & 255 for i in range(3000))


def put_r(req):
    state["r"] = bytes(req.payload)
    print("put /r: %d bytes" % len(state["r"]))


def hello(req):
    print("hello requested")
    return b"world"


async def slow(req):
    await asyncio.sleep(1.5)  # longer than the server's ACK delay: empty ACK now, CON response later
    return b"slow done"


async def ticker(t):
    # Text on the line while CoAP flows; every line must reach the gateway whole.
    for i in range(TICKS):
        print("tick %d of the board's diagnostic output" % i)
        if i == 3:
            t.diag("diag frame: %d frames in\n" % t.decoder.frames)
        await asyncio.sleep(0.1)
    print("ticks done")


async def notifier(s, obs):
    while True:
        await asyncio.sleep(0.1)
        state["n"] += 1
        s.notify(obs)


def stats(req):
    d = t.decoder
    return ("frames=%d oversize=%d bad_fcs=%d bad_escape=%d unknown=%d aborted=%d" % (
        d.frames, d.oversize, d.bad_fcs, d.bad_escape, d.unknown, d.aborted)).encode()


t = SerialTransport()


async def main():
    s = Server(t)
    s.route("/hello", get=hello, rt="greeting")
    s.route("/r", get=lambda req: state["r"], put=put_r, rt="test", ct=0)
    s.route("/big", get=lambda req: BIG, rt="blob")
    s.route("/slow", get=slow)
    s.route("/stats", get=stats)
    obs = s.route("/obs", get=lambda req: ("n=%d" % state["n"]).encode(), observable=True)
    s.start()
    print("board ready")
    asyncio.create_task(notifier(s, obs))
    await ticker(t)
    while True:
        await asyncio.sleep(1)


asyncio.run(main())
'''.replace("TICKS", str(TICKS))

RUNTIMES = ["micropython", "cpython"]


class Board:
    """The server on a pty: its console is the pty's master side; the gateway opens the slave."""

    def __init__(self, tmp_path, runtime, script=BOARD, heap="128k"):
        self.runtime = runtime
        self.heap = heap
        self.path = tmp_path / "board.py"
        self.path.write_text(script)
        self.master, self.slave_fd = os.openpty()
        tty.setraw(self.slave_fd)
        self.tty = os.ttyname(self.slave_fd)  # slave_fd stays open: the pty lives until close()
        self.proc = None

    def start(self):
        env = dict(os.environ)
        if self.runtime == "micropython":
            env["MICROPYPATH"] = ":".join(mpvm.device_path())
            cmd = [mpvm.micropython_binary(), "-X", f"heapsize={self.heap}", str(self.path)]
        else:
            env["PYTHONPATH"] = os.pathsep.join(mpvm.device_path())
            cmd = [sys.executable, str(self.path)]
        self.proc = subprocess.Popen(cmd, stdin=self.master, stdout=self.master, stderr=subprocess.PIPE,
                                     env=env, cwd=mpvm.REPO)
        os.close(self.master)
        return self

    def close(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(timeout=10)
        else:
            os.close(self.master)
        os.close(self.slave_fd)

    def stderr(self):
        return self.proc.stderr.read().decode(errors="replace") if self.proc.poll() is not None else ""


class GatewayProc:
    def __init__(self, port, *extra):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hourglass.cli", "gateway", "--port", port, "--listen", "127.0.0.1:0", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=mpvm.REPO)
        line = self.proc.stderr.readline().decode()
        m = re.search(r"coap://127\.0\.0\.1:(\d+)", line)
        assert m, line + self.proc.stderr.read().decode()
        self.port = int(m.group(1))
        self.url = f"coap://127.0.0.1:{self.port}"
        self.out = bytearray()
        self.err = bytearray()
        self._threads = [threading.Thread(target=self._drain, args=(self.proc.stdout, self.out), daemon=True),
                         threading.Thread(target=self._drain, args=(self.proc.stderr, self.err), daemon=True)]
        for th in self._threads:
            th.start()

    @staticmethod
    def _drain(stream, into):
        for chunk in iter(lambda: stream.read1(4096), b""):
            into += chunk

    def text(self):
        return bytes(self.out).decode(errors="replace")

    def wait_text(self, needle, timeout=20, count=1):
        end = time.monotonic() + timeout
        while self.text().count(needle) < count:
            if time.monotonic() > end or self.proc.poll() is not None:
                raise AssertionError(f"{needle!r} not in gateway output:\n{self.text()}\n{bytes(self.err).decode()}")
            time.sleep(0.05)

    def wait_log(self, pattern, timeout=20):
        end = time.monotonic() + timeout
        while not re.search(pattern, bytes(self.err).decode()):
            if time.monotonic() > end:
                raise AssertionError(f"{pattern!r} not in the gateway's log:\n{bytes(self.err).decode()}")
            time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        rc = self.proc.wait(timeout=10)
        for th in self._threads:
            th.join(timeout=5)
        return rc, bytes(self.err).decode()


@pytest.fixture(params=RUNTIMES)
def board(request, tmp_path):
    b = Board(tmp_path, request.param)
    yield b
    b.close()


@pytest.fixture
def gateway(board, tmp_path):
    # The gateway opens the port first (pyserial flushes pending input on open), then the board starts.
    g = GatewayProc(board.tty, "-v", "--log", str(tmp_path / "board.log"))
    board.start()
    try:
        g.wait_text("board ready")
    except AssertionError:
        g.stop()
        raise AssertionError(board.stderr())
    yield g
    g.stop()


def coap_client(*args, timeout=60):
    """Run coap-client-notls; it exits 0 even on errors, so callers check what it printed."""
    r = subprocess.run(["coap-client-notls", "-B", "20", *args], capture_output=True, timeout=timeout)
    return r.stdout, r.stderr.decode(errors="replace")


def coap_client_body(tmp_path, *args, timeout=60):
    """Like coap_client, but the payload comes from `-o FILE`: libcoap prints its warnings (e.g. a first
    request that met ICMP port-unreachable before the server was up) on stdout, mixed into the body."""
    out = tmp_path / f"coap-client-{uuid.uuid4().hex[:8]}.out"
    _, err = coap_client("-o", str(out), *args, timeout=timeout)
    body = out.read_bytes() if out.exists() else b""
    return body + b"\n", err  # the callers expect coap-client's trailing newline


def test_get_put_discovery_block2_and_text(board, gateway, tmp_path):
    url = gateway.url
    out, err = coap_client("-m", "get", url + "/hello")
    assert out == b"world\n", (out, err)

    out, err = coap_client("-m", "get", url + "/.well-known/core")
    links = out.decode().strip().split(",")
    assert set(links) == {'</hello>;rt="greeting"', '</r>;rt="test";ct=0', '</big>;rt="blob"', "</slow>",
                          "</stats>", "</obs>;obs"}, (out, err)
    out, err = coap_client("-m", "get", url + "/.well-known/core?rt=test")
    assert out == b'</r>;rt="test";ct=0\n', (out, err)

    out, err = coap_client("-m", "put", "-e", "new value \xc0\xdb", url + "/r")
    assert out == b"" and "4." not in err and "5." not in err, (out, err)
    out, err = coap_client("-m", "get", url + "/r")
    assert out == "new value \xc0\xdb\n".encode(), (out, err)

    out, err = coap_client("-m", "get", "-b", "64", url + "/big")
    assert out == BIG + b"\n", (len(out), err)

    gateway.wait_text("ticks done")
    rc, err = gateway.stop()
    assert rc == 0, err
    # Block2 at 64 bytes is 47 exchanges: the stats line counts what crossed the line.
    m = re.search(r"(\d+) messages to the board, (\d+) from it", err)
    assert m and int(m.group(1)) >= 47 + 5 and int(m.group(2)) >= 47 + 5, err
    assert "0 bad FCS, 0 oversize, 0 bad escape, 0 unknown type" in err, err

    text = gateway.text()
    # print() output from the board, whole and in order, between the CoAP frames.
    ticks = [int(x) for x in re.findall(r"^tick (\d+) of the board's diagnostic output\r?$", text, re.M)]
    assert ticks == list(range(TICKS)), text
    assert "hello requested" in text
    assert "put /r: %d bytes" % len("new value \xc0\xdb".encode()) in text
    assert re.search(r"^diag frame: \d+ frames in$", text, re.M), text  # a slipmux diagnostic frame
    assert "\ufffd" not in text and "\\x" not in text  # no frame bytes leaked into the text
    log = (tmp_path / "board.log").read_bytes().decode()
    assert log == text


def test_concurrent_clients_same_token(board, gateway):
    # Four coap-clients at once, two with the same explicit token, plus an aiocoap client: every reply
    # reaches the client that asked, byte-exact.
    url = gateway.url
    procs = [subprocess.Popen(["coap-client-notls", "-B", "30", "-T", "cafe", "-m", "get", "-b", "64", url + "/big"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    procs += [subprocess.Popen(["coap-client-notls", "-B", "30", "-m", "get", url + p],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE) for p in ("/hello", "/r")]

    async def with_aiocoap():
        import aiocoap
        ctx = await aiocoap.Context.create_client_context()
        try:
            reqs = [ctx.request(aiocoap.Message(code=aiocoap.GET, uri=url + p)).response
                    for p in ("/big", "/hello", "/r", "/big")]
            return [await r for r in reqs]
        finally:
            await ctx.shutdown()

    replies = asyncio.run(asyncio.wait_for(with_aiocoap(), 60))
    assert [r.payload for r in replies] == [BIG, b"world", b"initial", BIG]
    assert all(str(r.code) == "2.05 Content" for r in replies)
    outs = [p.communicate(timeout=60)[0] for p in procs]
    assert outs == [BIG + b"\n", BIG + b"\n", b"world\n", b"initial\n"], [len(o) for o in outs]


def test_separate_response_and_observe(board, gateway):
    url = gateway.url
    out, err = coap_client("-m", "get", url + "/slow")
    assert out == b"slow done\n", (out, err)
    # It was a separate response: an empty ACK, then a CON 2.05 routed back by token, which the client ACKs.
    gateway.wait_log(r"board -> 127\.0\.0\.1:\d+: ACK 0\.00 .*\n(.*\n)*?.*board -> 127\.0\.0\.1:\d+: CON 2\.05 "
                     r"mid=(\d+) token=\w+ \(\d+ B\)\n(.*\n)*?.*-> board: ACK 0\.00 mid=\2 ")

    # Observe for 2 s: the board notifies every 100 ms while it ticks; notifications come back through the
    # gateway by token.
    out, err = coap_client("-s", "2", "-m", "get", url + "/obs", timeout=30)
    values = re.findall(rb"n=(\d+)", out)
    assert len(values) >= 3, (out, err)
    nums = [int(v) for v in values]
    assert nums == sorted(nums) and len(set(nums)) >= 3, nums


def test_hostile_line_then_request(board):
    # No gateway: write to the line directly. Garbage, a giant frame, a bad FCS, a bad escape, an unknown
    # frame type and an aborted frame must not stop the board answering the next good request.
    from coap import slip
    fd = os.open(board.tty, os.O_RDWR | os.O_NOCTTY)
    board.start()
    try:
        dec = slip.Decoder()
        _read_until(fd, dec, lambda ev, d: ev == slip.TEXT and b"board ready" in d)
        bad_fcs = bytearray(slip.encode(slip.T_COAP, b"\x40\x01\x00\x01"))
        bad_fcs[3] ^= 0xFF
        junk = (b"line noise\r\n" + b"\xc0\xa9" + bytes(range(1, 0xC0)) * 40  # 7.6 KB frame: oversize
                + b"\xc0" + bytes(bad_fcs) + b"\xc0\xa9\x40\xdb\x41\xc0" + b"\xc0\x42xx\xc0"
                + b"\xc0\xa9\x40\x01\xdb\xc0")
        os.write(fd, junk)
        get = bytes.fromhex("4201c0dbc0db") + b"\xb5stats"  # CON GET /stats, MID and token need escaping
        os.write(fd, slip.encode(slip.T_COAP, get))
        ev, payload = _read_until(fd, dec, lambda ev, d: ev == slip.COAP)
        assert payload[:4] == bytes.fromhex("6245c0db") and payload[4:6] == b"\xc0\xdb", payload
        body = payload[payload.index(b"\xff") + 1:].decode()
        assert body == "frames=1 oversize=1 bad_fcs=1 bad_escape=1 unknown=1 aborted=1", body
    finally:
        os.close(fd)
    assert board.proc.poll() is None, board.stderr()


def test_ctrl_c_as_text_interrupts_but_not_inside_a_frame(board):
    from coap import slip
    fd = os.open(board.tty, os.O_RDWR | os.O_NOCTTY)
    board.start()
    try:
        dec = slip.Decoder()
        _read_until(fd, dec, lambda ev, d: ev == slip.TEXT and b"board ready" in d)
        # MID 0x0303 and token 0x03: Ctrl-C bytes inside a frame are data.
        os.write(fd, slip.encode(slip.T_COAP, bytes.fromhex("4101030303") + b"\xb5hello"))
        ev, payload = _read_until(fd, dec, lambda ev, d: ev == slip.COAP)
        assert payload[:5] == bytes.fromhex("6145030303") and payload.endswith(b"world")
        assert board.proc.poll() is None
        os.write(fd, b"\x03")  # as plain text, as a terminal or mpremote sends it
        rc = board.proc.wait(timeout=20)
    finally:
        os.close(fd)
    if board.runtime == "micropython":
        # The unix port exits with 130 on an uncaught KeyboardInterrupt (its traceback goes to the console,
        # i.e. the line, which the hangup discards).
        assert rc == 130, (rc, board.stderr())
    else:
        assert "KeyboardInterrupt" in board.stderr(), (rc, board.stderr())


def _read_until(fd, dec, pred, timeout=20):
    import select
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if not r:
            continue
        dec.feed(os.read(fd, 4096))
        found = None
        while (ev := dec.next()) is not None:
            if found is None and pred(ev, bytes(dec.data)):
                found = (ev, bytes(dec.data))
        if found:
            return found
    raise AssertionError("nothing matching arrived from the board")


def test_gateway_exits_when_the_board_goes_away(board):
    g = GatewayProc(board.tty)
    board.start()
    g.wait_text("board ready")
    board.proc.kill()  # the line hangs up: the gateway's reads fail
    board.proc.wait()
    g.proc.wait(timeout=20)
    rc, err = g.stop()
    assert rc == 1 and "serial port closed" in err, err


CLIENT_BOARD = r'''
import sys
if sys.implementation.name == "micropython" and ".frozen" not in sys.path:
    sys.path.append(".frozen")
import asyncio
import binascii
import hashlib
from coap.serial import SerialTransport
from coap.client import Client


def digest(b):
    return binascii.hexlify(hashlib.sha256(bytes(b)).digest()).decode()


def code(r):
    return "%d.%02d" % (r.code >> 5, r.code & 31)


async def main():
    t = SerialTransport()
    c = Client(t)
    print("board client ready")
    r = await c.get(t.remote, "/time")
    print("time %s %s" % (code(r), bytes(r.payload).decode()))
    r = await c.get(t.remote, "/example_data", szx=2)
    print("example_data %s %d %s" % (code(r), len(r.payload), digest(r.payload)))
    r = await c.get(t.remote, "/async", options=[(15, b"1")])
    print("async %s %s" % (code(r), bytes(r.payload).decode()))
    body = bytes((i * 7) & 255 for i in range(3000))
    r = await c.put(t.remote, "/example_data", body, szx=2)
    print("put %s %s" % (code(r), digest(body)))
    print("client done")
    while True:  # a board keeps running; the line stays up
        await asyncio.sleep(1)


asyncio.run(main())
'''



@pytest.mark.parametrize("runtime", RUNTIMES)
def test_board_as_client_through_upstream(tmp_path, runtime):
    # Our client on the board reaches libcoap's coap-server-notls through `hourglass gateway --upstream`:
    # GET, Block2 at 64 bytes, a separate response (/async), and a 3000-byte Block1 PUT.
    import hashlib
    port = free_udp_port()
    server = subprocess.Popen(["coap-server-notls", "-A", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    board = Board(tmp_path, runtime, CLIENT_BOARD)
    g = None
    try:
        reference, err = coap_client_body(tmp_path, "-m", "get", f"coap://127.0.0.1:{port}/example_data")
        assert len(reference) > 100, err
        g = GatewayProc(board.tty, "--upstream", f"127.0.0.1:{port}", "-v")
        board.start()
        g.wait_text("client done", timeout=60)
        text = g.text()
        assert re.search(r"^time 2\.05 \w+ +\d+ \d\d:\d\d:\d\d$", text, re.M), text
        want = hashlib.sha256(reference.rstrip(b"\n")).hexdigest()
        assert f"example_data 2.05 {len(reference) - 1} {want}" in text, text
        assert "async 2.05 done" in text, text
        m = re.search(r"^put (2\.0[14]) (\w+)$", text, re.M)
        assert m, text
        # The server now holds the board's upload: read it back directly, without the gateway.
        stored, err = coap_client_body(tmp_path, "-m", "get", f"coap://127.0.0.1:{port}/example_data")
        assert stored == bytes((i * 7) & 255 for i in range(3000)) + b"\n", (len(stored), err)
        assert hashlib.sha256(stored[:-1]).hexdigest() == m.group(2)
        rc, err = g.stop()
        assert rc == 0 and " 0 unroutable" in err, err
    finally:
        if g is not None and g.proc.poll() is None:
            g.stop()
        board.close()
        server.kill()
        server.wait()


def test_gateway_reconnects_when_the_board_comes_back(tmp_path):
    # A board that resets its USB port: the device node goes away and a new one appears under the same name
    # (here a symlink moved from one pty to the next). With --reconnect the gateway keeps its UDP side and
    # reopens the port; clients reach the new board.
    link = tmp_path / "ttyBOARD"
    first = Board(tmp_path, "micropython")
    link.symlink_to(first.tty)
    g = GatewayProc(str(link), "--reconnect")
    second = None
    try:
        first.start()
        g.wait_text("board ready")
        out, err = coap_client("-m", "get", g.url + "/hello")
        assert out == b"world\n", (out, err)
        first.close()  # unplugged
        g.wait_log("waiting for .*ttyBOARD to come back")
        (tmp_path / "second").mkdir()
        second = Board(tmp_path / "second", "micropython")
        link.unlink()
        link.symlink_to(second.tty)
        g.wait_log("ttyBOARD is back")
        second.start()
        g.wait_text("board ready", timeout=30, count=2)
        out, err = coap_client("-m", "put", "-e", "after reset", g.url + "/r")
        out, err = coap_client("-m", "get", g.url + "/r")
        assert out == b"after reset\n", (out, err)
        rc, err = g.stop()
        assert rc == 0, err
    finally:
        if g.proc.poll() is None:
            g.stop()
        if second is not None:
            second.close()


class CorruptingLine:
    """Two ptys joined by the test: the board on one, the gateway on the other. The 2nd and 5th CoAP frames in
    each direction get one bit flipped, so the receiver's FCS check must drop them and CoAP must retransmit."""

    def __init__(self, board_tty):
        from coap import slip
        self.slip = slip
        self.board_side = os.open(board_tty, os.O_RDWR | os.O_NOCTTY)
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.tty = os.ttyname(self.slave)  # the gateway opens this one
        self.corrupted = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._pump, args=(self.board_side, self.master), daemon=True),
                        threading.Thread(target=self._pump, args=(self.master, self.board_side), daemon=True)]
        for th in self.threads:
            th.start()

    def _pump(self, src, dst):
        import select
        slip = self.slip
        dec = slip.Decoder()
        n = 0
        while not self.stop.is_set():
            r, _, _ = select.select([src], [], [], 0.1)
            if not r:
                continue
            try:
                dec.feed(os.read(src, 4096))
            except OSError:
                return
            while (ev := dec.next()) is not None:
                data = bytes(dec.data)
                if ev == slip.TEXT:
                    out = data
                else:
                    out = bytearray(slip.encode(slip.T_COAP if ev == slip.COAP else slip.T_DIAG, data))
                    if ev == slip.COAP:
                        n += 1
                        if n in (2, 5):
                            j = 4 if out[4] not in (0xC0, 0xDB, 0xC1, 0xDA) else 2
                            out[j] ^= 0x01  # a data bit: still a well-formed frame, but the FCS fails
                            self.corrupted += 1
                os.write(dst, bytes(out))

    def close(self):
        self.stop.set()
        for th in self.threads:
            th.join(timeout=5)
        for fd in (self.board_side, self.master, self.slave):
            os.close(fd)


def test_corrupted_frames_are_dropped_and_coap_recovers(tmp_path):
    board = Board(tmp_path, "micropython")
    line = CorruptingLine(board.tty)
    g = GatewayProc(line.tty)
    try:
        board.start()
        g.wait_text("board ready")
        for i in range(2):
            out, err = coap_client("-m", "put", "-e", "v%d" % i, g.url + "/r")
            out, err = coap_client("-m", "get", g.url + "/r")
            assert out == b"v%d\n" % i, (out, err)
        out, err = coap_client("-m", "get", g.url + "/big")
        assert out == BIG + b"\n", (len(out), err)
        out, err = coap_client("-m", "get", g.url + "/stats")
        assert b" bad_fcs=2 " in out, (out, err)  # the board dropped the two corrupted requests
        g.wait_text("ticks done")
        rc, err = g.stop()
        assert rc == 0 and line.corrupted == 4, (line.corrupted, err)
        assert "2 bad FCS" in err, err  # the board's two corrupted answers, dropped by the gateway
        # Each PUT ran its handler exactly once although requests or answers were lost and retransmitted.
        assert g.text().count("put /r: 2 bytes") == 2, g.text()
        ticks = [int(x) for x in re.findall(r"^tick (\d+) of", g.text(), re.M)]
        assert ticks == list(range(TICKS))
    finally:
        if g.proc.poll() is None:
            g.stop()
        line.close()
        board.close()
