# Block1 (RFC 7959) uploads in both roles. Loaded on the first Block1 request a server receives or the first
# payload too big for one message a client sends.
from coap import block
from coap.msg import Message
import os

try:
    from micropython import const  # compile time on MicroPython: no code, no RAM
except ImportError:
    from coap import const

_CON = const(0)
_NON = const(1)
_CONTINUE = const(95)
_INCOMPLETE = const(136)
_TOO_LARGE = const(141)
_BLOCK1 = const(27)
_SIZE1 = const(60)


def receive(srv, req, res, v):
    """Server side: one Block1 request into the upload of (remote, path); None when the body is complete
    (then req.payload is the body, or req.upload the resource's sink). Blocks are taken in order into a
    bounded buffer, or streamed into the resource's sink(offset, data) (data valid only during the call) with
    nothing kept here; a gap gets 4.08. A body over the resource's max_body, or one the heap cannot hold, gets
    4.13 (with Size1 = max_body for the former)."""
    num, more, szx = block.decode(v)
    ups = srv.uploads
    key = (req.remote, res.path)
    a = ups.get(key)  # the upload: [sink, body buffer (None with a sink), offset, offset of the last block]
    limit = res.max_body
    if num == 0:
        size1 = req.uint(_SIZE1)
        if size1 is not None and size1 > limit:
            return Message(code=_TOO_LARGE).add(_SIZE1, limit)
        if a is not None:
            del ups[key]  # a restart: free the old body before making the new one
        elif len(ups) >= srv.max_uploads:
            ups.pop(next(iter(ups)))
        a = None
        try:
            sink = res.upload(req) if res.upload else None
            # With Size1 known the body buffer is allocated once (no regrowth fragmenting a small heap).
            a = [sink, None if sink else bytearray(size1) if size1 else bytearray(), 0, -1]
        except MemoryError:
            return Message(code=_TOO_LARGE)
        ups[key] = a
    elif a is None:
        return Message(code=_INCOMPLETE)
    data = req.payload
    off = num << (szx + 4)
    end = off + len(data)
    if off != a[2]:
        if off != a[3] or end != a[2]:
            return Message(code=_INCOMPLETE)  # a gap (the last block again, its answer lost: answered again)
    else:
        a[3] = off
        if more and len(data) != 16 << szx:
            return Message(code=_INCOMPLETE)  # a short block before the last
        if end > limit:
            del ups[key]
            return Message(code=_TOO_LARGE).add(_SIZE1, limit)
        try:
            if a[0] is None:
                b = a[1]
                if end <= len(b):
                    b[off:end] = data
                    if not more and end < len(b):
                        a[1] = memoryview(b)[:end]  # shorter than Size1 announced
                else:
                    b[off:] = data
            else:
                a[0](off, data)
        except MemoryError:
            del ups[key]
            return Message(code=_TOO_LARGE)
        a[2] = end
    s = szx if szx < srv.szx else srv.szx  # RFC 7959 2.3: ask for smaller blocks by answering a smaller SZX
    if s < szx:
        num <<= szx - s
    if more:
        return Message(code=_CONTINUE).add(_BLOCK1, block.encode(num, 1, s))
    del ups[key]
    if a[0] is None:
        req.payload = a[1]
    else:
        req.payload = b""
        req.upload = a[0]
    req.block1 = block.encode(num, 0, s)
    return None


async def send(cli, method, remote, path, src, size, options, con, timeout, szx):
    """Client side: send src (bytes, or a source with .read(off, n)) block by block; returns (response, szx)."""
    if not hasattr(src, "read"):
        b = src
        src = None
    off = 0
    while True:
        bs = 16 << szx
        data = b[off:off + bs] if src is None else src.read(off, bs)
        more = off + len(data) < size
        m = Message(_CON if con else _NON, method, 0, os.urandom(4), data).set_path(path)
        for o in options:
            m.add(o[0], o[1])
        m.add(_BLOCK1, block.encode(off >> (szx + 4), more, szx))
        if off == 0:
            m.add(_SIZE1, size)
        r = await cli.exchange(m, remote, timeout)
        rb1 = r.opt(_BLOCK1)
        if r.code == _TOO_LARGE and rb1 is not None and off == 0:
            s = block.decode(rb1)[2]
            if s < szx:  # the server wants smaller blocks: start over at its size
                szx = s
                continue
        if not more or r.code != _CONTINUE:
            return r, szx
        off += len(data)
        if rb1 is not None:
            s = block.decode(rb1)[2]
            if s < szx:  # SZX negotiation: continue with the server's smaller size (off stays aligned)
                szx = s

