# Message layer and server state machines driven datagram by datagram (no event loop needed for
# synchronous handlers): RST/ping, deduplication, NON/CON answers, 4.02, discovery, Observe, Block1/Block2.
import hgtest
from coap.msg import Message
from coap_common import Recorder, dedup_answer, dedup_remember
from coap import defs as D
from coap import dedup
from coap.transport import Params
from coap.endpoint import Endpoint
from coap.requester import initial_timeout
from coap.server import Server
from coap.linkformat import link_format
from coap import block
MP_HEAP = "136k"  # its budget on the VM (a board's heap x2): boards with less skip it

PEER = ("127.0.0.1", 40000)


def make_server(**kw):
    t = Recorder(**kw)
    s = Server(t)
    calls = []
    store = {"v": b"hello"}

    def get(req):
        calls.append("get")
        return store["v"]

    def put(req):
        calls.append("put")
        store["v"] = bytes(req.payload)

    s.route("/r", get=get, put=put, rt="temperature sensor", if_="core.s", ct=0, observable=True, max_age=30)
    s.route("/big", get=lambda req: bytes(i & 255 for i in range(3000)), rt="blob")
    s.route("/other", post=lambda req: (D.CREATED, b""), ct=50)
    return s, t, calls, store


def req(mtype, code, mid, token, path, *opts, payload=b""):
    m = Message(mtype, code, mid, token, payload).set_path(path)
    for n, v in opts:
        m.add(n, v)
    return bytes(m.encode())


def test_params_derived_values():
    p = Params()
    assert p.max_transmit_span == 45000
    assert p.max_transmit_wait == 93000
    assert p.exchange_lifetime == 247000
    assert p.non_lifetime == 145000
    assert initial_timeout(p, 0) == 2000 and initial_timeout(p, 65535) == 3000
    fast = Params(ack_timeout=100, max_retransmit=2)
    assert fast.max_transmit_span == 450


def test_ping_gets_rst():
    s, t, _, _ = make_server()
    s.receive(bytes((0x40, 0, 0x12, 0x34)), PEER)
    (r,) = t.take()
    assert (r.type, r.code, r.mid) == (D.RST, 0, 0x1234)


def test_malformed_con_gets_rst_non_ignored():
    s, t, calls, _ = make_server()
    s.receive(hgtest.unhex("41 01 00 07 aa f1 00"), PEER)  # reserved delta nibble
    (r,) = t.take()
    assert (r.type, r.mid, r.code) == (D.RST, 7, 0)
    s.receive(hgtest.unhex("51 01 00 08 aa f1 00"), PEER)  # same as NON: silently dropped
    s.receive(hgtest.unhex("40 01 00 09 b1 61 ff"), PEER)  # CON, payload marker without payload
    assert [(m.type, m.mid) for m in t.take()] == [(D.RST, 9)]
    s.receive(b"\x40\x01", PEER)  # no header: nothing to answer
    assert t.take() == [] and calls == []


def test_oversized_datagram():
    s, t, calls, _ = make_server(max_message_size=64)
    s.receive(req(D.CON, D.PUT, 3, b"t", "/r", payload=bytes(100)), PEER)
    assert [(m.type, m.mid) for m in t.take()] == [(D.RST, 3)] and calls == []


def test_piggybacked_and_dedup():
    s, t, calls, _ = make_server()
    d = req(D.CON, D.GET, 100, b"\x01\x02", "/r")
    s.receive(d, PEER)
    (r,) = t.take()
    assert (r.type, r.code, r.mid, r.token, bytes(r.payload)) == (D.ACK, D.CONTENT, 100, b"\x01\x02", b"hello")
    assert r.uint(D.MAX_AGE) == 30
    s.receive(d, PEER)  # duplicate: the cached response again, handler not run
    (r2,) = t.take()
    assert calls == ["get"] and r2.mid == 100 and bytes(r2.payload) == b"hello"
    s.receive(d, ("127.0.0.1", 40001))  # same MID from another endpoint is a new request
    assert calls == ["get", "get"] and len(t.take()) == 1


def test_non_request_gets_non_response():
    s, t, calls, _ = make_server()
    d = req(D.NON, D.GET, 200, b"\x09", "/r")
    s.receive(d, PEER)
    (r,) = t.take()
    assert r.type == D.NON and r.token == b"\x09" and r.code == D.CONTENT
    s.receive(d, PEER)  # duplicate NON: ignored
    assert t.take() == [] and calls == ["get"]


