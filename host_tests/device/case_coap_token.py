# A response matches its request by token (RFC 7252 5.3.2): an answer piggybacked on the ACK of a CON (same
# Message ID) that carries another request's token is not taken. It is what a server that remembers a
# (remote, MID) from an earlier boot sends again; the requester asks again under a fresh random Message ID, a
# bounded number of times. The real peer (aiocoap) is in host_tests/test_coap_token_match.py.
import asyncio
from coap.msg import Message
from coap_common import Recorder
from coap import defs as D
from coap import CoapError
from coap.endpoint import Endpoint
from coap.transform import Transform
MP_HEAP = "96k"  # its budget on the VM (a board's heap x2): boards with less skip it

SERVER = ("127.0.0.1", 5683)
TOK = b"\x0a\x0b\x0c\x0d"


def endpoint():
    t = Recorder()
    t.spin_us = 0
    ep = Endpoint(t)
    ep.task = True  # no receive loop: the test hands the endpoint its datagrams
    return ep, t


def ack(ep, req, token, payload, opts=()):
    m = Message(D.ACK, D.CONTENT, req.mid, token, payload)
    for o in opts:
        m.add(o[0], o[1])
    ep.receive(bytes(m.encode()), SERVER)


async def sent(t):
    for _ in range(100):
        if t.sent:
            break
        await asyncio.sleep(0.002)
    (req,) = t.take()
    return req


def finish(ep):
    for p in ep.pending.values():
        if p[0]:
            p[0].set()
    if ep.timer:
        ep.timer.cancel()


def test_a_piggybacked_answer_with_another_token_is_not_taken():
    ep, t = endpoint()
    ep.mid = 1000

    async def main():
        x = asyncio.create_task(ep.exchange(Message(D.CON, D.GET, 0, TOK).set_path("/x"), SERVER))
        req = await sent(t)
        assert req.mid == 1001 and bytes(req.token) == TOK
        ack(ep, req, b"\x99\x99", b"stale")  # the server's old answer to MID 1001: another token
        again = await sent(t)  # asked again, same token, under a fresh random MID
        assert bytes(again.token) == TOK and again.mid != req.mid and not x.done()
        ack(ep, again, TOK, b"ok")
        r = await x
        assert bytes(r.payload) == b"ok" and bytes(r.token) == TOK
        assert ep.pending == {} and ep.waiters == {} and ep.locks == {}
        finish(ep)

    asyncio.run(main())


def test_only_stale_answers_end_in_a_clear_error():
    ep, t = endpoint()

    async def main():
        x = asyncio.create_task(ep.exchange(Message(D.CON, D.GET, 0, TOK).set_path("/x"), SERVER))
        mids = []
        for _ in range(20):
            try:
                req = await sent(t)
            except ValueError:  # nothing sent any more: it gave up
                break
            mids.append(req.mid)
            ack(ep, req, b"\x01", b"stale")
        assert 1 < len(mids) < 10 and len(set(mids)) == len(mids)
        try:
            await x
            raise AssertionError("took a stale answer")
        except CoapError as e:
            assert "token" in str(e)
        assert ep.pending == {} and ep.waiters == {} and ep.locks == {}
        finish(ep)

    asyncio.run(main())


def test_a_block2_follower_does_not_take_a_stale_block():
    # coap.download asks for each later block through the requester: a stale answer to one of them (the
    # earlier boot's block of another body) is not fed to the receiver.
    ep, t = endpoint()

    async def main():
        x = asyncio.create_task(ep.get(SERVER, "/big", szx=0))
        req = await sent(t)
        ack(ep, req, req.token, b"a" * 16, ((D.BLOCK2, b"\x08"),))  # block 0, more, 16 bytes
        req = await sent(t)
        ack(ep, req, b"\x77\x77\x77\x77", b"s" * 16, ((D.BLOCK2, b"\x18"),))  # block 1 of another body
        req = await sent(t)
        assert req.opt(D.BLOCK2) == b"\x10"  # block 1 asked again
        ack(ep, req, req.token, b"b" * 5, ((D.BLOCK2, b"\x10"),))
        r = await x
        assert bytes(r.payload) == b"a" * 16 + b"b" * 5
        finish(ep)

    asyncio.run(main())


class Counting(Transform):
    # A pass-through transform that counts the responses it is given (OSCORE would verify each).
    def __init__(self):
        self.seen = []

    def incoming_response(self, ep, req, resp):
        self.seen.append(bytes(resp.payload))
        return resp


def test_a_stale_answer_never_reaches_the_transform():
    # The token is compared on the outer message: a stale answer is refused before the transform (an OSCORE
    # context would count it as a failed verification).
    ep, t = endpoint()
    ep.transform = tf = Counting()

    async def main():
        x = asyncio.create_task(ep.exchange(Message(D.CON, D.GET, 0, TOK).set_path("/x"), SERVER))
        req = await sent(t)
        ack(ep, req, b"\x55", b"stale")
        again = await sent(t)
        ack(ep, again, TOK, b"ok")
        r = await x
        assert bytes(r.payload) == b"ok" and tf.seen == [b"ok"]
        finish(ep)

    asyncio.run(main())
