# Outer Block-wise (RFC 8613 section 4.1.3.4.2) on both runtimes, our client against our server over the
# in-memory link of case_oscore_endpoint: a request protected as one message and sent in Outer Block1 blocks is
# put together and verified once (the handler sees the whole body, one sequence number); a protected response
# larger than the block the client asked for comes in Outer Block2 blocks and is verified once it is whole; the
# reassembly buffer is bounded (4.13 with Size1), blocks out of order get 4.08, a replayed transfer is refused
# after reassembly, the slots for transfers in progress are bounded; inner Block-wise still works beside it.
import asyncio

import hgheap
from case_oscore_endpoint import _client, _contexts, _link, _server
from coap import defs as D
from coap.msg import Message
from coap.server import Server
from oscore import OscoreError
from oscore import outer as O
from oscore.client import protect_request
from oscore.transform import Oscore
from oscore import client as Q

MP_HEAP = "256k"
BODY = bytes((i * 7 + 1) & 255 for i in range(3000))


def _run(main):
    hgheap.run(main)  # and the tasks the endpoints' close() cancelled: nothing kept into the next case


def test_outer_block1_request_is_verified_once_whole():
    async def main():
        cc, sc = _contexts()
        srv, box = _server(sc)
        cli = _client(cc)
        tf = cli.transform
        to = srv.t.address
        r = await Q.request(tf, cli, D.PUT, to, "/r", outer=True, payload=BODY, szx=4)  # 256-byte outer blocks
        assert r.code == D.CHANGED and box["v"] == BODY
        assert box["seen"][-1] == ("put", 3000, True), "one handler call with the whole body"
        assert cc.seq == 1 and sc.top == 0, "one protected request: one sequence number for 12 blocks"
        assert not srv.transform.blocks.rx, "nothing left behind"
        r = await Q.request(tf, cli, D.POST, to, "/r", outer=True, payload=b"small")
        assert r.code == D.CREATED and bytes(r.payload) == b"got small" and cc.seq == 2
        # inner Block-wise beside it: each block its own OSCORE request
        r = await cli.put(to, "/r", BODY[:1000], szx=4)
        assert r.code == D.CHANGED and box["v"] == BODY[:1000] and cc.seq == 6
        for ep in (cli, srv):
            ep.close()
    _run(main)


def test_outer_block2_response_is_verified_once_whole():
    async def main():
        cc, sc = _contexts()
        srv, box = _server(sc)
        cli = _client(cc)
        tf = cli.transform
        to = srv.t.address
        box["v"] = BODY[:900]  # under the server's inner block size: one inner response, 13 outer blocks of 64
        r = await Q.request(tf, cli, D.GET, to, "/r", outer=True, szx=2)
        assert r.code == D.CONTENT and bytes(r.payload) == BODY[:900]
        assert r.opt(23) is None and r.opt(28) is None, "no outer Block2/Size2 in the verified response"
        assert cc.seq == 1 and sc.seq == 0, "one request, answered with its own nonce"
        assert len([s for s in box["seen"] if s[0] == "/r"]) == 1, "the handler ran once for 15 blocks"
        assert not srv.transform.blocks.tx, "the kept response went with its last block"
        # Outer Block1 and Block2 in one exchange
        box["v"] = BODY[:700]
        r = await Q.request(tf, cli, D.POST, to, "/r", outer=True, payload=BODY[:600], szx=3)
        assert r.code == D.CREATED and bytes(r.payload) == b"got " + BODY[:600]
        for ep in (cli, srv):
            ep.close()
    _run(main)


def test_reassembly_is_bounded():
    async def main():
        cc, sc = _contexts()
        srv, box = _server(sc)
        srv.transform.max_body = 2048
        cli = _client(cc)
        tf = cli.transform
        to = srv.t.address
        e = None
        try:
            await Q.request(tf, cli, D.PUT, to, "/r", outer=True, payload=BODY, szx=4)
        except OscoreError as x:
            e = x
        assert e is not None and e.response.code == D.TOO_LARGE
        assert e.response.uint(60) == 2048, "Size1 tells the limit"
        assert box["v"] == b"hello" and sc.top == -1, "nothing was processed"
        assert not srv.transform.blocks.rx
        for ep in (cli, srv):
            ep.close()
    _run(main)


