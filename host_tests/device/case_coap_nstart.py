# NSTART = 1 (RFC 7252 4.7): an endpoint has one outstanding CON per server; further requests to it wait their
# turn in order, and a request cancelled while it waits gives its turn up (coap.requester's queue per remote).
import asyncio
from coap.msg import Message
from coap_common import Recorder
from coap import defs as D
from coap.endpoint import Endpoint
MP_HEAP = "96k"  # its budget on the VM (a board's heap x2): boards with less skip it

SERVER = ("127.0.0.1", 5683)


def test_one_outstanding_con_per_server_and_cancelled_waiters():
    t = Recorder()
    t.spin_us = 0
    ep = Endpoint(t)
    ep.task = True  # no receive loop: the test hands the endpoint its datagrams

    def get(n):
        return ep.exchange(Message(D.CON, D.GET, 0, bytes((n,))).set_path("/x"), SERVER)

    def answer():
        # Piggybacked 2.05 for the CON sent last; returns its token.
        (req,) = t.take()
        ep.receive(bytes(Message(D.ACK, D.CONTENT, req.mid, req.token, b"ok").encode()), SERVER)
        return req.token

    async def main():
        a, b, c = (asyncio.create_task(get(n)) for n in (1, 2, 3))
        await asyncio.sleep(0.005)
        assert len(t.sent) == 1  # a's CON; b and c wait their turn
        b.cancel()
        await asyncio.sleep(0.005)
        assert answer() == b"\x01"
        await asyncio.sleep(0.005)
        assert a.done() and bytes((await a).payload) == b"ok"
        assert answer() == b"\x03"  # c's CON: b gave its turn up
        await asyncio.sleep(0.005)
        assert bytes((await c).payload) == b"ok" and ep.locks == {}
        try:
            await b
            raise AssertionError("cancelled")
        except asyncio.CancelledError:
            pass
        d = asyncio.create_task(get(4))  # nobody outstanding: sent at once
        await asyncio.sleep(0.005)
        assert answer() == b"\x04"
        await asyncio.sleep(0.005)
        assert bytes((await d).payload) == b"ok" and ep.locks == {}
        for p in ep.pending.values():
            if p[0]:
                p[0].set()
        if ep.timer:
            ep.timer.cancel()

    asyncio.run(main())
