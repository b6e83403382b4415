"""`hourglass gateway` as a command: help, errors, shutdown, and the line mechanics on a pty.

Here the test holds the pty's board side itself and checks the exact bytes the gateway writes to the line and
the datagrams it sends back; test_coap_serial_pty.py runs real CoAP peers on both ends.
"""
from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
import tty

import pytest

from coap import slip
from hourglass import mpvm


def hourglass(*args, **kw):
    return subprocess.run([sys.executable, "-m", "hourglass.cli", *args], capture_output=True, text=True,
                          cwd=mpvm.REPO, timeout=60, **kw)


class Line:
    """A pty: the gateway opens the slave by name; the test plays the board on the master."""

    def __init__(self):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.name = os.ttyname(self.slave)
        self.dec = slip.Decoder()

    def read_frame(self, timeout=10):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            ev = self.dec.next()
            if ev == slip.COAP:
                return bytes(self.dec.data)
            if ev is None:
                r, _, _ = select.select([self.master], [], [], 0.2)
                if r:
                    self.dec.feed(os.read(self.master, 4096))
        raise AssertionError("no frame from the gateway")

    def close(self):
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def line():
    ln = Line()
    yield ln
    ln.close()


class Gw:
    def __init__(self, port, *extra):
        self.p = subprocess.Popen([sys.executable, "-m", "hourglass.cli", "gateway", "--port", port,
                                   "--listen", "127.0.0.1:0", *extra],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=mpvm.REPO)
        first = self.p.stderr.readline().decode()
        m = re.search(r"coap://127\.0\.0\.1:(\d+)", first)
        assert m, first + self.p.stderr.read().decode()
        self.addr = ("127.0.0.1", int(m.group(1)))

    def stop(self, sig=signal.SIGINT):
        self.p.send_signal(sig)
        out, err = self.p.communicate(timeout=20)
        return self.p.returncode, out.decode(), err.decode()


def test_help_lists_the_options():
    r = hourglass("gateway", "--help")
    assert r.returncode == 0
    for opt in ("--port", "--baud", "--listen", "--log", "--quiet", "--verbose", "--max-frame", "--upstream",
                "--reconnect"):
        assert opt in r.stdout
    assert "gateway" in hourglass("--help").stdout


def one_line_error(r, start):
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert r.stderr.startswith(start) and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr


def test_missing_port_is_a_clear_error():
    one_line_error(hourglass("gateway", "--port", "/dev/does-not-exist-hourglass"),
                   "hourglass gateway: cannot open /dev/does-not-exist-hourglass: no such device")
    r = hourglass("gateway")  # no --port at all: a usage error
    assert r.returncode == 2 and "--port" in r.stderr


def test_the_port_is_an_option_like_every_other_subcommand(line):
    r = hourglass("gateway", line.name)
    assert r.returncode == 2 and "required: --port" in r.stderr


def test_not_a_serial_port_is_a_clear_error(tmp_path):
    f = tmp_path / "plain-file"
    f.write_bytes(b"")
    one_line_error(hourglass("gateway", "--port", str(f)), f"hourglass gateway: cannot open {f}: ")


def test_bad_arguments(line, tmp_path):
    r = hourglass("gateway", "--port", line.name, "--listen", "nonsense")
    assert r.returncode == 2 and "HOST:PORT" in r.stderr
    r = hourglass("gateway", "--port", line.name, "--max-frame", "10")
    assert r.returncode == 2 and "at least 64" in r.stderr
    one_line_error(hourglass("gateway", "--port", line.name, "--upstream", "no-such-host.invalid:5683"),
                   "hourglass gateway: --upstream no-such-host.invalid:5683: ")
    one_line_error(hourglass("gateway", "--port", line.name, "--log", str(tmp_path / "no" / "such" / "dir.log")),
                   f"hourglass gateway: --log {tmp_path / 'no' / 'such' / 'dir.log'}: ")


