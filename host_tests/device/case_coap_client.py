# Client and server talking through an in-process datagram link (both ends are this stack) on each runtime's
# asyncio: retransmission under loss, deduplication, separate responses, Block-wise both ways, Observe.
# Real peers (libcoap, aiocoap) are in host_tests/test_coap_interop.py.
import hgtest
import asyncio
from coap.msg import Message
from coap import defs as D
from coap.transport import Params
from coap.endpoint import RequestTimeout, ResetError
from coap.server import Server
from coap.client import Client
from coap.observe import fresher
from coap import block
from coap.download import Receiver
MP_HEAP = "152k"  # its budget on the VM (a board's heap x2): boards with less skip it

FAST = Params(ack_timeout=40, max_retransmit=10, max_latency=200)


class Link:
    """One end of an in-memory datagram link; `drop` is a seeded loss pattern applied to what this end sends."""

    def __init__(self, name, rng=None, loss=0, params=FAST, max_message_size=1152):
        self.name = name
        self.peer = None
        self.q = []
        self.ev = asyncio.Event()
        self.rng = rng
        self.loss = loss
        self.params = params
        self.max_message_size = max_message_size
        self.sent = 0
        self.got = 0
        self.closed = False

    async def recv(self):
        while not self.q:
            if self.closed:
                raise OSError("closed")
            self.ev.clear()
            await self.ev.wait()
        if self.closed:
            raise OSError("closed")
        self.got += 1
        return self.q.pop(0)

    def send(self, data, remote):
        self.sent += 1
        if self.rng is not None and self.rng.below(100) < self.loss:
            return
        p = self.peer
        p.q.append((bytes(data), self.name))
        p.ev.set()

    def close(self):
        self.closed = True
        self.ev.set()


def pair(loss=0, seed=1, **kw):
    rng = hgtest.Rng(seed) if loss else None
    a = Link("client", rng, loss, **kw)
    b = Link("server", rng, loss, **kw)
    a.peer, b.peer = b, a
    return a, b


def run(coro):
    return asyncio.run(coro)


def setup(loss=0, seed=1, **kw):
    a, b = pair(loss, seed, **kw)
    srv = Server(b)
    cli = Client(a)
    return cli, srv


def test_fresher_rfc7641():
    assert fresher(None, 0, 5, 0)
    assert fresher(1, 0, 2, 0) and not fresher(2, 0, 1, 0)
    assert fresher(0xFFFFFF, 0, 3, 0)            # wrapped around
    assert not fresher(3, 0, 0xFFFFFF, 0)
    assert fresher(5, 0, 4, 129000)              # older number but more than 128 s later
    assert not fresher(5, 0, 5, 1000)


def test_receiver_checks():
    got = []
    r = Receiver(lambda off, d: got.append((off, bytes(d))))
    assert r.feed(0, 1, 2, bytes(64), b"e1", 150) == 1
    hgtest.raises(block.BlockError, r.feed, 1, 1, 2, bytes(64), b"e2")  # ETag changed
    hgtest.raises(block.BlockError, r.feed, 2, 1, 2, bytes(64), b"e1")  # gap
    hgtest.raises(block.BlockError, r.feed, 1, 1, 2, bytes(10), b"e1")  # short non-final block
    assert r.feed(1, 1, 2, bytes(64), b"e1") == 2
    assert r.feed(2, 0, 2, bytes(22), b"e1") is None
    assert [o for o, _ in got] == [0, 64, 128] and r.size == 150
    hgtest.raises(block.BlockError, block.decode, b"\x0f")
    hgtest.raises(block.BlockError, block.encode, 1 << 20, 0, 0)
    assert block.decode(b"") == (0, 0, 0) and block.encode(0x1234, 1, 6) == 0x1234E


def test_receiver_keeps_a_copy_of_the_etag():
    # The ETag of a decoded response is a view into its datagram: kept as it is, it held the first block's
    # whole datagram alive for the rest of the download.
    first = bytearray(b"\x04e1" + bytes(64))
    r = Receiver(lambda off, d: None)
    r.feed(0, 1, 2, memoryview(first)[3:], memoryview(first)[1:3])
    assert type(r.etag) is bytes and r.etag == b"e1"
    first[1:3] = b"zz"  # the datagram's buffer reused: the transfer's ETag is unchanged
    assert r.feed(1, 0, 2, bytes(10), b"e1") is None


