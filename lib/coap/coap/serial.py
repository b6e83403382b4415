# CoAP over a serial line (slipmux framing, see coap.slip): the transport for boards without IP (nRF52840)
# or any board on USB. It shares the line with print() and REPL output, which stay plain text; the host
# side is `hourglass gateway`, which bridges the line to UDP.
#
# The line has one peer, so `remote` is a constant. send() writes the whole frame at once (a blocking write
# into the UART/USB driver's buffer): a frame is never split by print() output from another task, and the
# send/recv interface stays the one coap.transport describes.
import sys
import asyncio
from coap import slip
from coap import Params

REMOTE = "serial"

# A serial line is slow (115200 bit/s moves a full 1280-byte frame in ~110 ms, escaping can double that)
# and the gateway adds a hop: wait longer before retransmitting. NSTART stays 1. The line itself adds
# little latency, so MAX_LATENCY (and with it EXCHANGE_LIFETIME, hence the dedup cache) is shorter.
SERIAL_PARAMS = Params(ack_timeout=3000, ack_random_factor=1.5, max_retransmit=4, nstart=1,
                       max_latency=10000)

_IS_MICROPYTHON = sys.implementation.name == "micropython"


class SerialTransport:
    """stream: a machine.UART (or any stream with readinto/write); None uses the console, i.e.
    sys.stdin.buffer and sys.stdout.buffer (USB CDC on a board with no spare UART, stdin/stdout or a pty
    on the unix VM). out: a separate output stream (default: stream, or sys.stdout.buffer).
    max_frame: the largest unescaped frame (slipmux MTU 1280); messages up to max_frame - 3 bytes.

    On the console, Ctrl-C (0x03) inside a CoAP frame must not interrupt the program, so keyboard
    interrupts are off while the transport is open; a 0x03 arriving as plain text (outside any frame)
    still raises KeyboardInterrupt from recv(), so a terminal or mpremote can stop the program."""

    def __init__(self, stream=None, out=None, params=None, max_frame=slip.MTU, remote=REMOTE, chunk=128):
        self.params = params or SERIAL_PARAMS
        self.max_message_size = max_frame - 3
        self.remote = remote
        self._console = stream is None
        if stream is None:
            stream = sys.stdin.buffer
            if out is None:
                out = sys.stdout.buffer
        self._in = stream
        self._out = out if out is not None else stream
        self._dec = slip.Decoder(max_frame)
        self._rx = bytearray(chunk)
        self._tx = bytearray(slip.max_encoded(self.max_message_size))
        self._txmv = memoryview(self._tx)
        self._reader = None
        self._closed = False
        self.sent = 0
        self.dropped = 0  # frames not written (line error) or too big
        if self._console:
            _kbd_intr(-1)

    @property
    def decoder(self):
        """The slip.Decoder (its counters: frames, oversize, bad_fcs, bad_escape, unknown, aborted)."""
        return self._dec

    async def _read(self):
        # Returns the number of bytes read into self._rx; 0 at end of stream.
        if _IS_MICROPYTHON:
            s = self._in
            if hasattr(s, "any"):
                # A UART's readinto returns what has arrived, so asyncio's StreamReader fits.
                if self._reader is None:
                    self._reader = asyncio.StreamReader(s)
                while True:
                    n = await self._reader.readinto(self._rx)
                    if n:
                        return n
            # Console streams read exactly len(buf) bytes (they block until then), so take one byte at a
            # time for as long as the poller says more are waiting.
            if self._reader is None:
                import select
                self._reader = select.poll()
                self._reader.register(s, select.POLLIN)
                self._one = bytearray(1)
            await _Readable(s)
            rx = self._rx
            one = self._one
            poll = self._reader.poll
            n = 0
            while n < len(rx):
                if not s.readinto(one):
                    break
                rx[n] = one[0]
                n += 1
                if not poll(0):
                    break
            return n
        fd = self._in.fileno()
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        loop.add_reader(fd, fut.set_result, None)
        try:
            await fut
        finally:
            loop.remove_reader(fd)
        import os
        return os.readv(fd, [self._rx])

    async def recv(self):
        dec = self._dec
        while True:
            if self._closed:
                raise OSError("serial transport closed")
            ev = dec.next()
            if ev is None:
                n = await self._read()
                if self._closed:
                    raise OSError("serial transport closed")
                if not n:
                    raise OSError("serial line closed (end of stream)")
                dec.feed(self._rx, n)
            elif ev == slip.COAP:
                return dec.data, self.remote
            elif ev == slip.TEXT and self._console and bytes(dec.data).find(b"\x03") >= 0:
                raise KeyboardInterrupt
            # DIAG and PACKET frames from the host are not for us; stray text is ignored.

    def _write_frame(self, ftype, data):
        if self._closed:
            raise OSError("serial transport closed")
        n = len(data)
        if n > self.max_message_size:
            self.dropped += 1
            return
        k = slip.encode_into(self._tx, ftype, data, n)
        if self._console and not _IS_MICROPYTHON:
            sys.stdout.flush()  # keep print() text ahead of the frame written through the binary layer
        out = self._out
        mv = self._txmv
        i = 0
        try:
            while i < k:
                w = out.write(mv[i:k])
                if w is None:  # non-blocking stream, driver buffer full: the frame is lost, CoAP retransmits
                    break
                i += w
            if hasattr(out, "flush"):
                out.flush()
        except OSError as e:
            if e.args and e.args[0] in (11, 35):  # EAGAIN
                i = -1
            else:
                raise
        if i == k:
            self.sent += 1
        else:
            self.dropped += 1  # the receiver drops the torn frame (FCS) at the next END

    def send(self, data, remote):
        self._write_frame(slip.T_COAP, data)

    def diag(self, text):
        """Send a diagnostic frame (slipmux type 0x0A): text the gateway shows, kept apart from CoAP."""
        if isinstance(text, str):
            text = text.encode()
        self._write_frame(slip.T_DIAG, text[:self.max_message_size])

    def close(self):
        if self._closed:
            return
        self._closed = True
        if self._console:
            _kbd_intr(3)


class _Readable:
    # MicroPython: yielding queue_read parks the task until the stream polls readable.
    def __init__(self, s):
        self.s = s

    def __iter__(self):
        yield asyncio.core._io_queue.queue_read(self.s)

    __await__ = __iter__


def _kbd_intr(c):
    try:
        import micropython
        micropython.kbd_intr(c)
    except (ImportError, AttributeError):
        pass
