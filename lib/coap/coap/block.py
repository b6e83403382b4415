# Block-wise transfers (RFC 7959): option values, the server's Block2 slicing, BlockError. Loaded on the first
# body the server cuts into blocks (and by coap.upload); the client's Block2 download (coap.download) needs
# none of it, so a download never loads it.
from coap import CoapError
from coap.msg import Message

try:
    from micropython import const  # compile time on MicroPython: no code, no RAM
except ImportError:
    from coap import const

_BAD_OPTION = const(130)
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


def _etag(b):
    # Short ETag for a multi-block body without one, so a client notices a change mid-transfer.
    h = 5381
    for x in bytes(b[:64]) + bytes(b[-64:]):
        h = (h * 33 + x) & 0xFFFFFFFF
    return ((h ^ len(b)) & 0xFFFFFFFF).to_bytes(4, "big")


def serve(srv, req, r):
    """Server side: cut the response body (bytes or a source) to the block the request asks for."""
    p = r.payload
    src = hasattr(p, "read")
    rb2 = req.opt(_BLOCK2)
    szx = srv.szx
    num = 0
    if rb2 is not None:
        num, _, s = decode(rb2)
        if s < szx:
            szx = s
    bs = 16 << szx
    if src:
        size = p.size
    else:
        size = len(p)
        if size <= bs and rb2 is None:
            return r
    off = num * bs
    if off >= size and not (off == 0 and size == 0):
        return Message(code=_BAD_OPTION, payload=b"block out of range")
    if src:
        data = p.read(off, bs)
        r.src = (p, off)  # the server's dedup cache re-reads this block for a duplicate request
    else:
        data = p[off:off + bs]
    r.payload = data
    r.add(_BLOCK2, encode(num, off + len(data) < size, szx))
    if num == 0 or req.opt(_SIZE2) is not None:
        r.add(_SIZE2, size)
    if not r.has(_ETAG):
        et = getattr(p, "etag", None) if src else _etag(p) if size > bs else None
        if et is not None:
            r.add(_ETAG, et)
    return r