def test_get_put_roundtrip():
    async def main():
        cli, srv = setup()
        box = {"v": b"x"}
        srv.route("/v", get=lambda r: box["v"], put=lambda r: box.update(v=bytes(r.payload)))
        srv.start()
        r = await cli.put("server", "/v", b"hello")
        assert r.code == D.CHANGED
        r = await cli.get("server", "/v")
        assert r.code == D.CONTENT and bytes(r.payload) == b"hello"
        r = await cli.get("server", "/missing")
        assert r.code == D.NOT_FOUND
        r = await cli.request(D.GET, "server", "/v", con=False)
        assert r.type == D.NON and bytes(r.payload) == b"hello"
        assert await cli.ping("server")
        cli.close()
        srv.close()
    run(main())


def test_loss_exactly_once():
    async def main():
        cli, srv = setup(loss=30, seed=99)
        calls = []

        def post(r):
            calls.append(bytes(r.payload))
            return (D.CHANGED, b"ok" + bytes(r.payload))
        gets = {"small": 0, "bytes": 0, "source": 0}
        body = bytes((i * 13) & 255 for i in range(1000))

        class Source:  # a body read block by block
            size = 1000
            etag = b"src"

            def read(self, off, n):
                return body[off:off + n]

        def get(name, answer):
            def h(r):
                gets[name] += 1
                return answer
            return h
        srv.route("/p", post=post)
        srv.route("/small", get=get("small", b"s" * 100))
        srv.route("/bytes", get=get("bytes", body))  # 1000 B: every block answer is over 128 B
        srv.route("/source", get=get("source", Source()))
        srv.start()
        for i in range(12):
            r = await cli.post("server", "/p", b"%d" % i)
            assert bytes(r.payload) == b"ok%d" % i
        assert calls == [b"%d" % i for i in range(12)]  # each handler ran once despite retransmissions
        got = srv.t.got
        for i in range(4):
            r = await cli.get("server", "/small")
            assert bytes(r.payload) == b"s" * 100
        for i in range(3):
            for path in ("/bytes", "/source"):
                r = await cli.get("server", path, szx=4)  # 256-byte blocks: 4 requests
                assert bytes(r.payload) == body
        # Each GET request (one per block) ran its handler once, the duplicates were answered from the cache.
        assert gets == {"small": 4, "bytes": 12, "source": 12}, gets
        assert srv.t.got > got + 28 + 3  # the server did see duplicate GETs (lost answers)
        assert cli.t.sent > 12  # loss forced retransmissions
        cli.close()
        srv.close()
    run(main())


def test_send_non_waits_for_nothing():
    async def main():
        cli, srv = setup()
        got = []
        srv.route("/n", post=lambda req: got.append((req.type, bytes(req.payload), req.uint(D.NO_RESPONSE))))
        srv.start()
        cli.start()
        m = cli.send_non(D.POST, "server", "/n", b"hi", options=((D.NO_RESPONSE, 0x1a),))
        assert m.type == D.NON and len(m.token) == 4 and not cli.waiters and not cli.pending
        m2 = cli.send_non(D.POST, "server", "n", b"again", token=b"tk")
        assert m2.token == b"tk" and m2.mid == (m.mid + 1) & 0xFFFF
        await asyncio.sleep(0.05)
        assert got == [(D.NON, b"hi", 0x1a), (D.NON, b"again", None)]
        # The server answers the second only (No-Response 26 suppressed the first's 2.04, RFC 7967); nobody waits
        # for that answer, so the client resets it.
        assert srv.t.sent == 1 and cli.t.got == 1 and cli.t.sent == 3 and srv.t.got == 3
        e = None
        try:
            cli.send_non(D.POST, "server", "/n", bytes(2000))
        except ValueError as x:
            e = x
        assert e is not None and len(got) == 2
        cli.close()
        srv.close()
    run(main())


