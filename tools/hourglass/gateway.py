"""`hourglass gateway`: bridge a board's serial line (CoAP in slipmux/SLIP frames) to CoAP over UDP.

The gateway listens on a UDP address (127.0.0.1:5683 by default). Each datagram a CoAP client sends there goes
to the board as one CoAP frame; the board's answers go back to the client that asked. Text the board prints
(plain print()/REPL output between frames, and slipmux diagnostic frames) is shown on stdout and optionally
appended to a log file; the gateway's own messages go to stderr.

Several clients can share the board: the board sees one peer (the gateway), so the gateway gives every
client request its own Message ID and Token on the serial side and maps the board's replies back (ACK/RST by
Message ID, separate responses and Observe notifications by Token). Messages the board sends with Message IDs
of its own (CON responses, notifications) keep them, so clients' ACK/RST replies pass through unchanged.

With --upstream HOST:PORT the board can be a client too (a SUIT fetch, the CoAP-EAP trigger): its requests go
to that server, and the server's answers come back to the board.
"""
from __future__ import annotations

import argparse
import asyncio
import codecs
import collections
import os
import signal
import sys
import time
from pathlib import Path

from hourglass import mpvm, repl
from hourglass.common import UserError

DEFAULT_LISTEN = "127.0.0.1:5683"
EXCHANGE_LIFETIME = 247.0  # RFC 7252 section 4.8.2 with default parameters: a client never reuses a MID sooner
TOKEN_IDLE = 3600.0  # a token unused this long is forgotten (Observe notifications refresh it)
TABLE_LIMIT = 20000
GATEWAY_TOKEN_LEN = 4

CON, NON, ACK, RST = 0, 1, 2, 3


def register(subparsers) -> None:
    p = subparsers.add_parser("gateway", help="bridge a board's serial port (or a pty) to CoAP over UDP",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", "-p", required=True,
                   help="serial device of the board: /dev/ttyACM0, /dev/ttyUSB0, /dev/pts/N, COM3")
    p.add_argument("-b", "--baud", type=int, default=115200, help="bit rate (default: %(default)s)")
    p.add_argument("-l", "--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT", type=address_arg,
                   help="UDP address CoAP clients send to (default: %(default)s; port 0 picks a free one)")
    p.add_argument("--log", type=Path, metavar="FILE", help="also append the board's text output to FILE")
    p.add_argument("-q", "--quiet", action="store_true", help="do not show the board's text on stdout")
    p.add_argument("-v", "--verbose", action="store_true", help="log every forwarded CoAP message on stderr")
    p.add_argument("-u", "--upstream", metavar="HOST:PORT", type=address_arg,
                   help="send the board's own CoAP requests to this UDP server (default: drop them)")
    p.add_argument("-r", "--reconnect", action="store_true",
                   help="when the port goes away (a board resetting its USB), wait for it and reopen it")
    p.add_argument("--max-frame", type=max_frame_arg, default=1280, metavar="BYTES",
                   help="largest unescaped slipmux frame (default: %(default)s, the draft's MTU)")
    p.set_defaults(func=run_command)


def _device_coap():
    # The framing and the message codec are the device's own sans-IO modules (lib/coap/coap/slip.py and
    # msg.py): one implementation on both ends.
    path = str(mpvm.LIB / "coap")
    if path not in sys.path:
        sys.path.insert(0, path)
    import coap.msg
    import coap.slip
    return coap


def _slip():
    return _device_coap().slip


