# Server defects found with real peers and hostile input (issue 8), datagram by datagram on both runtimes:
# a NON with an unknown critical option is rejected with RST, a Uri-Path that is not UTF-8 gets 4.00 without
# an exception, and a Block1 body streams into a resource's sink with a limit (4.13 with Size1 over it).
# Kept apart from case_coap_server.py so each case file compiles and runs in the 128k VM heap.
from coap.msg import Message
from coap_common import Recorder
from coap import defs as D
from coap.server import Server
from coap import block
MP_HEAP = "128k"  # the default heap the defects were found at; fails at 96k

PEER = ("127.0.0.1", 40000)


def make_server():
    t = Recorder()
    s = Server(t)
    calls = []
    s.route("/r", get=lambda req: calls.append("get") or b"hello")
    return s, t, calls, None


def req(mtype, code, mid, token, path, *opts, payload=b""):
    m = Message(mtype, code, mid, token, payload).set_path(path)
    for n, v in opts:
        m.add(n, v)
    return bytes(m.encode())


def test_non_with_unknown_critical_option_gets_rst():
    # RFC 7252 5.4.1: a NON with an unrecognised critical option is rejected (RST, as libcoap does); a CON
    # gets 4.02 piggybacked. No handler runs.
    s, t, calls, _ = make_server()
    s.receive(req(D.NON, D.GET, 0x77, b"n", "/r", (9, b"x")), PEER)
    (r,) = t.take()
    assert (r.type, r.code, r.mid) == (D.RST, 0, 0x77)
    s.receive(req(D.NON, D.GET, 0x78, b"n", "/r", (0x1001, b"x")), PEER)  # critical, above 255
    assert [(m.type, m.mid) for m in t.take()] == [(D.RST, 0x78)] and calls == []


def test_uri_path_not_utf8_gets_4_00_without_exception():
    s, t, calls, _ = make_server()
    errors = []
    s.on_error = errors.append
    m = Message(D.CON, D.GET, 0x99, b"u").add(D.URI_PATH, b"\xff\xfe").add(D.URI_PATH, b"r")
    s.receive(bytes(m.encode()), PEER)
    (r,) = t.take()
    assert (r.type, r.code, r.mid) == (D.ACK, D.BAD_REQUEST, 0x99)
    assert errors == [] and calls == []
    s.receive(req(D.CON, D.GET, 0x9A, b"u", "/r"), PEER)  # and the next request is served
    assert t.take()[0].code == D.CONTENT


def test_block1_streams_into_a_sink_with_a_limit():
    # Resource(upload=factory): the body goes block by block into the sink, nothing is assembled; the
    # handler runs once at the end with req.upload. Over max_body: 4.13 with Size1.
    s, t, calls, _ = make_server()
    got = []

    class Sink:
        def __init__(self, first):
            self.n = 0
            got.append(self)

        def __call__(self, off, data):
            assert off == self.n
            self.n += len(data)

    def done(req):
        calls.append(("stream", req.upload.n, len(req.payload)))
    s.route("/s", put=done, upload=Sink, max_body=100000)
    body = bytes(1024)  # the transport's largest block (SZX 6)
    n = 100000 // 1024
    for num in range(n + 1):
        more = num < n
        s.receive(req(D.CON, D.PUT, num & 0xFFFF, b"s", "/s", (D.BLOCK1, block.encode(num, more, 6)),
                      payload=body if more else body[:100000 - n * 1024]), PEER)
        (r,) = t.take()
        assert r.code == (D.CONTINUE if more else D.CHANGED), (num, r.code)
    assert calls == [("stream", 100000, 0)] and len(got) == 1
    # Announced too big (Size1) or growing past the limit: 4.13 with Size1 = max_body.
    s.receive(req(D.CON, D.PUT, 7000, b"s", "/s", (D.BLOCK1, block.encode(0, 1, 6)), (D.SIZE1, 200000),
                  payload=body), PEER)
    (r,) = t.take()
    assert r.code == D.TOO_LARGE and r.uint(D.SIZE1) == 100000
    for num in range(n + 2):
        s.receive(req(D.CON, D.PUT, (8000 + num) & 0xFFFF, b"s", "/s", (D.BLOCK1, block.encode(num, 1, 6)),
                      payload=body), PEER)
        (r,) = t.take()
        if r.code != D.CONTINUE:
            break
    assert num == n and r.code == D.TOO_LARGE and r.uint(D.SIZE1) == 100000
