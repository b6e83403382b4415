# The client's Block2 download (RFC 7959): the rest of a body after its first block, checked block by block
# (Receiver: continuity, ETag, sizes) into a sink. Loaded by coap.requester for the first response that comes
# in blocks; it needs nothing of coap.block (the option codec is inlined: a Block2 value is
# num << 4 | more << 3 | szx), whose BlockError is loaded only to be raised.
import os
from coap.msg import Message, uint_bytes
from coap.requester import exchange

try:
    from micropython import const  # compile time on MicroPython: no code, no RAM
except ImportError:
    from coap import const

_CON = const(0)
_NON = const(1)
_ETAG = const(4)
_OBSERVE = const(6)
_BLOCK2 = const(23)
_SIZE2 = const(28)


def _error(text):
    from coap.block import BlockError
    return BlockError(text)


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
            raise _error("block at %d, expected %d" % (off, self.offset))
        if self.first:
            self.etag = etag if etag is None else bytes(etag)  # a copy: a view would keep its block alive
            self.first = False
        elif etag != self.etag:
            raise _error("ETag changed during transfer")
        if more and len(data) != 16 << szx:
            raise _error("short block before the last")
        if len(data) > 16 << szx:
            raise _error("block larger than its size")
        if size is not None:
            self.size = size
        self.sink(off, data)
        self.offset = off + len(data)
        if not more:
            return None
        return self.offset >> (szx + 4)



def _feed(rx, r, first):
    # One block into the Receiver: the next request's Block2 value (the next block at this block's size), or
    # None when the body is complete. A plain function, so that the block's payload is never on fetch's
    # (long-lived) coroutine stack.
    b2 = r.opt(_BLOCK2)  # num << 4 | more << 3 | szx (as coap.block.decode)
    if b2 is None or r.code >= 96 and not first:  # a later block must be a success with Block2
        raise _error("block at %d: %s without Block2" % (rx.offset, r.code))
    if len(b2) > 3:
        raise _error("block option too long")
    n = int.from_bytes(b2, "big") if b2 else 0
    s = n & 7
    if s == 7:
        raise _error("reserved SZX 7")
    nxt = rx.feed(n >> 4, (n >> 3) & 1, s, r.payload, r.opt(_ETAG), r.uint(_SIZE2) if first else None)
    if nxt is None:
        return None
    if nxt >= 1 << 20:
        raise _error("block number or size out of range")
    return (nxt << 4) | s


async def fetch(ep, first, method, remote, path, options, con, timeout, sink, start, etag):
    """Follow Block2 from the first response (the only item of the list `first`, taken out) to the end of
    the body."""
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
    r = first.pop()
    m = None
    while True:
        v = _feed(rx, r, m is None)
        if v is None:
            break
        nxt = v >> 4
        if m is None:
            m = Message(_CON if con else _NON, method).set_path(path)
            for o in options:
                if o[0] != _OBSERVE:  # later blocks of a notification are plain GETs
                    m.add(o[0], o[1])
            m.add(_BLOCK2, 0)
            tok = int.from_bytes(os.urandom(4), "big")  # a random token, then a fresh one per block by counting
        m.opts[-1] = (_BLOCK2, uint_bytes(v))  # one request message, re-aimed at each block
        m.token = ((tok + nxt) & 0xFFFFFFFF).to_bytes(4, "big")
        r = None
        r = await exchange(ep, m, remote, timeout)
    if start is None and body is not None:
        r.payload = body
    r.size2 = rx.size
    return r