def address_arg(text: str) -> tuple[str, int]:
    try:
        return parse_address(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def max_frame_arg(text: str) -> int:
    if not text.isdigit() or int(text) < 64:
        raise argparse.ArgumentTypeError(f"expected a number of bytes, at least 64, got {text!r}")
    return int(text)


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def resolve(addr: tuple[str, int]) -> tuple[str, int]:
    """The numeric (host, port) that datagrams from this server will come from."""
    import socket
    info = socket.getaddrinfo(addr[0], addr[1], socket.AF_INET, socket.SOCK_DGRAM)
    host, port = info[0][4][:2]
    return str(host), int(port)


def _decode(data):
    """The CoAP message (coap.msg), or None when it is malformed."""
    coap = _device_coap()
    try:
        return coap.msg.decode(bytes(data))
    except coap.MessageError:
        return None


def describe(data: bytes) -> str:
    """Short form of a CoAP message for logs: type, code, MID, token."""
    m = _decode(data)
    if m is None:
        return f"<{len(data)} bytes>"
    return (f"{'CON NON ACK RST'.split()[m.type]} {m.code >> 5}.{m.code & 31:02d} mid={m.mid} "
            f"token={bytes(m.token).hex() or '-'} ({len(data)} B)")


def _header(data) -> tuple[int, int, int, bytes] | None:
    """(type, code, mid, token) of a CoAP message, or None when it is malformed."""
    m = _decode(data)
    return None if m is None else (m.type, m.code, m.mid, bytes(m.token))


def _rewrite(data, mid: int, token: bytes) -> bytes:
    """The message with another MID and token; options and payload byte for byte as they were."""
    m = _decode(data)
    if m is None:
        raise ValueError("not a CoAP message")
    rest = bytes(data[4 + len(m.token):])
    return bytes((0x40 | m.type << 4 | len(token), m.code)) + mid.to_bytes(2, "big") + token + rest


class Relay:
    """Maps CoAP messages between many UDP clients and the one board, and the board's own requests to an
    optional upstream server. Sans-IO: callers pass the time."""

    def __init__(self, rng=os.urandom, upstream=None):
        self.upstream = upstream
        self.next_mid = int.from_bytes(rng(2), "big")
        self.next_token = int.from_bytes(rng(4), "big")
        self.by_client_mid: collections.OrderedDict = collections.OrderedDict()  # (addr, mid) -> (gmid, time)
        self.by_gmid: dict = {}  # gmid -> (addr, mid)
        self.by_client_token: collections.OrderedDict = collections.OrderedDict()  # (addr, token) -> gtoken
        self.by_gtoken: dict = {}  # gtoken -> [addr, token, last use]
        self.dropped = 0

    def _expire(self, now: float) -> None:
        while self.by_client_mid:
            key, (gmid, t) = next(iter(self.by_client_mid.items()))
            if now - t < EXCHANGE_LIFETIME and len(self.by_client_mid) <= TABLE_LIMIT:
                break
            del self.by_client_mid[key]
            if self.by_gmid.get(gmid) == key:
                del self.by_gmid[gmid]
        while self.by_client_token:
            key, gtok = next(iter(self.by_client_token.items()))
            if now - self.by_gtoken[gtok][2] < TOKEN_IDLE and len(self.by_client_token) <= TABLE_LIMIT:
                break
            del self.by_client_token[key]
            del self.by_gtoken[gtok]

    def _gateway_mid(self, addr, mid: int, now: float) -> int:
        key = (addr, mid)
        entry = self.by_client_mid.get(key)
        if entry is not None:  # a retransmission: same MID towards the board, so the board deduplicates it
            return entry[0]
        gmid = self.next_mid
        self.next_mid = (gmid + 1) & 0xFFFF
        old = self.by_gmid.pop(gmid, None)
        if old is not None:
            self.by_client_mid.pop(old, None)
        self.by_client_mid[key] = (gmid, now)
        self.by_gmid[gmid] = key
        return gmid

    def _gateway_token(self, addr, token: bytes, now: float) -> bytes:
        key = (addr, token)
        gtok = self.by_client_token.get(key)
        if gtok is None:
            gtok = self.next_token.to_bytes(GATEWAY_TOKEN_LEN, "big")
            self.next_token = (self.next_token + 1) & 0xFFFFFFFF
            self.by_client_token[key] = gtok
            self.by_gtoken[gtok] = [addr, token, now]
        else:
            self.by_client_token.move_to_end(key)
            self.by_gtoken[gtok][2] = now
        return gtok

    def from_client(self, data, addr, now: float) -> bytes | None:
        """The message to send to the board for a datagram from a client, or None to drop it."""
        self._expire(now)
        h = _header(data)
        if h is None:
            self.dropped += 1
            return None
        mtype, code, mid, token = h
        upstream = addr == self.upstream
        if mtype in (ACK, RST):
            # Answers to the board's own CON messages carry the board's MID (and, piggybacked, its token):
            # they pass through.
            if code != 0 and not upstream:
                self.dropped += 1  # only the upstream server answers requests from the board
                return None
            return bytes(data)
        if code != 0 and code >> 5 != 0:
            if not upstream:
                self.dropped += 1  # a CON/NON response to a request the board did not send via the gateway
                return None
            # A separate response from upstream: the token is the board's own; the MID is re-labelled so
            # the board's ACK/RST for it finds its way back.
            return _rewrite(data, self._gateway_mid(addr, mid, now), token)
        gmid = self._gateway_mid(addr, mid, now)
        gtok = self._gateway_token(addr, token, now) if code != 0 else b""
        return _rewrite(data, gmid, gtok)

    def from_board(self, data, now: float):
        """(message, client address) for a message from the board, ("reply", message) when the gateway
        itself answers the board (RST to a ping), or None to drop it."""
        h = _header(data)
        if h is None:
            self.dropped += 1
            return None
        mtype, code, mid, token = h
        if mtype in (ACK, RST):
            key = self.by_gmid.get(mid)
            if key is None:
                self.dropped += 1
                return None
            addr, cmid = key
            ctok = token
            if token:
                entry = self.by_gtoken.get(token)
                if entry is None:
                    self.dropped += 1
                    return None
                entry[2] = now
                ctok = entry[1]
            return _rewrite(data, cmid, ctok), addr
        if code == 0:
            if mtype == CON:  # CoAP ping from the board: the gateway is its peer and answers it
                return "reply", bytes((0x70, 0)) + bytes(data[2:4])
            self.dropped += 1
            return None
        if code >> 5 == 0:  # a request from the board
            if self.upstream is None:
                self.dropped += 1
                return None
            return bytes(data), self.upstream
        entry = self.by_gtoken.get(token)
        if entry is None:
            self.dropped += 1  # a response nobody here asked for
            return None
        entry[2] = now
        return _rewrite(data, mid, entry[1]), entry[0]


class TextSink:
    """The board's text to stdout and/or a log file, decoded as UTF-8 across chunk boundaries; terminal
    control characters other than newline, carriage return and tab are shown escaped."""

    _SAFE = {0x09, 0x0A, 0x0D}

    def __init__(self, stdout, log):
        self.out = stdout
        self.log = log
        self.dec = codecs.getincrementaldecoder("utf-8")("replace")
        self.nbytes = 0

    def write(self, data) -> None:
        self.nbytes += len(data)
        text = self.dec.decode(bytes(data))
        if any((ord(c) < 0x20 and ord(c) not in self._SAFE) or 0x7F <= ord(c) < 0xA0 for c in text):
            text = "".join(c if (ord(c) >= 0x20 or ord(c) in self._SAFE) and not 0x7F <= ord(c) < 0xA0
                           else "\\x%02x" % ord(c) for c in text)
        for f in (self.out, self.log):
            if f is not None:
                f.write(text)
                f.flush()


class Gateway:
    def __init__(self, ser, listen, sink: TextSink, max_frame: int, verbose: bool, err=sys.stderr,
                 upstream=None, reconnect=False):
        slip = _slip()
        self.slip = slip
        self.ser = ser
        self.listen = listen
        self.sink = sink
        self.verbose = verbose
        self.err = err
        self.max_message = max_frame - 3
        self.dec = slip.Decoder(max_frame)
        self.relay = Relay(upstream=upstream)
        self.udp: asyncio.DatagramTransport | None = None
        self.stopped = asyncio.Event()
        self.failure: str | None = None
        self.to_board = self.from_board = self.too_big = self.offline = 0
        self.reconnect = reconnect
        self.port = ser.port
        self.baud = ser.baudrate
        self.reopen_task: asyncio.Task | None = None

    def log(self, msg: str) -> None:
        print(f"gateway: {msg}", file=self.err, flush=True)

    # --- serial side

    def on_serial_readable(self) -> None:
        import serial
        try:
            chunk = self.ser.read(self.ser.in_waiting or 1)
        except (serial.SerialException, OSError) as e:
            self.line_lost(f"serial port closed: {e}")
            return
        if not chunk:
            return
        self.dec.feed(chunk)
        slip = self.slip
        now = time.monotonic()
        while True:
            ev = self.dec.next()
            if ev is None:
                break
            if ev == slip.TEXT or ev == slip.DIAG:
                self.sink.write(self.dec.data)
            elif ev == slip.COAP:
                self.from_board += 1
                self.on_board_message(bytes(self.dec.data), now)

    def on_board_message(self, data: bytes, now: float) -> None:
        routed = self.relay.from_board(data, now)
        if routed is None:
            if self.verbose:
                self.log(f"board -> nobody: {describe(data)} (dropped)")
            return
        if routed[0] == "reply":
            self.send_board(routed[1])
            return
        msg, addr = routed
        if self.verbose:
            self.log(f"board -> {addr[0]}:{addr[1]}: {describe(msg)}")
        if self.udp is not None:
            self.udp.sendto(msg, addr)

    def send_board(self, msg: bytes) -> None:
        import serial
        if len(msg) > self.max_message:
            self.too_big += 1
            self.log(f"message of {len(msg)} bytes exceeds the line's {self.max_message}: dropped")
            return
        if self.ser is None:
            self.offline += 1  # waiting for the port to come back; the client will retransmit
            return
        try:
            self.ser.write(self.slip.encode(self.slip.T_COAP, msg))
            self.to_board += 1
        except serial.SerialTimeoutException:
            self.log("serial write timed out (board not reading?): message dropped")
        except (serial.SerialException, OSError) as e:
            self.line_lost(f"serial write failed: {e}")

    def line_lost(self, reason: str) -> None:
        if not self.reconnect:
            self.fail(reason)
            return
        asyncio.get_running_loop().remove_reader(self.ser.fileno())
        try:
            self.ser.close()
        except Exception:  # the device is already gone
            pass
        self.ser = None
        self.log(f"{reason}; waiting for {self.port} to come back")
        self.reopen_task = asyncio.get_running_loop().create_task(self.reopen())

    async def reopen(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            try:
                ser = open_serial(self.port, self.baud)
            except UserError:
                continue
            self.ser = ser
            self.dec.reset()  # a half-received frame from before the loss is gone
            asyncio.get_running_loop().add_reader(ser.fileno(), self.on_serial_readable)
            self.log(f"{self.port} is back")
            return

    # --- UDP side

    def on_datagram(self, data: bytes, addr) -> None:
        msg = self.relay.from_client(data, addr, time.monotonic())
        if msg is None:
            if self.verbose:
                self.log(f"{addr[0]}:{addr[1]} -> board: {describe(data)} (dropped)")
            return
        if self.verbose:
            self.log(f"{addr[0]}:{addr[1]} -> board: {describe(msg)}")
        self.send_board(msg)

    def fail(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason
        self.stopped.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        gw = self

        class Protocol(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                gw.on_datagram(data, addr[:2])

            def error_received(self, exc):  # ICMP port unreachable from a client that went away
                pass

        udp, _ = await loop.create_datagram_endpoint(Protocol, local_addr=self.listen)
        self.udp = udp
        host, port = udp.get_extra_info("sockname")[:2]
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.stopped.set)
            except (NotImplementedError, RuntimeError):
                pass
        loop.add_reader(self.ser.fileno(), self.on_serial_readable)
        url_host = f"[{host}]" if ":" in host else host
        self.log(f"{self.ser.port} ({self.ser.baudrate} baud) <-> coap://{url_host}:{port}  (Ctrl-C stops)")
        try:
            await self.stopped.wait()
        finally:
            if self.reopen_task is not None:
                self.reopen_task.cancel()
            if self.ser is not None:
                loop.remove_reader(self.ser.fileno())
            udp.close()
            d = self.dec
            self.log(f"stopped: {self.to_board} messages to the board, {self.from_board} from it, "
                     f"{self.sink.nbytes} text bytes; dropped frames: {d.bad_fcs} bad FCS, {d.oversize} "
                     f"oversize, {d.bad_escape} bad escape, {d.unknown} unknown type, {d.aborted} aborted; "
                     f"{self.relay.dropped} unroutable, {self.too_big} too big, {self.offline} while offline")
        if self.failure:
            self.log(self.failure)
            return 1
        return 0


def open_serial(port: str, baud: int):
    """The board's port (exclusive: a second program on it, mpremote or another gateway, would steal bytes), or
    a one-line UserError naming the ports that exist."""
    return repl.open_port(port, baud, timeout=0, write_timeout=2)


def run_command(args) -> int:
    if sys.platform == "win32":  # the event loop watches the port's file descriptor (POSIX only)
        raise UserError("not supported on Windows (use WSL, or Linux/macOS)")
    upstream = None
    if args.upstream:
        try:
            upstream = resolve(args.upstream)
        except OSError as e:
            raise UserError(f"--upstream {args.upstream[0]}:{args.upstream[1]}: {e.strerror or e}") from None
    ser = open_serial(args.port, args.baud)
    log = None
    gw = None
    try:
        if args.log:
            try:
                log = open(args.log, "a", encoding="utf-8")
            except OSError as e:
                raise UserError(f"--log {args.log}: {e.strerror or e}") from None
        sink = TextSink(None if args.quiet else sys.stdout, log)
        gw = Gateway(ser, args.listen, sink, args.max_frame, args.verbose, upstream=upstream,
                     reconnect=args.reconnect)
        try:
            return asyncio.run(gw.run())
        except OSError as e:  # e.g. the UDP address is in use
            raise UserError(f"cannot listen on {args.listen[0]}:{args.listen[1]}: {e.strerror or e}") from None
    finally:
        for s in {ser, gw.ser if gw else None} - {None}:
            s.close()
        if log:
            log.close()
