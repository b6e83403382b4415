# The client side of test_coap_spin, on MicroPython and CPython alike: sequential GETs to the peer's /fast and
# /slow (argv: host port spin_us), printing per phase how many answers missed the poll (the request then waited in the
# event loop: its retransmission timer ran) and how many polls found nothing.
import asyncio
import sys

from coap.endpoint import Endpoint
from coap.udp import UDPTransport


class Polls:
    """The client's UDP transport, counting the polls that found nothing (the spin's)."""

    def __init__(self, inner):
        self.inner = inner
        self.empty = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def recv_now(self, *args):
        x = self.inner.recv_now(*args)
        if x is None:
            self.empty += 1
        return x


async def parked(ep):
    # A request whose answer was not taken while polling left the retransmission timer running (it stops
    # once nothing is pending): wait for that, and say whether it was so.
    if ep.timer is None:
        return 0
    for _ in range(200):
        if ep.timer is None:
            break
        await asyncio.sleep(0.01)
    return 1


async def phase(ep, t, server, path, n):
    t.empty = 0
    missed = 0
    for _ in range(n):
        r = await ep.get(server, path)
        assert bytes(r.payload) == path[1:].encode(), r
        missed += await parked(ep)
    return missed, t.empty


async def main():
    server = (sys.argv[1], int(sys.argv[2]))
    t = Polls(UDPTransport(("127.0.0.1", 0), spin_us=int(sys.argv[3])))
    ep = Endpoint(t).start()
    try:
        # warm-up phases first: what the answers take is learnt from the requests before
        for name, path, n in (("warm", "/fast", 3), ("fast", "/fast", 20), ("slowwarm", "/slow", 5),
                              ("slow", "/slow", 10), ("fastwarm", "/fast", 10), ("fastagain", "/fast", 10)):
            missed, empty = await phase(ep, t, server, path, n)
            print("PHASE", name, n, missed, empty)
    finally:
        ep.close()

asyncio.run(main())
