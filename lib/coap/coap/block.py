# Block-wise transfers (RFC 7959), sans-IO: option values and the checks both roles make per block.
from coap import CoapError


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


def szx_for(max_message_size, overhead=128):
    """Largest block size exponent whose block (plus header/options room) fits the transport."""
    s = 6
    while s and (16 << s) + overhead > max_message_size:
        s -= 1
    return s


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


class Assembler:
    """Server side of a Block1 upload: accepts blocks in order into a bounded buffer (or a sink)."""

    def __init__(self, limit, sink=None, size=None):
        self.limit = limit
        self.sink = sink
        # With Size1 known the body buffer is allocated once (no regrowth fragmenting a small heap).
        self.buf = None if sink else bytearray(size) if size and size <= limit else bytearray()
        self.offset = 0

    def feed(self, num, more, szx, data):
        """Returns True when the last block arrived. Raises BlockError for a gap (4.08) and OverflowError
        past the limit (4.13)."""
        off = num << (szx + 4)
        if off != self.offset:
            raise BlockError("block1 at %d, expected %d" % (off, self.offset))
        if more and len(data) != 16 << szx:
            raise BlockError("short block1 before the last")
        end = off + len(data)
        if end > self.limit:
            raise OverflowError("body over %d bytes" % self.limit)
        if self.sink is None:
            b = self.buf
            if end <= len(b):
                b[off:end] = data
                if not more and end < len(b):
                    self.buf = b[:end]  # shorter than Size1 announced
            else:
                b[off:] = data
        else:
            self.sink(off, data)
        self.offset = end
        return not more
