"""How long the requester polls for a CON's answer before it parks in the event loop (coap.requester, the
transport's spin_us): half as long again as the answers took lately, at most spin_us, and not at all for a peer
that answers later than that. The peer is aiocoap in a process of its own over 127.0.0.1 (in this process it
could not answer while the client polls): /fast answers at once (about a millisecond, aiocoap's own time),
/slow after 10 ms (a radio link away)."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import time

from coap.endpoint import Endpoint
from coap.udp import UDPTransport
from hourglass.common import free_udp_port

SERVER = r'''
import asyncio, sys
import aiocoap, aiocoap.resource

class Fast(aiocoap.resource.Resource):
    async def render_get(self, request):
        return aiocoap.Message(payload=b"fast")

class Slow(aiocoap.resource.Resource):
    async def render_get(self, request):
        await asyncio.sleep(0.01)
        return aiocoap.Message(payload=b"slow")

async def main():
    site = aiocoap.resource.Site()
    site.add_resource(["fast"], Fast())
    site.add_resource(["slow"], Slow())
    await aiocoap.Context.create_server_context(site, bind=("127.0.0.1", int(sys.argv[1])))
    print("ready", flush=True)
    await asyncio.get_running_loop().create_future()

asyncio.run(main())
'''


class _Polls:
    """The client's UDP transport, counting the polls that found nothing (the spin's)."""

    def __init__(self, inner):
        self.inner = inner
        self.empty = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def recv_now(self):
        x = self.inner.recv_now()
        if x is None:
            self.empty += 1
        return x


def _run(scenario):
    port = free_udp_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"ready"

        async def main():
            t = _Polls(UDPTransport(("127.0.0.1", 0)))
            ep = Endpoint(t).start()
            try:
                return await scenario(ep, t, ("127.0.0.1", port))
            finally:
                ep.close()
        return asyncio.run(main())
    finally:
        proc.kill()
        proc.wait()


async def _parked(ep):
    # A request whose answer was not taken while polling left the retransmission timer running (it stops
    # once nothing is pending): wait for that, and say whether it was so.
    if ep.timer is None:
        return False
    end = time.monotonic() + 2
    while ep.timer is not None and time.monotonic() < end:
        await asyncio.sleep(0.01)
    return True


def test_a_nearby_peer_is_polled_for_and_a_far_one_is_not():
    async def scenario(ep, t, server):
        for _ in range(3):  # what the answers take is learnt from the first ones
            assert bytes((await ep.get(server, "/fast")).payload) == b"fast"
            await _parked(ep)
        parked = 0
        for _ in range(20):
            assert bytes((await ep.get(server, "/fast")).payload) == b"fast"
            parked += await _parked(ep)
        # most taken while polling, so no trip through the event loop (before: the 300 us spin gave up first on
        # each of the 20; aiocoap's answers take 0.3-3 ms, more on a loaded machine: some come after the poll)
        assert parked <= 15, parked
        for _ in range(5):
            assert bytes((await ep.get(server, "/slow")).payload) == b"slow"
        t.empty = 0
        for _ in range(10):
            assert bytes((await ep.get(server, "/slow")).payload) == b"slow"
        # 10 ms answers: none polled for (before: 300 us of polling for each, ~100 polls a request)
        assert t.empty == 0, t.empty
        for _ in range(10):  # and the fast peer is polled for again once its answers are quick again
            await ep.get(server, "/fast")
            await _parked(ep)
        parked = 0
        for _ in range(10):
            await ep.get(server, "/fast")
            parked += await _parked(ep)
        assert t.empty > 0 and parked < 10, (t.empty, parked)

    _run(scenario)
