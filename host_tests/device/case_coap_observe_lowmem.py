# Observe when memory is short, on both runtimes, over an in-memory link: a CON notification whose handling
# runs out of memory is dropped unseen and unacknowledged, so its retransmission is delivered; and on a
# fragmented heap (the VM: plenty free, no hole of 2 KB) an endpoint still serves and observes, although its
# deduplication cache then finds no hole for its slots (2,120 B) or its ring (2,304 B).
# Both failed before: the client acknowledged the notification first and kept its deduplication slot "answer
# pending", so the retransmission (if any) was a duplicate to ignore; on the fragmented heap every request raised
# MemoryError in the server's dedup.add and was dropped (no ACK, ever), and the client's first CON notification
# raised it in dedup.store (never acknowledged, never delivered). Seen as case_coap_transform's and
# case_oscore_outer's Observe cases failing by batch order and MICROPYPATH length.
import asyncio
import gc

import hgheap
from coap import defs as D
from coap.client import Client
from coap.server import Server
from coap.transport import Params

MP_HEAP = "128k"

# Short retransmission: a CON that is never acknowledged ends within ~1 s, not a minute
FAST = Params(ack_timeout=20, max_retransmit=5, max_latency=100)


class Link:
    # One end of an in-memory datagram link (as in case_coap_transform.py).
    def __init__(self, name):
        self.name = name
        self.peer = None
        self.q = []
        self.ev = asyncio.Event()
        self.params = FAST
        self.max_message_size = 1152
        self.closed = False
        self.sent = 0

    async def recv(self):
        while not self.q:
            if self.closed:
                raise OSError("closed")
            self.ev.clear()
            await self.ev.wait()
        if self.closed:
            raise OSError("closed")
        return self.q.pop(0)

    def send(self, data, remote):
        self.sent += 1
        self.peer.q.append((bytes(data), self.name))
        self.peer.ev.set()

    def close(self):
        self.closed = True
        self.ev.set()


def setup():
    a = Link("client")
    b = Link("server")
    a.peer, b.peer = b, a
    srv = Server(b)
    cli = Client(a)
    box = {"v": b"v0"}
    res = srv.route("/r", get=lambda req: box["v"], observable=True)
    srv.start()
    return cli, srv, res, box


async def _until(cond, ms=1500):
    for _ in range(ms // 10):
        if cond():
            return True
        await asyncio.sleep(0.01)
    return cond()


def test_a_con_notification_dropped_by_a_memory_error_is_delivered_on_its_retransmission():
    async def main():
        cli, srv, res, box = setup()
        res.observers.con_every = 1  # every notification CON
        got = []
        failed = []

        def callback(m):
            p = bytes(m.payload)
            if p == b"v1" and not failed:
                failed.append(p)
                raise MemoryError  # the application (or the transform) found no memory for it
            got.append(p)
        try:
            o = await cli.observe("server", "/r", callback)
            assert o.active and got == [b"v0"]
            box["v"] = b"v1"
            srv.notify(res)
            assert await _until(lambda: got[-1:] == [b"v1"]), ("the retransmission was not delivered", got, failed)
            assert failed == [b"v1"] and got == [b"v0", b"v1"], "delivered once, after the one that failed"
            assert await _until(lambda: not srv.pending), "the retransmission was acknowledged"
            assert len(res.observers) == 1, "the observation goes on"
            box["v"] = b"v2"
            srv.notify(res)
            assert await _until(lambda: got[-1:] == [b"v2"]), got
            await o.cancel()
        finally:
            cli.close()
            srv.close()
    hgheap.run(main)


def test_an_application_error_in_the_callback_still_acknowledges():
    # The callback's own error is reported (on_error), and the CON notification acknowledged: not retransmitted
    # to the callback again, the observation goes on.
    async def main():
        cli, srv, res, box = setup()
        res.observers.con_every = 1
        got = []
        errors = []
        cli.on_error = errors.append

        def callback(m):
            got.append(bytes(m.payload))
            if got[-1] == b"v1":
                raise ValueError("the application's bug")
        try:
            o = await cli.observe("server", "/r", callback)
            box["v"] = b"v1"
            srv.notify(res)
            assert await _until(lambda: len(got) == 2 and not srv.pending), ("acknowledged", got)
            assert got == [b"v0", b"v1"] and len(errors) == 1 and isinstance(errors[0], ValueError), (got, errors)
            assert len(res.observers) == 1
            await o.cancel()
        finally:
            cli.close()
            srv.close()
    hgheap.run(main)


async def _serve_and_observe(rounds):
    cli, srv, res, box = setup()
    res.observers.con_every = 2  # CON and NON notifications in turn
    got = []
    try:
        o = await cli.observe("server", "/r", lambda m: got.append(bytes(m.payload)))
        assert o.active and got == [b"v0"], got
        for i in range(1, rounds + 1):
            box["v"] = b"v%d" % i
            srv.notify(res)
            assert await _until(lambda: len(got) == i + 1 and not srv.pending), (i, got, srv.pending)
        assert got == [b"v%d" % i for i in range(rounds + 1)]
        r = await cli.get("server", "/r")  # a plain request beside the observation
        assert r.code == D.CONTENT and bytes(r.payload) == box["v"]
        await o.cancel()
        assert len(res.observers) == 0
    finally:
        cli.close()
        srv.close()
    return srv, cli


def test_serves_and_observes_on_a_fragmented_heap():
    hgheap.run(lambda: _serve_and_observe(2))  # first on a whole heap: every module loaded, every name interned
    pins = hgheap.fragment_heap(1024)
    try:
        if pins is not None:
            free = gc.mem_free()
            e = None
            try:
                bytes(2200)
            except MemoryError as x:
                e = x
            assert e is not None and free > 32 * 1024, ("not fragmented", free)
        hgheap.run(lambda: _serve_and_observe(4))
    finally:
        pins = None
        gc.collect()
