# RFC 7252 message codec. Parsing is zero-copy: a decoded Message keeps a memoryview of the datagram and
# indexes its options as flat (number, start, end) triples, as RIOT's nanocoap does; values are sliced on
# access. Built messages keep (number, value) pairs in insertion order; encode() sorts them stably, so
# repeated options keep their order. Numbers for types/codes/options: coap.defs.
from coap import MessageError

try:
    from micropython import const  # compile time on MicroPython: no code, no RAM
except ImportError:
    from coap import const

_CON = const(0)
_GET = const(1)
_URI_PATH = const(11)
_URI_QUERY = const(15)


def uint_bytes(n):
    if n < 0x100:
        if n < 0:
            raise ValueError("negative uint")
        return bytes((n,)) if n else b""
    return n.to_bytes(2 if n < 0x10000 else 3 if n < 0x1000000 else 4, "big")


class Message:
    # Defaults as class attributes, the constructor's: an instance stores only what differs (each stored
    # attribute can grow the instance's attribute table, which costs an allocation on every message).
    type = _CON
    code = _GET
    mid = 0
    token = b""
    payload = b""
    buf = None  # decoded messages: the datagram; opts is then the flat [num, start, end, ...] index
    opts = ()  # type: list  # (a decoded request without options, coap.serve's lean GET path, leaves it so)
    remote = None

    def __init__(self, mtype=_CON, code=_GET, mid=0, token=b"", payload=None):
        if mtype != _CON:
            self.type = mtype
        if code != _GET:
            self.code = code
        if mid:
            self.mid = mid
        if token:
            self.token = token
        if payload is not None:
            self.payload = payload
        self.opts = []

    def add(self, num, value):
        if self.buf is not None or type(self.opts) is tuple:  # editing a decoded message: (number, value) pairs
            self.opts = list(self.items())
            self.buf = None
        t = type(value)  # values are kept as bytes, so nothing converts them again on access or encode
        if t is int:
            value = uint_bytes(value)
        elif t is str:
            value = value.encode()
        self.opts.append((num, value))
        return self

    def items(self):
        b = self.buf
        o = self.opts
        if b is None:
            for x in o:
                yield x
        else:
            for i in range(0, len(o), 3):
                yield o[i], b[o[i + 1]:o[i + 2]]

    def opt(self, num, default=None):
        o = self.opts
        b = self.buf
        if b is None:
            for n, v in o:
                if n == num:
                    return v
        else:
            for i in range(0, len(o), 3):
                n = o[i]
                if n == num:
                    return b[o[i + 1]:o[i + 2]]
                if n > num:
                    break
        return default

    def all(self, num):
        out = []
        for n, v in self.items():
            if n == num:
                out.append(v)
        return out

    def has(self, num):
        return self.opt(num) is not None

    def uint(self, num, default=None):
        v = self.opt(num)
        if v is None:
            return default
        if len(v) > 4:
            raise MessageError("uint option too long")
        return int.from_bytes(v, "big")

    def strs(self, num):
        """Every `num` option as str (UTF-8), in order."""
        o = self.opts
        b = self.buf
        out = []
        if b is None:
            for n, v in o:
                if n == num:
                    out.append(str(v, "utf-8"))
        else:
            for i in range(0, len(o), 3):
                if o[i] == num:
                    out.append(str(b[o[i + 1]:o[i + 2]], "utf-8"))
        return out

    def path(self):
        return "/" + "/".join(self.strs(_URI_PATH))

    def query(self):
        return self.strs(_URI_QUERY)

    def set_path(self, path):
        path, _, q = path.partition("?")
        for seg in path.split("/"):
            if seg:
                self.opts.append((_URI_PATH, seg.encode()))
        if q:
            for seg in q.split("&"):
                self.opts.append((_URI_QUERY, seg.encode()))
        return self

    def encode(self):
        tok = self.token
        tkl = len(tok)
        if tkl > 8:
            raise ValueError("token too long")
        mid = self.mid
        out = bytearray(4)
        out[0] = 0x40 | (self.type << 4) | tkl
        out[1] = self.code
        out[2] = mid >> 8
        out[3] = mid & 255
        out += tok
        if self.buf is not None:
            self.opts = list(self.items())
            self.buf = None
        opts = self.opts
        last = 0
        for n, _ in opts:
            if n < last:
                # list.sort is not stable on MicroPython: an insertion sort keeps repeated options in order.
                opts = list(opts)
                for i in range(1, len(opts)):
                    x = opts[i]
                    j = i - 1
                    while j >= 0 and opts[j][0] > x[0]:
                        opts[j + 1] = opts[j]
                        j -= 1
                    opts[j + 1] = x
                break
            last = n
        last = 0
        for n, v in opts:
            d = n - last
            last = n
            ln = len(v)
            if d < 13 and ln < 13:
                out.append((d << 4) | ln)
            else:
                i = len(out)
                out.append(0)
                for x in (d, ln):  # extended delta, then extended length
                    if x < 13:
                        h = x
                    elif x < 269:
                        out.append(x - 13)
                        h = 13
                    else:
                        x -= 269
                        out.append(x >> 8)
                        out.append(x & 255)
                        h = 14
                    out[i] = (out[i] << 4) | h
            out += v
        p = self.payload
        if p:
            if type(p) is str:
                p = p.encode()
            out.append(0xFF)
            out += p
        return out