def test_separate_response():
    async def main():
        cli, srv = setup()
        srv.ack_delay = 10

        async def slow(r):
            await asyncio.sleep(0.1)
            return b"later"
        srv.route("/slow", get=slow)
        srv.start()
        r = await cli.get("server", "/slow")
        assert r.type == D.CON and bytes(r.payload) == b"later"  # separate: empty ACK first, then CON
        cli.close()
        srv.close()
    run(main())


def test_timeout_and_reset():
    async def main():
        a, b = pair(params=Params(ack_timeout=20, max_retransmit=3, max_latency=100))
        cli = Client(a)
        b.close()  # nobody reads: every transmission is lost
        a.peer = Link("void")
        e = None
        try:
            await cli.get("server", "/x")
        except RequestTimeout as ex:
            e = ex
        assert e is not None and a.sent == 4
        # A bare endpoint answers requests with RST.
        from coap.endpoint import Endpoint
        a2, b2 = pair()
        cli2 = Client(a2)
        ep = Endpoint(b2).start()
        e = None
        try:
            await cli2.get("server", "/x")
        except ResetError as ex:
            e = ex
        assert e is not None
        cli.close()
        cli2.close()
        ep.close()
    run(main())


def test_block2_download_to_sink_with_loss():
    async def main():
        cli, srv = setup(loss=20, seed=5)
        body = bytes((i * 13) & 255 for i in range(2000))
        srv.route("/big", get=lambda r: body)
        srv.start()
        seen = []

        def sink(off, d):
            assert body[off:off + len(d)] == d
            seen.append(off + len(d))
        r = await cli.get("server", "/big", sink=sink, szx=3)
        assert seen[-1] == len(body) and len(seen) == 16 and r.size2 == 2000
        r = await cli.get("server", "/big")
        assert bytes(r.payload) == body
        cli.close()
        srv.close()
    run(main())


def test_block2_etag_change_detected():
    async def main():
        cli, srv = setup()
        state = {"n": 0}

        def get(r):
            state["n"] += 1
            return bytes([state["n"]]) * 300  # changes between blocks, so the ETag does too
        srv.route("/moving", get=get)
        srv.start()
        e = None
        try:
            await cli.get("server", "/moving", szx=2)
        except block.BlockError as ex:
            e = ex
        assert e is not None and "ETag" in str(e)
        cli.close()
        srv.close()
    run(main())


def test_block1_upload_and_szx_negotiation():
    async def main():
        cli, srv = setup(loss=15, seed=3)
        box = {}
        srv.route("/up", put=lambda r: box.update(v=bytes(r.payload)))
        srv.start()
        body = bytes((i * 3) & 255 for i in range(2500))
        r = await cli.put("server", "/up", body, szx=4)
        assert r.code == D.CHANGED and box["v"] == body, (r.code, len(box.get("v", b"")), cli.t.sent, srv.t.sent)
        # A server that wants smaller blocks answers 2.31 with its SZX (RFC 7959 2.3); the client follows.
        srv.szx = 2
        box.clear()
        r = await cli.put("server", "/up", body[:1000], szx=4)
        assert r.code == D.CHANGED and box["v"] == body[:1000]
        cli.close()
        srv.close()
    run(main())


def test_upload_from_source():
    class Src:
        size = 3000

        def read(self, off, n):
            return bytes((off + i) & 255 for i in range(min(n, self.size - off)))

    async def main():
        cli, srv = setup()
        box = {}
        srv.route("/up", post=lambda r: box.update(v=bytes(r.payload)))
        srv.start()
        r = await cli.post("server", "/up", Src(), szx=5)
        assert r.code == D.CHANGED and box["v"] == Src().read(0, 3000)
        cli.close()
        srv.close()
    run(main())


