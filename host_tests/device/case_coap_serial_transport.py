# coap.serial.SerialTransport with our client on one end of a serial wire and our server on the other, on
# each runtime's asyncio. The wire: on MicroPython a UART-like stream (io.IOBase with any/readinto/write and
# poll support, so the transport takes its machine.UART path through asyncio's StreamReader); on CPython a
# pair of OS pipes (its file-descriptor path). The console path and real peers through `hourglass gateway`
# are in host_tests/test_coap_serial_pty.py.
import hgtest
import asyncio
from coap import slip
from coap.serial import SerialTransport, SERIAL_PARAMS
from coap.server import Server
from coap.client import Client
from coap.transport import Params

# Both ends (server, client, two transports and the wire's buffers) share one VM here, where a board holds
# one end: more than the default 128k.
MP_HEAP = "192k"

# Short timers: the wire never loses anything unless a test corrupts it.
FAST = Params(ack_timeout=100, max_retransmit=6, max_latency=500)
BIG = bytes((i * 7) & 255 for i in range(3000))

if hgtest.IS_MICROPYTHON:
    import io

    class Wire(io.IOBase):
        """One direction of a serial line: what is written comes out of readinto (a UART's view)."""

        def __init__(self):
            self.buf = bytearray()
            self.tamper = None  # optional function(bytes) -> bytes applied to each write

        def any(self):
            return len(self.buf)

        def readinto(self, b):
            n = min(len(b), len(self.buf))
            if not n:
                return None
            b[:n] = self.buf[:n]
            self.buf = self.buf[n:]
            return n

        def write(self, b):
            data = bytes(b)
            if self.tamper:
                data = self.tamper(data)
            self.buf += data
            return len(b)

        def ioctl(self, req, arg):
            if req == 3:  # MP_STREAM_POLL
                return (arg & 1 if self.buf else 0) | (arg & 4)
            # Any other request (MP_STREAM_GET_FILENO above all) is not supported: answering 0 would make
            # the unix port's poller watch file descriptor 0 (stdin) instead of asking this stream.
            return -22  # -MP_EINVAL

    def wire_pair():
        w = Wire()
        return w, w
else:
    import os

    class _Writer:
        def __init__(self, f):
            self.f = f
            self.tamper = None

        def write(self, b):
            data = bytes(b)
            if self.tamper:
                data = self.tamper(data)
            self.f.write(data)
            return len(b)

        def flush(self):
            self.f.flush()

    def wire_pair():
        r, w = os.pipe()
        return open(r, "rb", buffering=0), _Writer(open(w, "wb", buffering=0))


def line():
    """Two SerialTransports joined back to back: (device side, host side, the device's and the host's
    output wire, whose .tamper a test may set)."""
    a_in, b_out = wire_pair()  # host -> device
    b_in, a_out = wire_pair()  # device -> host
    dev = SerialTransport(a_in, a_out, params=FAST)
    host = SerialTransport(b_in, b_out, params=FAST)
    return dev, host, a_out, b_out


def run(coro):
    return asyncio.run(coro)


def serve(t):
    state = {"r": b"initial", "puts": 0}

    def put(req):
        state["r"] = bytes(req.payload)
        state["puts"] += 1

    s = Server(t)
    s.route("/r", get=lambda req: state["r"], put=put, rt="test")
    s.route("/big", get=lambda req: BIG)
    s.start()
    return s, state


def test_params_suit_a_serial_line():
    assert SERIAL_PARAMS.nstart == 1
    assert SERIAL_PARAMS.ack_timeout > 2000  # slower than the RFC default: a slow line plus a gateway hop
    dev, host, _, _ = line()
    assert dev.max_message_size == slip.MTU - 3 and dev.remote == host.remote == "serial"
    dev.close()
    host.close()


def test_client_and_server_over_the_wire():
    async def main():
        dev, host, _, _ = line()
        dev.params = host.params = SERIAL_PARAMS  # nothing is lost here: no need for short timers
        s, state = serve(dev)
        c = Client(host)
        try:
            r = await c.get(host.remote, "/r")
            assert r.code == 69 and bytes(r.payload) == b"initial"
            r = await c.put(host.remote, "/r", b"\xc0\xdb value with END and ESC \xdb\xc0")
            assert r.code == 68
            r = await c.get(host.remote, "/r")
            assert bytes(r.payload) == b"\xc0\xdb value with END and ESC \xdb\xc0"
            r = await c.get(host.remote, "/big", szx=2)  # Block2 at 64 bytes: 47 exchanges
            assert bytes(r.payload) == BIG
            r = await c.get(host.remote, "/big")  # the line's own size: 1024-byte blocks
            assert bytes(r.payload) == BIG
            r = await c.put(host.remote, "/r", BIG, szx=3)  # Block1 upload
            assert state["r"] == BIG
            r = await c.get(host.remote, "/.well-known/core")
            assert b'</r>;rt="test"' in bytes(r.payload)
            assert host.decoder.errors == 0 and dev.decoder.errors == 0
            # 47 + 3 blocks down, 24 up, 4 single exchanges (more if a slow run retransmitted), and every frame
            # one side sent arrived intact on the other.
            assert dev.dropped == 0 and host.dropped == 0 and host.sent >= 47 + 3 + 24 + 4
            assert dev.decoder.frames == host.sent and host.decoder.frames == dev.sent
        finally:
            c.close()
            s.close()
    run(main())


def test_noise_on_the_line_is_survived():
    # Every 4th frame the device sends gets a flipped bit (the host's FCS check drops it), and text and a
    # stray frame abort are mixed into the host->device direction: the client still completes, each PUT runs
    # once, and the counters say what happened.
    counter = [0]

    def corrupt(data):
        counter[0] += 1
        if counter[0] % 4 == 0 and len(data) > 6:
            data = bytearray(data)
            data[4] ^= 0x10 if data[4] ^ 0x10 not in (0xC0, 0xDB) else 0x01
            return bytes(data)
        return data

    def noisy(data):
        return b"boot text\r\n\xc0\xa9\x40\xdb\xc0" + data

    async def main():
        dev, host, dev_out, host_out = line()
        dev_out.tamper = corrupt
        host_out.tamper = noisy
        s, state = serve(dev)
        c = Client(host)
        try:
            for i in range(6):
                r = await c.put(host.remote, "/r", b"v%d" % i)
                assert r.code == 68
                r = await c.get(host.remote, "/r")
                assert bytes(r.payload) == b"v%d" % i
            assert state["puts"] == 6  # retransmitted PUTs were deduplicated, not run again
            assert host.decoder.bad_fcs >= 2
            assert dev.decoder.aborted >= 12 and dev.decoder.errors == 0
        finally:
            c.close()
            s.close()
    run(main())


def test_diag_frames_and_oversize_send():
    async def main():
        dev, host, _, _ = line()
        dev.diag("hello from the device\n")
        dev.send(bytes(dev.max_message_size + 1), dev.remote)  # too big for the line: dropped, counted
        dev.send(b"\x40\x00\x12\x34", dev.remote)  # a CoAP ping goes through
        assert dev.dropped == 1 and dev.sent == 2
        data, remote = await host.recv()  # the DIAG frame is not CoAP: recv skips it
        assert bytes(data) == b"\x40\x00\x12\x34" and remote == "serial"
        assert host.decoder.frames == 2
        host.close()
        dev.close()
        e = None
        try:
            await host.recv()
        except OSError as x:
            e = x
        assert e is not None
        hgtest.raises(OSError, dev.send, b"\x40\x00\x00\x01", dev.remote)
    run(main())