def _err(n, mtype=None, mid=None):
    # The texts live in coap.errtext, loaded on the first malformed message: no RAM for them until then.
    from coap.errtext import DECODE
    e = MessageError(DECODE[n])
    e.type = mtype
    e.mid = mid
    return e


def decode(buf):
    """Parse a datagram. Raises MessageError; when the 4-byte header was readable the error carries
    .type and .mid (so a server can RST a malformed CON), else they are None."""
    mv = memoryview(buf)
    n = len(mv)
    if n < 4:
        raise _err(0)
    b = mv[0]
    if b >> 6 != 1:
        raise _err(1)
    mtype = (b >> 4) & 3
    mid = (mv[2] << 8) | mv[3]
    tkl = b & 15
    code = mv[1]
    p = 4 + tkl
    if tkl > 8:
        raise _err(2, mtype, mid)
    if code == 0 and n != 4:
        raise _err(3, mtype, mid)
    if (code >> 5) in (1, 6, 7):
        raise _err(4, mtype, mid)
    if p > n:
        raise _err(5, mtype, mid)
    m = object.__new__(Message)  # no __init__: the fields are set here
    m.type = mtype
    m.code = code
    m.mid = mid
    if tkl:
        m.token = buf[4:p] if type(buf) is bytes else bytes(mv[4:p])
    m.buf = mv
    m.opts = opts = []
    num = 0
    try:
        while p < n:
            b = mv[p]
            p += 1
            if b == 0xFF:
                if p == n:
                    raise _err(6, mtype, mid)
                m.payload = mv[p:]
                break
            d = b >> 4
            ln = b & 15
            if d > 12:
                if d == 13:
                    d = mv[p] + 13
                    p += 1
                elif d == 14:
                    d = ((mv[p] << 8) | mv[p + 1]) + 269
                    p += 2
                else:
                    raise _err(7, mtype, mid)
            if ln > 12:
                if ln == 13:
                    ln = mv[p] + 13
                    p += 1
                elif ln == 14:
                    ln = ((mv[p] << 8) | mv[p + 1]) + 269
                    p += 2
                else:
                    raise _err(8, mtype, mid)
            num += d
            e = p + ln
            if e > n:
                raise _err(9, mtype, mid)
            if num > 0xFFFF:
                raise _err(10, mtype, mid)
            opts.append(num)
            opts.append(p)
            opts.append(e)
            p = e
    except IndexError:
        raise _err(11, mtype, mid)
    return m