def test_busy_udp_port(line):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    try:
        r = hourglass("gateway", "--port", line.name, "--listen", "127.0.0.1:%d" % s.getsockname()[1])
    finally:
        s.close()
    one_line_error(r, "hourglass gateway: cannot listen on 127.0.0.1:")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_clean_shutdown(line, sig):
    g = Gw(line.name)
    rc, out, err = g.stop(sig)
    assert rc == 0 and "stopped: 0 messages to the board, 0 from it" in err and "Traceback" not in err, err


def test_datagram_to_frame_and_back(line, tmp_path):
    log = tmp_path / "board.log"
    g = Gw(line.name, "--log", str(log))
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(10)
    try:
        # CON GET /x, MID 0x0102, token c0db: the gateway re-labels MID and token on the line.
        request = bytes.fromhex("42010102c0dbb178")
        client.sendto(request, g.addr)
        on_line = line.read_frame()
        assert on_line[0] == 0x44 and on_line[1] == 0x01 and on_line[8:] == b"\xb1x"
        gmid, gtok = on_line[2:4], on_line[4:8]
        # The board prints, then answers (piggybacked), then prints a diagnostic frame.
        answer = bytes((0x64, 0x45)) + gmid + gtok + b"\xffhi \xc0\xdb"
        os.write(line.master, "board says h\u00e9llo\r\n".encode() + slip.encode(slip.T_COAP, answer)
                 + slip.encode(slip.T_DIAG, b"diag line\n"))
        data, addr = client.recvfrom(2048)
        assert addr == g.addr and data == bytes.fromhex("62450102c0db") + b"\xffhi \xc0\xdb"
        # A second request: its answer first arrives with a bad FCS (dropped), then intact; the client gets
        # only the intact one.
        client.sendto(bytes.fromhex("42010103c0dbb178"), g.addr)
        on_line = line.read_frame()
        answer = bytes((0x64, 0x45)) + on_line[2:8] + b"\xffsecond"
        bad = bytearray(slip.encode(slip.T_COAP, answer))
        bad[5] ^= 1
        os.write(line.master, bytes(bad) + slip.encode(slip.T_COAP, answer))
        data, addr = client.recvfrom(2048)
        assert data == bytes.fromhex("62450103c0db") + b"\xffsecond"
        client.settimeout(0.3)
        with pytest.raises(socket.timeout):
            client.recvfrom(2048)
    finally:
        client.close()
    rc, out, err = g.stop()
    assert rc == 0
    assert out == "board says h\u00e9llo\r\ndiag line\n", repr(out)
    assert log.read_bytes().decode() == out
    assert "2 messages to the board, 2 from it" in err and "1 bad FCS" in err, err


def test_quiet_and_oversize(line):
    g = Gw(line.name, "--quiet", "--max-frame", "64")
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        client.sendto(bytes.fromhex("5001aaaa") + b"\xff" + bytes(100), g.addr)  # NON POST, 105 bytes
        client.sendto(bytes.fromhex("5001aaab"), g.addr)
        on_line = line.read_frame()
        assert on_line[:2] == b"\x54\x01"  # only the small one crosses (with a 4-byte token)
        # Text, then a NON response: once the client has the response, the gateway has handled the text.
        os.write(line.master, b"not shown\n" + slip.encode(slip.T_COAP, b"\x54\x44\x99\x99" + on_line[4:8]))
        client.settimeout(10)
        data, _ = client.recvfrom(2048)
        assert data == bytes.fromhex("50449999")
    finally:
        client.close()
    rc, out, err = g.stop()
    assert rc == 0 and out == "" and "1 too big" in err and "exceeds the line's 61" in err, err


def test_port_in_use_by_another_program(line):
    g = Gw(line.name)
    try:
        one_line_error(hourglass("gateway", "--port", line.name), f"hourglass gateway: cannot open {line.name}: ")
    finally:
        rc, out, err = g.stop()
    assert rc == 0
