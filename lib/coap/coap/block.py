# Block-wise transfers (RFC 7959): option values, the checks both roles make per block (sans-IO), the
# server's Block2 slicing and the client's Block2 download loop. Loaded on the first body that needs blocks.
from coap import CoapError
import os
from coap.msg import Message, uint_bytes

try:
    from micropython import const  # compile time on MicroPython: no code, no RAM
except ImportError:
    from coap import const

_CON = const(0)
_NON = const(1)
_GET = const(1)
_BAD_OPTION = const(130)
_OBSERVE = const(6)
_BLOCK2 = const(23)
_SIZE2 = const(28)
_ETAG = const(4)


class BlockError(CoapError):
    """A block-wise transfer went inconsistent (ETag changed, unexpected block, bad size)."""


def decode(v):
    """Block1/Block2 option value -> (num, more, szx). SZX 7 is reserved."""
    if len(v) > 3:
        raise BlockError("block option too long")
    n = int.from_bytes(v, "big") if v else 0
    szx = n & 7
    if szx == 7:
        raise BlockError("reserved SZX 7")
    return n >> 4, (n >> 3) & 1, szx


def encode(num, more, szx):
    if num >= 1 << 20 or not 0 <= szx < 7:
        raise BlockError("block number or size out of range")
    return (num << 4) | (8 if more else 0) | szx


class Receiver:
    """Client side of a Block2 download (or any block sequence): checks each block continues the body
    and keeps the ETag stable. Data goes to sink(offset, data); nothing is kept here."""

    def __init__(self, sink):
        self.sink = sink
        self.offset = 0
        self.etag = None
        self.size = None  # Size2 when the server told it
        self.first = True

    def feed(self, num, more, szx, data, etag, size=None):
        """Returns the next block number to ask for (at this block's size), or None when complete."""
        off = num << (szx + 4)
        if off != self.offset:
            raise BlockError("block at %d, expected %d" % (off, self.offset))
        if self.first:
            self.etag = etag
            self.first = False
        elif etag != self.etag:
            raise BlockError("ETag changed during transfer")
        if more and len(data) != 16 << szx:
            raise BlockError("short block before the last")
        if len(data) > 16 << szx:
            raise BlockError("block larger than its size")
        if size is not None:
            self.size = size
        self.sink(off, data)
        self.offset = off + len(data)
        if not more:
            return None
        return self.offset >> (szx + 4)


class _Bytes:
    # A bytes body seen as a source, so Block2 slicing has one code path.
    def __init__(self, b):
        self.b = b
        self.size = len(b)
        self.etag = None

    def read(self, off, n):
        return self.b[off:off + n]


def _etag(b):
    # Short ETag for a multi-block body without one, so a client notices a change mid-transfer.
    h = 5381
    for x in bytes(b[:64]) + bytes(b[-64:]):
        h = (h * 33 + x) & 0xFFFFFFFF
    return ((h ^ len(b)) & 0xFFFFFFFF).to_bytes(4, "big")


def serve(srv, req, r):
    """Server side: cut the response body (bytes or a source) to the block the request asks for."""
    p = r.payload
    src = p if hasattr(p, "read") else None
    rb2 = req.opt(_BLOCK2)
    szx = srv.szx
    num = 0
    if rb2 is not None:
        num, _, s = decode(rb2)
        if s < szx:
            szx = s
    bs = 16 << szx
    if src is None:
        if len(p) <= bs and rb2 is None:
            return r
        src = _Bytes(p)
    size = src.size
    off = num * bs
    if off >= size and not (off == 0 and size == 0):
        return Message(code=_BAD_OPTION, payload=b"block out of range")
    data = src.read(off, bs)
    more = off + len(data) < size
    r.payload = data
    if type(src) is not _Bytes:
        r.src = (src, off)  # the server's dedup cache re-reads this block for a duplicate request
    r.add(_BLOCK2, encode(num, more, szx))
    if num == 0 or req.opt(_SIZE2) is not None:
        r.add(_SIZE2, size)
    if not r.has(_ETAG):
        et = getattr(src, "etag", None)
        if et is None and type(src) is _Bytes and size > bs:
            et = _etag(src.b)
        if et is not None:
            r.add(_ETAG, et)
    return r


async def fetch(cli, r, b2, method, remote, path, options, con, timeout, sink, start, etag):
    """Client side: follow Block2 from the first response r to the end of the body."""
    if start is not None:
        rx = Receiver(sink)
        rx.offset = (start[0] + 1) << (start[2] + 4)
        rx.first = False
        rx.etag = etag
    else:
        body = None
        if sink is None:
            body = bytearray()

            def sink(off, data):
                body.extend(data)
        rx = Receiver(sink)
    num, more, s = decode(b2)
    nxt = rx.feed(num, more, s, r.payload, r.opt(_ETAG), r.uint(_SIZE2))
    m = Message(_CON if con else _NON, method).set_path(path)
    for o in options:
        if o[0] != _OBSERVE:  # later blocks of a notification are plain GETs
            m.add(o[0], o[1])
    m.add(_BLOCK2, 0)
    tok = int.from_bytes(os.urandom(4), "big")  # a random token, then a fresh one per block by counting on
    while nxt is not None:
        m.opts[-1] = (_BLOCK2, uint_bytes(encode(nxt, 0, s)))  # one request message, re-aimed at each block
        m.token = ((tok + nxt) & 0xFFFFFFFF).to_bytes(4, "big")
        r = await cli.exchange(m, remote, timeout)
        b2 = r.opt(_BLOCK2)
        if b2 is None or r.code >= 96:
            raise BlockError("block %d: %s without Block2" % (nxt, r.code))
        num, more, s = decode(b2)
        nxt = rx.feed(num, more, s, r.payload, r.opt(_ETAG))
    if start is None and body is not None:
        r.payload = body
    r.size2 = rx.size
    return r