def test_no_response_suppresses_the_classes_asked_for():
    # RFC 7967: the handler runs; the answer of a suppressed class is not sent (a CON gets an empty ACK)
    s, t, calls, store = make_server()
    s.receive(req(D.NON, D.PUT, 300, b"\x01", "/r", (258, b"\x1a"), payload=b"new"), PEER)  # 26: 2/4/5.xx
    assert t.take() == [] and store["v"] == b"new"
    s.receive(req(D.NON, D.GET, 301, b"\x02", "/nope", (258, b"\x02")), PEER)  # 2.xx only: a 4.04 goes out
    (r,) = t.take()
    assert (r.type, r.code, r.token) == (D.NON, D.NOT_FOUND, b"\x02")
    s.receive(req(D.CON, D.GET, 302, b"\x03", "/r", (258, b"\x02")), PEER)
    (r,) = t.take()
    assert (r.type, r.code, r.mid, len(r.payload)) == (D.ACK, 0, 302, 0), "an empty ACK, no 2.05"
    s.receive(req(D.NON, D.GET, 303, b"\x04", "/r", (258, b"")), PEER)  # empty: every response wanted
    (r,) = t.take()
    assert r.code == D.CONTENT and bytes(r.payload) == b"new" and calls == ["put", "get", "get"]


def test_errors_piggybacked():
    s, t, _, _ = make_server()
    s.receive(req(D.CON, D.GET, 1, b"a", "/nope"), PEER)
    s.receive(req(D.CON, D.DELETE, 2, b"b", "/r"), PEER)
    s.receive(req(D.CON, D.GET, 3, b"c", "/r", (9, b"x")), PEER)  # unknown critical option 9
    s.receive(req(D.CON, D.GET, 4, b"d", "/r", (10, b"x")), PEER)  # unknown elective: ignored
    codes = [(m.type, m.code) for m in t.take()]
    assert codes == [(D.ACK, D.NOT_FOUND), (D.ACK, D.NOT_ALLOWED), (D.ACK, D.BAD_OPTION), (D.ACK, D.CONTENT)]


def test_put_then_get():
    s, t, calls, store = make_server()
    s.receive(req(D.CON, D.PUT, 5, b"p", "/r", payload=b"new"), PEER)
    s.receive(req(D.CON, D.POST, 6, b"q", "/other"), PEER)
    (a, b) = t.take()
    assert a.code == D.CHANGED and store["v"] == b"new" and b.code == D.CREATED


def test_discovery_and_filtering():
    s, t, _, _ = make_server()
    s.receive(req(D.CON, D.GET, 1, b"w", "/.well-known/core"), PEER)
    (r,) = t.take()
    assert r.uint(D.CONTENT_FORMAT) == 40
    links = bytes(r.payload).decode().split(",")
    assert '</r>;rt="temperature sensor";if="core.s";ct=0;obs' in links
    assert len(links) == 3
    res = list(s.resources.values())
    assert link_format(res, ["rt=sensor"]) == '</r>;rt="temperature sensor";if="core.s";ct=0;obs'
    assert link_format(res, ["rt=temp*"]).startswith("</r>")
    assert link_format(res, ["rt=temp"]) == ""
    assert link_format(res, ["if=core.s"]).startswith("</r>")
    assert link_format(res, ["ct=50"]) == "</other>;ct=50"
    assert link_format(res, ["href=/b*"]) == '</big>;rt="blob"'
    assert link_format(res, ["href=/r"]).startswith("</r>")
    s.receive(req(D.CON, D.GET, 2, b"w", "/.well-known/core?rt=blob"), PEER)
    (r,) = t.take()
    assert bytes(r.payload) == b'</big>;rt="blob"'


def test_block2_server_slices():
    s, t, _, _ = make_server()
    body = bytes(i & 255 for i in range(3000))
    got = b""
    etags = []
    num = 0
    while True:
        s.receive(req(D.CON, D.GET, 10 + num, b"b", "/big", (D.BLOCK2, block.encode(num, 0, 2))), PEER)
        (r,) = t.take()
        n, more, szx = block.decode(r.opt(D.BLOCK2))
        assert n == num and szx == 2 and len(r.payload) == (64 if more else 3000 % 64)
        if num == 0:
            assert r.uint(D.SIZE2) == 3000
        etags.append(bytes(r.opt(D.ETAG)))
        got += bytes(r.payload)
        if not more:
            break
        num += 1
    assert got == body and num == 46 and len(set(etags)) == 1
    s.receive(req(D.CON, D.GET, 99, b"b", "/big", (D.BLOCK2, block.encode(47, 0, 2))), PEER)
    assert t.take()[0].code == D.BAD_OPTION  # out of range
    s.receive(req(D.CON, D.GET, 98, b"b", "/big", (D.BLOCK2, 7)), PEER)
    assert t.take()[0].code == D.BAD_OPTION  # reserved SZX 7


def test_block2_default_size_follows_transport():
    s, t, _, _ = make_server(max_message_size=300)
    s.receive(req(D.CON, D.GET, 1, b"b", "/big"), PEER)
    (r,) = t.take()
    assert block.decode(r.opt(D.BLOCK2)) == (0, 1, 3) and len(r.payload) == 128


