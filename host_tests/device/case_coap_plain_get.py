# The server's lean GET path (coap.serve.burst: a plain GET answered before anything is decoded, the
# answer written straight into the deduplication ring) and the deduplication index it leans on, driven
# datagram by datagram like case_coap_server.
import sys
import hgtest
from coap.msg import Message
from coap_common import Recorder, dedup_answer, dedup_remember
from coap import defs as D
from coap.transport import Params
from coap.endpoint import Endpoint
from coap.server import Server
from coap import block
MP_HEAP = "128k"  # its budget on the VM (a board's heap x2): boards with less skip it

PEER = ("127.0.0.1", 40000)


def test_client_role_loads_with_the_first_request():
    # An endpoint that only serves never holds the client role's code (coap.requester), as one that only
    # requests never holds coap.serve. (CPython shares sys.modules with the other case files.)
    if not hgtest.IS_MICROPYTHON:
        hgtest.skip("sys.modules is shared with other cases on CPython")
    s, t, _ = make_server()
    s.receive(req(D.CON, D.GET, 1, b"\x01", "/big"), PEER)
    assert "coap.requester" not in sys.modules and "coap.serve" in sys.modules
    c = s.get(PEER, "/r")  # the coroutine: the client role is loaded to make it
    assert "coap.requester" in sys.modules
    c.close()


def make_server():
    t = Recorder()
    s = Server(t)
    calls = []
    s.route("/r", get=lambda req: calls.append("get") or b"hello", observable=True, max_age=30)
    s.route("/big", get=lambda req: bytes(i & 255 for i in range(3000)))
    return s, t, calls


def req(mtype, code, mid, token, path, *opts, payload=b""):
    m = Message(mtype, code, mid, token, payload).set_path(path)
    for n, v in opts:
        m.add(n, v)
    return bytes(m.encode())


def test_plain_get_lean_path_gives_the_handler_the_request():
    # coap.serve.burst answers a plain GET before anything is decoded: the handler still sees the whole
    # request (type, MID, token, path, options, remote), and every kind of result is answered as before.
    s, t, _ = make_server()
    seen = []

    def look(req):
        seen.append((req.type, req.code, req.mid, req.token, req.path(), req.opt(D.URI_PATH), req.remote,
                     bytes(req.payload), list(req.items())))
        return "text"

    long_seg = "a-segment-of-thirty-bytes-long"  # an extended option length (13 + n)
    s.route("/%s/x" % long_seg, get=look)
    s.route("/none", get=lambda req: None)
    s.route("/msg", get=lambda req: Message(code=D.VALID).add(D.ETAG, b"\x07"))
    s.route("/tuple", get=lambda req: (D.CREATED, b"t"))
    s.route("/", get=lambda req: b"root")
    s.receive(req(D.CON, D.GET, 300, b"\x01\x02\x03", "/%s/x" % long_seg), PEER)
    (r,) = t.take()
    assert (r.type, r.code, r.mid, r.token, bytes(r.payload)) == (D.ACK, D.CONTENT, 300, b"\x01\x02\x03", b"text")
    (typ, code, mid, tok, path, first, remote, payload, items) = seen[0]
    assert (typ, code, mid, tok, path, bytes(first), remote, payload) == \
        (D.CON, D.GET, 300, b"\x01\x02\x03", "/%s/x" % long_seg, long_seg.encode(), PEER, b"")
    assert [(n, bytes(v)) for n, v in items] == [(D.URI_PATH, long_seg.encode()), (D.URI_PATH, b"x")]
    s.receive(req(D.NON, D.GET, 301, b"", "/"), PEER)  # NON, no token, no options
    (r,) = t.take()
    assert (r.type, r.code, r.token, bytes(r.payload)) == (D.NON, D.CONTENT, b"", b"root") and r.mid != 301
    for mid, path, code, payload in ((302, "/none", D.CONTENT, b""), (303, "/msg", D.VALID, b""),
                                     (304, "/tuple", D.CREATED, b"t"), (305, "/nowhere", D.NOT_FOUND, b"")):
        s.receive(req(D.CON, D.GET, mid, b"\x05", path), PEER)
        (r,) = t.take()
        assert (r.type, r.mid, r.code, bytes(r.payload)) == (D.ACK, mid, code, payload), path
        assert bytes(r.opt(D.ETAG, b"")) == (b"\x07" if path == "/msg" else b"")


def test_plain_get_falls_back_to_the_general_path():
    # What the lean path does not take is answered by the general one: a query, a Block2 option, a payload,
    # a path that is not UTF-8, an unknown critical option, Observe/Max-Age resources.
    s, t, calls = make_server()
    s.route("/q", get=lambda req: ",".join(req.query()))
    s.receive(req(D.CON, D.GET, 400, b"\x01", "/q?a=1&b"), PEER)
    (r,) = t.take()
    assert (r.code, bytes(r.payload)) == (D.CONTENT, b"a=1,b")
    s.receive(req(D.CON, D.GET, 401, b"\x01", "/big", (D.BLOCK2, block.encode(1, 0, 4))), PEER)
    (r,) = t.take()
    assert block.decode(r.opt(D.BLOCK2)) == (1, 1, 4) and bytes(r.payload) == bytes(i & 255 for i in range(256, 512))
    s.receive(req(D.CON, D.GET, 402, b"\x01", "/q")[:-1] + b"\xfe", PEER)  # the segment "q" as 0xFE: not UTF-8
    (r,) = t.take()
    assert (r.mid, r.code) == (402, D.BAD_REQUEST)
    s.receive(req(D.CON, D.GET, 403, b"\x01", "/q", (D.IF_MATCH + 8, b"x")), PEER)  # option 9: critical, unknown
    (r,) = t.take()
    assert (r.mid, r.code) == (403, D.BAD_OPTION)
    s.receive(req(D.CON, D.GET, 404, b"\x01", "/r"), PEER)  # observable, Max-Age: the general path
    (r,) = t.take()
    assert r.code == D.CONTENT and r.uint(D.MAX_AGE) == 30 and calls == ["get"]