def _blocks(ctx, body, szx):
    # The Outer Block1 blocks of one protected PUT (sans-IO)
    m = Message(0, D.PUT, 0, b"\x01\x02", body).set_path("/r")
    out, _ = protect_request(ctx, m)
    ct = bytes(out.payload)
    bs = 16 << szx
    res = []
    for i in range(0, len(ct), bs):
        b = Message(0, out.code, 100 + i // bs, b"\x01\x02", ct[i:i + bs])
        b.opts = list(out.opts)
        b.add(27, O.block_encode(i // bs, i + bs < len(ct), szx))
        b.remote = "peer"
        res.append(b)
    return res


def test_blocks_out_of_order_and_slots():
    cc, sc = _contexts()
    tf = Oscore([sc])
    blocks = _blocks(cc, BODY[:1000], 4)

    def feed(b):
        return tf.incoming_request(None, b)
    r = feed(blocks[1])
    assert r.code == D.INCOMPLETE, "a block without its predecessors"
    assert feed(blocks[0]).code == D.CONTINUE
    assert feed(blocks[2]).code == D.INCOMPLETE and not tf.blocks.rx, "a gap drops the transfer"
    for b in blocks[:-1]:
        assert feed(b).code == D.CONTINUE
    inner = feed(blocks[-1])
    assert inner.code == D.PUT and bytes(inner.payload) == BODY[:1000] and sc.top == 0
    # the same transfer again: put together, then refused as a replay, unprocessed
    for b in blocks[:-1]:
        assert feed(b).code == D.CONTINUE
    r = feed(blocks[-1])
    assert r.code == 129 and r.payload in ("Replay detected", b"Replay detected") and sc.top == 0
    # three transfers begun: only two are kept (the oldest goes)
    starts = [_blocks(cc, BODY[:600 + i], 4)[0] for i in range(3)]
    for b in starts:
        assert feed(b).code == D.CONTINUE
    assert len(tf.blocks.rx) == 2
    # a Size1 over the limit is refused at the first block; a malformed Block1 is a 4.02
    big = _blocks(cc, BODY[:300], 4)[0]
    big.add(60, 5000)
    tf.max_body = tf.blocks.max_body = 4096
    r = feed(big)
    assert r.code == D.TOO_LARGE and r.uint(60) == 4096
    bad = _blocks(cc, BODY[:300], 4)[0]
    bad.opts = [x for x in bad.opts if x[0] != 27] + [(27, b"\x0f")]  # SZX 7
    assert feed(bad).code == D.BAD_OPTION
    short = _blocks(cc, BODY[:300], 4)[0]
    short.payload = short.payload[:100]  # a "more" block shorter than its size
    assert feed(short).code == D.BAD_REQUEST


def test_big_protected_response_is_cut_to_the_link():
    async def main():
        # A response whose protected form is over the link's message size (its options, not its payload, push
        # it over: the endpoint's inner Block2 already cuts payloads) goes in Outer Block2 blocks.
        cc, sc = _contexts()
        srv = Server(_link("server"))
        srv.transform = Oscore([sc])
        loc = "x" * 200

        def get(req):
            m = Message(code=D.CONTENT, payload=BODY[:1000])
            m.add(20, loc)  # Location-Query, Class E
            return m
        srv.route("/big", get=get)
        srv.start()
        cli = _client(cc)
        r = await Q.request(cli.transform, cli, D.GET, srv.t.address, "/big", outer=True)
        assert r.code == D.CONTENT and bytes(r.payload) == BODY[:1000] and r.opt(20) == loc.encode()
        for ep in (cli, srv):
            ep.close()
    _run(main)


def test_client_context_per_peer():
    async def main():
        from oscore import Context
        from case_oscore_endpoint import _store
        st = _store("peers")
        keys = {"s1": b"1" * 16, "s2": b"2" * 16}
        srvs = []
        for name in ("s1", "s2"):
            srv = Server(_link(name))
            sc = Context(keys[name], b"", b"\x02", b"\x01", store=st, name=name, k=4)
            srv.transform = Oscore([sc], require=("/",))
            srv.route("/who", get=lambda req, n=name: n)
            srv.start()
            srvs.append(srv)
        cli = _client(None)
        peers = {n: Context(keys[n], b"", b"\x01", b"\x02") for n in keys}
        tf = cli.transform
        tf.client = peers
        for n in ("s1", "s2", "s1"):
            r = await Q.request(tf, cli, D.GET, n, "/who", outer=True)
            assert r.code == D.CONTENT and bytes(r.payload) == n.encode(), (n, r.code)
        assert peers["s1"].seq == 2 and peers["s2"].seq == 1
        # A plain client.request names its peer to the seam too (req.remote): s1's context protects it.
        r = await cli.get("s1", "/who")
        assert r.code == D.CONTENT and bytes(r.payload) == b"s1" and peers["s1"].seq == 3
        # s1 reboots from its store: its next request goes through the Echo round trip with s1's context only
        srvs[0].close()
        await asyncio.sleep(0.02)
        srv = Server(_link("s1"))
        sc = Context(keys["s1"], b"", b"\x02", b"\x01", store=st, name="s1", k=4)
        assert not sc.synced
        srv.transform = Oscore([sc], require=("/",))
        srv.route("/who", get=lambda req: "s1 again")
        srv.start()
        srvs[0] = srv
        r = await Q.request(tf, cli, D.GET, "s1", "/who", outer=True)
        assert r.code == D.CONTENT and bytes(r.payload) == b"s1 again" and sc.synced and peers["s1"].seq == 5
        assert tf.echo is None
        r = await Q.request(tf, cli, D.GET, "s2", "/who", outer=True)
        assert bytes(r.payload) == b"s2" and peers["s2"].seq == 2, "s2 saw no Echo meant for s1"
        for ep in [cli] + srvs:
            ep.close()
    _run(main)


def _wire(ep):
    # The datagrams ep sends, decoded: (size, message)
    from coap.msg import decode
    sent = []
    send = ep.t.send

    def record(data, remote):
        sent.append((len(data), decode(bytes(data))))
        send(data, remote)
    ep.t.send = record
    return sent


def test_notifications_in_outer_block2():
    async def main():
        # Observe with notifications larger than the block the registration asked for (oscore.outer.observe):
        # the registration's response and every notification come in Outer Block2 blocks, the client asks for
        # the rest with the registration's protected request, and each is verified once it is whole.
        cc, sc = _contexts()
        srv, box = _server(sc)
        sent = _wire(srv)
        cli = _client(cc)
        asked = _wire(cli)
        box["v"] = BODY[:600]
        got = []
        obs = await O.observe(cli.transform, cli, srv.t.address, "/r", lambda m: got.append(bytes(m.payload)), szx=4)
        assert obs.active and got == [BODY[:600]], got
        res = srv.resources["/r"]
        for i in range(5):
            box["v"] = bytes((i,)) * (700 + i)
            srv.notify(res)
            await asyncio.sleep(0.1)
        assert got == [BODY[:600]] + [bytes((i,)) * (700 + i) for i in range(5)], [len(g) for g in got]
        firsts = [m for _, m in sent if m.opt(6) is not None]
        assert len(firsts) == 6 and all(m.opt(23) is not None and m.opt(28) is not None for m in firsts)
        assert all(len(m.payload) == 256 for m in firsts), "blocks of the size the registration asked for"
        later = [m for _, m in sent if m.opt(6) is None and m.opt(23) is not None]
        assert len(later) == 6 * 2, "the other blocks of each, without Observe"
        asks = [m for _, m in asked if m.opt(23) is not None and m.opt(23) != b"\x04"]
        assert len(asks) == 12 and all(m.opt(6) is None and m.opt(9) is not None for m in asks), \
            "the rest of the registration's answer and of each notification: the protected request, no Observe"
        assert sc.seq == 6, "one sequence number per notification, not per block"
        assert len(srv.transform.blocks.tx) == 1, "the newest notification only, for its observer"
        await obs.cancel()
        for ep in (cli, srv):
            ep.close()
    _run(main)


def test_plain_observe_gets_notifications_too_large_for_the_link():
    async def main():
        # A plain client.observe(): the registration's answer fits, a later notification does not fit the link
        # (a 1000-byte body and a 200-byte option): it goes in Outer Block2 blocks no larger than the link, and
        # the observer gets it whole and verified.
        cc, sc = _contexts()
        srv = Server(_link("server"))
        srv.transform = Oscore([sc])
        sent = _wire(srv)
        state = {"n": 0}

        def get(req):
            n = state["n"]
            m = Message(code=D.CONTENT, payload=bytes((n,)) * (10 if n == 0 else 1000))
            if n:
                m.add(20, "x" * 200)  # Location-Query, Class E: inside the ciphertext
            return m
        res = srv.route("/w", get=get, observable=True)
        srv.start()
        cli = _client(cc)
        got = []
        obs = await cli.observe(srv.t.address, "/w", lambda m: got.append((bytes(m.payload), m.opt(20))))
        for n in (1, 2, 3):
            state["n"] = n
            srv.notify(res)
            await asyncio.sleep(0.1)
        assert got == [(b"\x00" * 10, None)] + [(bytes((n,)) * 1000, b"x" * 200) for n in (1, 2, 3)], \
            [(len(p), o) for p, o in got]
        assert max(n for n, _ in sent) <= srv.t.max_message_size, "no datagram over the link's size"
        assert len([m for _, m in sent if m.opt(6) is not None and m.opt(23) is not None]) == 3
        # A burst of notifications (a hostile or busy server): the client follows one at a time, not one task and
        # buffer per first block, and then the newest that came meanwhile (the server kept only that one, so the
        # blocks it gave for the first do not verify and are dropped).
        asked = _wire(cli)
        for n in (4, 5, 6, 7, 8):
            state["n"] = n
            srv.notify(res)
        await asyncio.sleep(0.3)
        asks = [m for _, m in asked if m.opt(23) is not None]
        assert len(asks) == 2, len(asks)
        assert len(got) == 5 and got[-1][0] == b"\x08" * 1000, [(len(p), o) for p, o in got]
        await obs.cancel()
        for ep in (cli, srv):
            ep.close()
    _run(main)


def test_plain_observe_gets_a_registration_answer_in_outer_block2():
    async def main():
        # A plain client.observe() whose registration answer itself does not fit the link: the server sends it in
        # Outer Block2 blocks (Observe on the first); the client follows them with the registration's protected
        # request, verifies the whole and delivers it; the observation then gets its notifications.
        cc, sc = _contexts()
        srv = Server(_link("server"))
        srv.transform = Oscore([sc])
        sent = _wire(srv)
        state = {"n": 0}

        def get(req):
            n = state["n"]
            m = Message(code=D.CONTENT, payload=bytes((n,)) * (1000 if n < 2 else 20))
            m.add(20, "y" * 200)  # Location-Query, Class E: inside the ciphertext
            return m
        res = srv.route("/w", get=get, observable=True)
        srv.start()
        cli = _client(cc)
        got = []
        obs = await cli.observe(srv.t.address, "/w", lambda m: got.append((bytes(m.payload), m.opt(20))))
        assert obs.active and got == [(b"\x00" * 1000, b"y" * 200)], [(len(p), o) for p, o in got]
        first = [m for _, m in sent if m.opt(6) is not None and m.opt(23) is not None]
        assert len(first) == 1 and first[0].opt(28) is not None, "the registration answer came in Outer Block2 blocks"
        assert max(n for n, _ in sent) <= srv.t.max_message_size
        for n in (1, 2):
            state["n"] = n
            srv.notify(res)
            await asyncio.sleep(0.1)
        assert got[1:] == [(b"\x01" * 1000, b"y" * 200), (b"\x02" * 20, b"y" * 200)], [(len(p), o) for p, o in got]
        assert sc.seq == 3, "one sequence number per answer, not per block"
        await obs.cancel()
        for ep in (cli, srv):
            ep.close()
    _run(main)


def test_client_ignores_stray_outer_block2():
    # An Outer Block2 block that is not the first block of a notification is dropped, not verified or fetched.
    cc, sc = _contexts()
    tf = Oscore(client=cc)
    req = Message(0, D.GET, 1, b"\x01\x02").set_path("/r")
    req.remote = "server"
    out = tf.outgoing_request(None, req)
    assert not hasattr(req, "oscore_out"), "only an Observe registration keeps its protected request"
    resp = Message(2, D.CHANGED, 1, b"\x01\x02", b"\x00" * 32)
    resp.opts = [(9, b""), (23, bytes((0x1c,)))]  # block 1, more
    resp.remote = "server"
    assert tf.incoming_response(None, req, resp) is None
    req.oscore_out = out
    assert tf.incoming_response(None, req, resp) is None, "a block after the first one"
    resp.opts = [(9, b""), (23, b"\x0f")]  # SZX 7: malformed
    assert tf.incoming_response(None, req, resp) is None