class CountingSource:
    # A large body read through a source: the server only ever asks for one block.
    def __init__(self, size):
        self.size = size
        self.etag = b"\x01\x02"
        self.reads = []

    def read(self, off, n):
        self.reads.append((off, n))
        return bytes((off + i) & 255 for i in range(min(n, self.size - off)))


def test_block2_from_source():
    s, t, _, _ = make_server()
    src = CountingSource(1 << 20)
    s.route("/fw", get=lambda req: Message(code=D.CONTENT, payload=src))
    s.receive(req(D.CON, D.GET, 1, b"f", "/fw", (D.BLOCK2, block.encode(1000, 0, 6))), PEER)
    (r,) = t.take()
    assert block.decode(r.opt(D.BLOCK2)) == (1000, 1, 6) and bytes(r.opt(D.ETAG)) == b"\x01\x02"
    assert src.reads == [(1024000, 1024)] and len(r.payload) == 1024


def test_block1_server():
    s, t, calls, store = make_server()
    body = bytes((i * 7) & 255 for i in range(200))
    for num in range(4):
        chunk = body[num * 64:(num + 1) * 64]
        more = (num + 1) * 64 < len(body)
        opts = [(D.BLOCK1, block.encode(num, more, 2))]
        if num == 0:
            opts.append((D.SIZE1, len(body)))
        s.receive(req(D.CON, D.PUT, 50 + num, bytes((num,)), "/r", *opts, payload=chunk), PEER)
        (r,) = t.take()
        assert block.decode(r.opt(D.BLOCK1)) == (num, more, 2)
        assert r.code == (D.CONTINUE if more else D.CHANGED)
    assert store["v"] == body and calls == ["put"]


def test_block1_gap_and_limits():
    s, t, calls, _ = make_server()
    s.receive(req(D.CON, D.PUT, 1, b"a", "/r", (D.BLOCK1, block.encode(3, 1, 2)), payload=bytes(64)), PEER)
    assert t.take()[0].code == D.INCOMPLETE
    s.receive(req(D.CON, D.PUT, 2, b"a", "/r", (D.BLOCK1, block.encode(0, 1, 2)), (D.SIZE1, 10 ** 6),
                  payload=bytes(64)), PEER)
    (r,) = t.take()
    assert r.code == D.TOO_LARGE and r.uint(D.SIZE1) == 8192
    s.receive(req(D.CON, D.PUT, 3, b"a", "/r", (D.BLOCK1, block.encode(0, 1, 2)), payload=bytes(64)), PEER)
    s.receive(req(D.CON, D.PUT, 4, b"a", "/r", (D.BLOCK1, block.encode(2, 1, 2)), payload=bytes(64)), PEER)
    assert [m.code for m in t.take()] == [D.CONTINUE, D.INCOMPLETE] and calls == []


def test_observe_register_notify_cancel():
    s, t, calls, store = make_server()
    res = s.resources["/r"]
    s.receive(req(D.CON, D.GET, 1, b"o1", "/r", (D.OBSERVE, 0)), PEER)
    (r,) = t.take()
    first = r.uint(D.OBSERVE)
    assert r.type == D.ACK and first is not None and len(res.observers) == 1
    seqs = []
    for i in range(3):
        store["v"] = b"v%d" % i
        s.notify(res)
        (n,) = t.take()
        assert n.type == D.NON and n.token == b"o1" and bytes(n.payload) == b"v%d" % i
        assert n.uint(D.MAX_AGE) == 30
        seqs.append(n.uint(D.OBSERVE))
    assert first < seqs[0] < seqs[1] < seqs[2]
    # The client forgot the token and answers the NON notification with RST: observer removed.
    s.receive(bytes((0x70, 0, n.mid >> 8, n.mid & 255)), PEER)
    assert len(res.observers) == 0
    s.notify(res)
    assert t.take() == []


def test_unroute_ends_observations_and_uploads():
    s, t, calls, store = make_server()
    res = s.resources["/r"]
    s.receive(req(D.CON, D.GET, 1, b"o1", "/r", (D.OBSERVE, 0)), PEER)
    s.receive(req(D.CON, D.PUT, 2, b"u", "/r", (D.BLOCK1, block.encode(0, 1, 2)), payload=bytes(64)), PEER)
    assert [r.code for r in t.take()] == [D.CONTENT, D.CONTINUE] and len(s.uploads) == 1
    assert s.unroute("r") is res
    (n,) = t.take()  # the observer hears that the resource is gone
    assert n.code == D.NOT_FOUND and n.token == b"o1" and n.type in (D.NON, D.CON)
    assert len(res.observers) == 0 and len(s.uploads) == 0
    s.receive(req(D.CON, D.GET, 3, b"g", "/r"), PEER)
    s.receive(req(D.CON, D.PUT, 4, b"u", "/r", (D.BLOCK1, block.encode(1, 0, 2)), payload=bytes(8)), PEER)
    assert [r.code for r in t.take()] == [D.NOT_FOUND, D.NOT_FOUND] and calls == ["get"]  # the registration
    assert s.unroute("/r") is None and s.unroute("/nothing") is None
    s.receive(req(D.CON, D.GET, 5, b"b", "/big", (D.BLOCK2, block.encode(0, 0, 2))), PEER)
    assert t.take()[0].code == D.CONTENT  # the other resources are still served
    assert Endpoint(Recorder()).unroute("/r") is None  # an endpoint that serves nothing