def test_plain_get_duplicates_and_memory_error():
    s, t, _ = make_server()
    n = [0]

    def counted(req):
        n[0] += 1
        if n[0] == 1:
            raise MemoryError
        return b"c%d" % n[0]

    s.route("/c", get=counted)
    d = req(D.CON, D.GET, 500, b"\x0a", "/c")
    try:
        s.receive(d, PEER)
        raise AssertionError("MemoryError expected")
    except MemoryError:
        pass
    assert t.take() == []
    s.receive(d, PEER)  # its retransmission is taken as new: the handler runs again
    (r,) = t.take()
    assert bytes(r.payload) == b"c2"
    s.receive(d, PEER)  # a duplicate now: the same answer from the cache, the handler not run
    (r2,) = t.take()
    assert (r2.mid, bytes(r2.payload)) == (500, b"c2") and n[0] == 2


def test_dedup_index_across_laps():
    # The index keeps only live slots, each MID's newest entry in its bucket: a MID whose slot was reused is a
    # new request, the newest entries are still found, the same MID from two peers too, and MIDs that share a
    # bucket (the same low byte) are each found.
    t = Recorder()
    t.params = Params(ack_timeout=100, max_retransmit=1, max_latency=400)
    d = Endpoint(t, dedup_limit=4)
    for i in range(11):
        dedup_remember(d, "a", i, b"r%d" % i, i)
    assert [dedup_answer(d, "a", i, 100) for i in range(11)] == [None] * 7 + [b"r7", b"r8", b"r9", b"r10"]
    assert live_buckets(d) == 4
    dedup_remember(d, "b", 10, b"b10", 200)
    assert dedup_answer(d, "a", 10, 200) == b"r10" and dedup_answer(d, "b", 10, 200) == b"b10"
    for i in range(12, 40):
        dedup_remember(d, "a", i, b"r%d" % i, 300 + i)
        assert dedup_answer(d, "a", i, 300 + i) == b"r%d" % i
    assert live_buckets(d) <= 4 and dedup_answer(d, "a", 10, 400) is None
    for i in range(3):  # MIDs 0x100, 0x200, 0x300 share bucket 0 with a newer one in front: each is found
        dedup_remember(d, "a", (i + 1) << 8, b"s%d" % i, 500 + i)
    assert [dedup_answer(d, "a", (i + 1) << 8, 510) for i in range(3)] == [b"s0", b"s1", b"s2"]
    assert dedup_answer(d, "a", 0x400, 510) is None and live_buckets(d) == 2


def live_buckets(d):
    return sum(1 for s in d.dd_index if s)


def test_plain_get_message_answer_is_sliced_into_blocks():
    # A handler on the lean path that answers with a Message whose payload is bigger than a block gets Block2
    # slicing like any other answer (the lean path once sent such a Message whole, past the transport's
    # largest message).
    s, t, _ = make_server()
    body = bytes(i & 255 for i in range(3000))
    s.route("/m", get=lambda req: Message(code=D.CONTENT, payload=body))
    s.receive(req(D.CON, D.GET, 600, b"\x01", "/m"), PEER)
    (r,) = t.take()
    num, more, szx = block.decode(r.opt(D.BLOCK2))
    assert (r.type, r.mid, r.code, num, more) == (D.ACK, 600, D.CONTENT, 0, 1)
    assert bytes(r.payload) == body[:16 << szx] and r.uint(D.SIZE2) == 3000


def test_plain_get_answer_bigger_than_the_ring_is_answered():
    # An endpoint given a block size its transport cannot carry (szx 6 over 256-byte messages): a plain GET
    # whose answer would not fit the deduplication ring (2 x 256 bytes) is still answered, and only once.
    t = Recorder(max_message_size=256)
    s = Server(t)
    s.szx = 6
    n = [0]
    body = bytes(700)
    s.route("/b", get=lambda req: n.append(1) or body)
    s.receive(req(D.CON, D.GET, 700, b"\x01", "/b"), PEER)
    (r,) = t.take()
    assert (r.type, r.mid, r.code) == (D.ACK, 700, D.CONTENT) and len(n) == 2
    s.receive(req(D.CON, D.GET, 700, b"\x01", "/b"), PEER)  # its duplicate: the same answer, no second run
    (r2,) = t.take()
    assert (r2.mid, r2.code, bytes(r2.payload)) == (700, D.CONTENT, bytes(r.payload)) and len(n) == 2


def test_plain_get_memory_error_making_the_ring():
    # The first answer kept makes the deduplication ring (2 x max_message_size): when that allocation fails
    # (a fragmented heap), the answer is still sent, kept as an object (coap.dedup), and a duplicate gets it
    # again without the handler running twice (the lean path once wrote into the ring it did not get).
    t = Recorder(max_message_size=1 << 40)
    s = Server(t)
    n = [0]
    s.route("/x", get=lambda req: n.append(1) or b"x")
    for _ in range(2):
        s.receive(req(D.CON, D.GET, 800, b"\x01", "/x"), PEER)
        (r,) = t.take()
        assert (r.type, r.mid, r.code, bytes(r.payload)) == (D.ACK, 800, D.CONTENT, b"x")
    assert len(n) == 2
