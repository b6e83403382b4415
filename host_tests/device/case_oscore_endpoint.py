# OSCORE on the CoAP endpoints (oscore.transform over the coap transform seam), our client against our server
# over an in-memory datagram link, on both runtimes: GET/PUT/POST with a query, the context a handler sees, a
# resource that requires OSCORE, Block1/Block2 bodies of several KiB (inner Block-wise, each block its own OSCORE
# request), Observe notifications with their own Partial IVs, and the Echo round trip after a server reboot.
import asyncio
import os

import hgtest
from coap import defs as D
from coap.client import Client
from coap.endpoint import RefusedError
from coap.server import Server
from coap.transport import Params
from oscore import Context
from oscore.transform import Oscore, context_of
from oscore import client as Q
from store import FileStore

# Both endpoints, OSCORE and crypto compiled from source in one VM: 256k (the heap a device pays, with .mpy and
# one role, is in the benchmark).
MP_HEAP = "256k"
FAST = Params(ack_timeout=200, max_retransmit=4)
SECRET = bytes(range(16))
SALT = b"\x9e\x7c\xa9\x22\x23\x78\x63\x40"


def _store(sub):
    root = "build/test-oscore-ep-" + hgtest.RUNTIME + "/" + sub
    try:
        for name in os.listdir(root):
            os.remove(root + "/" + name)
    except OSError:
        pass
    return FileStore(root)


class Link:
    # One end of an in-memory datagram link: every board runs this file (the nRF52840 has no UDP); the real
    # sockets are in host_tests/test_oscore_interop.py.
    def __init__(self, name, net):
        self.name = name
        self.net = net
        self.q = []
        self.ev = asyncio.Event()
        self.params = FAST
        self.max_message_size = 1152
        self.closed = False
        self.address = name
        net[name] = self

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
        peer = self.net.get(remote)
        if peer is not None and not peer.closed:
            peer.q.append((bytes(data), self.name))
            peer.ev.set()

    def close(self):
        self.closed = True
        self.ev.set()


NET = {}


def _link(name):
    return Link(name, NET)


def _server(ctx, require=("/secret",)):
    srv = Server(_link("server"))
    srv.transform = Oscore([ctx], require=require)
    box = {"v": b"hello", "seen": []}

    def get(req):
        c = context_of(req)
        box["seen"].append((req.path(), req.query(), None if c is None else c.recipient_id))
        return box["v"]

    def put(req):
        box["v"] = bytes(req.payload)
        box["seen"].append(("put", len(req.payload), context_of(req) is not None))

    def post(req):
        return (D.CREATED, b"got " + bytes(req.payload))

    srv.route("/r", get=get, put=put, post=post, observable=True)
    srv.route("/secret", get=lambda req: b"s3cret")
    srv.start()
    return srv, box


def _client(ctx, name="client"):
    cli = Client(_link(name))
    cli.transform = Oscore(client=ctx)
    return cli


def _contexts(store=None, k=64):
    cc = Context(SECRET, SALT, b"\x01", b"\x02")
    sc = Context(SECRET, SALT, b"\x02", b"\x01", store=store, name="srv", k=k)
    return cc, sc


def test_requests_through_oscore():
    async def main():
        cc, sc = _contexts()
        srv, box = _server(sc)
        cli = _client(cc)
        to = srv.t.address
        r = await cli.get(to, "/r?a=1&b=x")
        assert r.code == D.CONTENT and bytes(r.payload) == b"hello"
        assert box["seen"][-1] == ("/r", ["a=1", "b=x"], b"\x01"), "the handler sees the context"
        r = await cli.put(to, "/r", b"new")
        assert r.code == D.CHANGED and box["v"] == b"new" and box["seen"][-1] == ("put", 3, True)
        r = await cli.post(to, "/r", b"abc")
        assert r.code == D.CREATED and bytes(r.payload) == b"got abc"
        r = await cli.get(to, "/secret")
        assert bytes(r.payload) == b"s3cret"
        assert sc.top == 3 and cc.seq == 4
        plain = Client(_link("plain"))  # no OSCORE: the required path is refused
        r = await plain.get(to, "/secret")
        assert r.code == 129 and bytes(r.payload) == b"OSCORE required"
        r = await plain.get(to, "/r")
        assert r.code == D.CONTENT and box["seen"][-1][2] is None, "an open resource stays open"
        # a client with the wrong keys: the server's unprotected 4.00 is not taken as an answer
        bad = _client(Context(b"x" * 16, SALT, b"\x01", b"\x02"), "bad")
        e = None
        try:
            await bad.get(to, "/r")
        except RefusedError as ex:
            e = ex
        assert e is not None and sc.top == 3
        for ep in (cli, plain, bad, srv):
            ep.close()
    asyncio.run(main())


def test_blockwise_bodies_through_oscore():
    async def main():
        cc, sc = _contexts()
        srv, box = _server(sc)
        cli = _client(cc)
        to = srv.t.address
        body = bytes((i * 7) & 255 for i in range(3000))
        r = await cli.put(to, "/r", body, szx=4)  # 256-byte Block1 blocks, each one OSCORE request
        assert r.code == D.CHANGED and box["v"] == body
        n = cc.seq
        assert n == 12
        r = await cli.get(to, "/r", szx=4)
        assert bytes(r.payload) == body and cc.seq == n + 12
        for ep in (cli, srv):
            ep.close()
    asyncio.run(main())


def test_observe_through_oscore():
    async def main():
        cc, sc = _contexts()
        srv, box = _server(sc)
        cli = _client(cc)
        got = []
        obs = await cli.observe(srv.t.address, "/r", lambda m: got.append(bytes(m.payload)))
        res = srv.resources["/r"]
        for i in range(6):
            box["v"] = b"n%d" % i
            srv.notify(res)
            await asyncio.sleep(0.05)
        assert got == [b"hello"] + [b"n%d" % i for i in range(6)], got
        assert sc.seq == 7, "every notification, the first one too, used a server sequence number"
        await obs.cancel()
        for ep in (cli, srv):
            ep.close()
    asyncio.run(main())


def test_echo_round_trip_after_server_reboot():
    async def main():
        st = _store("echo")
        cc, sc = _contexts(st, k=4)
        srv, box = _server(sc)
        cli = _client(cc)
        to = srv.t.address
        for i in range(3):
            assert (await cli.get(to, "/r")).code == D.CONTENT
        used = sc.seq
        srv.close()
        await asyncio.sleep(0.05)
        sc2 = Context(SECRET, SALT, b"\x02", b"\x01", store=st, name="srv", k=4)  # reboot from the store
        assert not sc2.synced and sc2.seq >= used
        srv, box = _server(sc2)
        n = len(box["seen"])
        r = await Q.request(cli.transform, cli, D.GET, to, "/r")
        assert r.code == D.CONTENT and bytes(r.payload) == b"hello" and sc2.synced
        assert len(box["seen"]) == n + 1, "the challenged request reached no handler; the retry did, once"
        assert cc.seq == 5
        for ep in (cli, srv):
            ep.close()
    asyncio.run(main())