def test_observe_deregister_and_limit():
    s, t, _, _ = make_server()
    res = s.resources["/r"]
    for i in range(6):
        s.receive(req(D.CON, D.GET, 10 + i, bytes((i,)), "/r", (D.OBSERVE, 0)), ("10.0.0.%d" % i, 5683))
    rs = t.take()
    assert len(res.observers) == 4  # default observer limit
    assert [r.has(D.OBSERVE) for r in rs] == [True] * 4 + [False] * 2
    s.receive(req(D.CON, D.GET, 30, b"\x00", "/r", (D.OBSERVE, 1)), ("10.0.0.0", 5683))
    assert not t.take()[0].has(D.OBSERVE) and len(res.observers) == 3
    s.receive(req(D.CON, D.GET, 31, b"\x01", "/r"), ("10.0.0.1", 5683))  # plain GET, same token
    t.take()
    assert len(res.observers) == 2


def test_observe_with_block2():
    s, t, _, _ = make_server()
    store = bytes(range(200))
    s.route("/ob", get=lambda req: store, observable=True)
    s.receive(req(D.CON, D.GET, 1, b"k", "/ob", (D.OBSERVE, 0), (D.BLOCK2, block.encode(0, 0, 2))), PEER)
    (r,) = t.take()
    assert r.has(D.OBSERVE) and block.decode(r.opt(D.BLOCK2)) == (0, 1, 2)
    # Fetching the rest (no Observe option, later blocks) must keep the registration.
    s.receive(req(D.CON, D.GET, 2, b"l", "/ob", (D.BLOCK2, block.encode(1, 0, 2))), PEER)
    (r,) = t.take()
    assert not r.has(D.OBSERVE) and len(s.resources["/ob"].observers) == 1
    s.notify(s.resources["/ob"])
    (n,) = t.take()
    assert n.has(D.OBSERVE) and block.decode(n.opt(D.BLOCK2)) == (0, 1, 2) and len(n.payload) == 64


def test_dedup_bounded():
    t = Recorder()
    t.params = Params(ack_timeout=100, max_retransmit=1, max_latency=400)  # EXCHANGE_LIFETIME 1050 ms
    d = Endpoint(t, dedup_limit=4)
    for i in range(10):
        dedup_remember(d, "a", i, b"r%d" % i, i)
    assert [dedup_answer(d, "a", i, 100) for i in range(10)] == [None] * 6 + [b"r6", b"r7", b"r8", b"r9"]
    assert dedup_answer(d, "a", 9, 2000) is None  # past EXCHANGE_LIFETIME
    # The same MID from two peers: two entries, each found.
    dedup_remember(d, "b", 9, b"b9", 3000)
    dedup_remember(d, "c", 9, b"c9", 3000)
    assert dedup_answer(d, "b", 9, 3000) == b"b9" and dedup_answer(d, "c", 9, 3000) == b"c9"


def test_dedup_byte_budget():
    # Answers' bytes share one ring of 2 x max_message_size: the oldest big ones are overwritten first,
    # the newest stays; nothing is allocated per answer (the ring and the slots exist from the start).
    t = Recorder(max_message_size=1000)
    d = Endpoint(t)
    for i in range(5):
        dedup_remember(d, "a", i, bytes([i]) * 900, i)
    assert [dedup_answer(d, "a", i, 10) for i in range(5)] == [None, None, None, bytes([3]) * 900, bytes([4]) * 900]
    dedup_remember(d, "a", 9, bytes(2500), 20)  # one answer over the ring is still kept, as an object
    assert dedup_answer(d, "a", 9, 30) == bytes(2500)
    # A Block2 block from a source costs only its header in the ring: many fit.
    src = CountingSource(1 << 20)
    for i in range(10):
        dedup.store(d, dedup.add(d, "b", i, 40 + i), b"h" * 20, 2, (src, 64 * i, 64))
    assert [dedup_answer(d, "b", i, 60)[-64:] == src.read(64 * i, 64) for i in range(10)] == [True] * 10
    # A duplicate whose answer the ring lost is taken as a new message (its handler runs again).
    s = dedup.find(d, "a", 3, 10)
    assert s >= 0 and dedup.resend(d, s, D.CON) is False


