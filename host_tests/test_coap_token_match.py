"""A response matches its request by token (RFC 7252 5.3.2), not by Message ID alone, against a real aiocoap
server over 127.0.0.1. A board's Message IDs start at a random value at every boot; aiocoap remembers each
(remote, MID) for EXCHANGE_LIFETIME and answers a CON that reuses one with its old answer, which carries the
earlier request's token. Here two endpoints use the same local port in turn (a board and its next boot), the
second starting its Message IDs where the first did: its requests reuse MIDs aiocoap has answered already.
Before the fix the requester took the old answer (another request's token) as its own.
"""
from __future__ import annotations

import asyncio

import aiocoap
import aiocoap.resource

from coap import defs as D
from coap.endpoint import Endpoint
from coap.udp import UDPTransport
from test_coap_interop import free_udp_port


class Counter(aiocoap.resource.Resource):
    # Each request the server really handles gets the next number: a stale answer shows an old one.
    def __init__(self, size=0):
        super().__init__()
        self.n = 0
        self.size = size

    async def render_get(self, request):
        self.n += 1
        body = b"%d;" % self.n
        return aiocoap.Message(payload=body + b"x" * max(0, self.size - len(body)))


def _run(scenario):
    async def main():
        site = aiocoap.resource.Site()
        small, big = Counter(), Counter(3000)
        site.add_resource(["n"], small)
        site.add_resource(["big"], big)
        sport = free_udp_port()
        ctx = await aiocoap.Context.create_server_context(site, bind=("127.0.0.1", sport), transports=["udp6"])
        try:
            return await scenario(("127.0.0.1", sport), free_udp_port(), small, big)
        finally:
            await ctx.shutdown()

    return asyncio.run(main())


def _endpoint(port, mid):
    ep = Endpoint(UDPTransport(("127.0.0.1", port)))
    ep.mid = mid
    return ep.start()


def test_a_stale_piggybacked_answer_is_refused_and_the_request_asked_again():
    async def scenario(server, port, small, big):
        first = _endpoint(port, 1000)
        for i in range(1, 4):  # MIDs 1001..1003, answered "1;".."3;"
            r = await first.get(server, "/n")
            assert bytes(r.payload) == b"%d;" % i
        first.close()
        await asyncio.sleep(0.05)
        again = _endpoint(port, 1000)  # the next boot, its Message IDs in the run aiocoap remembers
        try:
            tok = b"\x42\x42\x42\x42"
            r = await again.get(server, "/n", token=tok)
            # Not the stale "1;" of MID 1001: the request went again under a fresh random MID, and the
            # server handled it.
            assert bytes(r.payload) == b"4;" and bytes(r.token) == tok and small.n == 4
            assert not 1001 <= again.mid <= 1004  # a new base, not the next one of the remembered run
            assert again.pending == {} and again.waiters == {} and again.locks == {}
        finally:
            again.close()

    _run(scenario)


def test_a_block2_download_is_not_spliced_from_stale_answers():
    # coap.download's Block2 follower takes each block through the requester: a stale answer to a later
    # block (the earlier boot's block of another body) must not be fed to the receiver.
    async def scenario(server, port, small, big):
        first = _endpoint(port, 2000)
        r = await first.get(server, "/big", szx=2)  # 3000 bytes in 64-byte blocks: MIDs 2001..2047
        # aiocoap renders the body once (block 0) and serves the later blocks from its Block2 cache.
        assert len(r.payload) == 3000 and bytes(r.payload).startswith(b"1;") and big.n == 1
        first.close()
        await asyncio.sleep(0.05)
        again = _endpoint(port, 2000)
        try:
            r = await again.get(server, "/big", szx=2)
            # One fresh body: its first block came after a fresh MID, so did the rest.
            assert len(r.payload) == 3000 and bytes(r.payload).startswith(b"2;") and big.n == 2
            assert r.code == D.CONTENT
        finally:
            again.close()

    _run(scenario)