def test_observe_notifications_and_cancel():
    async def main():
        cli, srv = setup()
        box = {"v": b"0"}
        res = srv.route("/obs", get=lambda r: box["v"], observable=True, max_age=5)
        srv.start()
        got = []
        o = await cli.observe("server", "/obs", lambda m: got.append(bytes(m.payload)))
        assert o.active and got == [b"0"]
        for i in range(1, 10):  # the 8th notification is CON
            box["v"] = b"%d" % i
            srv.notify(res)
            await asyncio.sleep(0.01)
        assert got == [b"%d" % i for i in range(10)]
        assert not o.stale()
        await o.cancel()
        assert len(res.observers) == 0
        srv.notify(res)
        await asyncio.sleep(0.01)
        assert len(got) == 10
        cli.close()
        srv.close()
    run(main())


def test_observe_reordered_notification_dropped():
    async def main():
        cli, srv = setup()
        srv.route("/obs", get=lambda r: b"a", observable=True)
        srv.start()
        got = []
        o = await cli.observe("server", "/obs", lambda m: got.append(m.uint(D.OBSERVE)))
        seq = got[0]
        # Hand the client an older notification (lower sequence number) after a newer one.
        for s in (seq + 5, seq + 3, seq + 6):
            m = Message(D.NON, D.CONTENT, 1000 + s, o.token, b"x").add(D.OBSERVE, s)
            cli.receive(bytes(m.encode()), "server")
        assert got == [seq, seq + 5, seq + 6]
        cli.close()
        srv.close()
    run(main())


def test_forgotten_observation_is_reset():
    async def main():
        cli, srv = setup()
        res = srv.route("/obs", get=lambda r: b"a", observable=True)
        srv.start()
        await cli.observe("server", "/obs", lambda m: None)
        cli.waiters.clear()  # the client forgets it (reboot): the next notification gets RST
        srv.notify(res)
        await asyncio.sleep(0.05)
        assert len(res.observers) == 0
        cli.close()
        srv.close()
    run(main())


def test_observe_block2_body_fetched():
    async def main():
        cli, srv = setup()
        box = {"v": bytes(300)}
        res = srv.route("/ob", get=lambda r: box["v"], observable=True)
        srv.szx = 2
        srv.start()
        got = []
        await cli.observe("server", "/ob", lambda m: got.append(bytes(m.payload)))
        await asyncio.sleep(0.05)
        box["v"] = bytes(range(200)) + bytes(100)
        srv.notify(res)
        await asyncio.sleep(0.1)
        assert got == [bytes(300), box["v"]]
        cli.close()
        srv.close()
    run(main())


PERIOD = 1 << 30  # ticks_ms() wraps here on a board


class WrapClock:
    """A ticks_ms clock with the boards' period, injected into coap.observe to run it across the wrap."""

    def __init__(self, t):
        self.t = t

    def ms(self):
        return self.t

    def add(self, a, b):
        return (a + b) & (PERIOD - 1)

    def diff(self, a, b):
        return ((a - b + PERIOD // 2) & (PERIOD - 1)) - PERIOD // 2

    def advance(self, n):
        self.t = (self.t + n) & (PERIOD - 1)


def test_observe_freshness_and_max_age_across_a_tick_wrap():
    from coap import observe
    clock = WrapClock(PERIOD - 500)
    saved = observe.ticks_ms, getattr(observe, "ticks_add", None), observe.ticks_diff
    observe.ticks_ms, observe.ticks_add, observe.ticks_diff = clock.ms, clock.add, clock.diff
    try:
        cli = Client(pair()[0])
        got = []
        o = observe.Observation(cli, "server", "/obs", (), lambda m: got.append(m.uint(D.OBSERVE)))

        def note(seq, max_age=60):
            m = Message(D.NON, D.CONTENT, seq, o.token, b"x").add(D.OBSERVE, seq).add(D.MAX_AGE, max_age)
            o(m)
        note(5)
        clock.advance(1000)  # past the wrap, within Max-Age (60 s)
        assert not o.stale()
        note(4)  # older, 1 s later: dropped
        assert got == [5]
        clock.advance(60500)  # Max-Age ran out 61.5 s after the notification
        assert o.stale()
        note(6, 10)
        assert got == [5, 6] and not o.stale()
        clock.advance(129000)  # RFC 7641 3.4: a lower number more than 128 s later is fresh again
        note(3)
        assert got == [5, 6, 3]
    finally:
        observe.ticks_ms, observe.ticks_add, observe.ticks_diff = saved
