# RFC 7252 message codec. Parsing is zero-copy: a decoded Message keeps a memoryview of the datagram and
# indexes its options as (number, start, end) triples, as RIOT's nanocoap does; values are sliced on access.
# Built messages keep (number, value) pairs in insertion order; encode() sorts them stably, so repeated
# options keep their order.
from coap import MessageError

try:
    from micropython import const
except ImportError:
    const = lambda x: x

CON = const(0)
NON = const(1)
ACK = const(2)
RST = const(3)

EMPTY = const(0)
GET = const(1)
POST = const(2)
PUT = const(3)
DELETE = const(4)
FETCH = const(5)
CREATED = const(65)        # 2.01
DELETED = const(66)        # 2.02
VALID = const(67)          # 2.03
CHANGED = const(68)        # 2.04
CONTENT = const(69)        # 2.05
CONTINUE = const(95)       # 2.31
BAD_REQUEST = const(128)   # 4.00
BAD_OPTION = const(130)    # 4.02
NOT_FOUND = const(132)     # 4.04
NOT_ALLOWED = const(133)   # 4.05
NOT_ACCEPTABLE = const(134)  # 4.06
INCOMPLETE = const(136)    # 4.08
PRECONDITION_FAILED = const(140)  # 4.12
TOO_LARGE = const(141)     # 4.13
UNSUPPORTED_FORMAT = const(143)   # 4.15
SERVER_ERROR = const(160)  # 5.00
SERVICE_UNAVAILABLE = const(163)  # 5.03

IF_MATCH = const(1)
URI_HOST = const(3)
ETAG = const(4)
IF_NONE_MATCH = const(5)
OBSERVE = const(6)
URI_PORT = const(7)
LOCATION_PATH = const(8)
URI_PATH = const(11)
CONTENT_FORMAT = const(12)
MAX_AGE = const(14)
URI_QUERY = const(15)
ACCEPT = const(17)
LOCATION_QUERY = const(20)
BLOCK2 = const(23)
BLOCK1 = const(27)
SIZE2 = const(28)
PROXY_URI = const(35)
PROXY_SCHEME = const(39)
SIZE1 = const(60)
NO_RESPONSE = const(258)

# Options this stack understands; an unknown critical (odd-numbered) option in a request gets 4.02.
KNOWN = (IF_MATCH, URI_HOST, ETAG, IF_NONE_MATCH, OBSERVE, URI_PORT, LOCATION_PATH, URI_PATH, CONTENT_FORMAT,
         MAX_AGE, URI_QUERY, ACCEPT, LOCATION_QUERY, BLOCK2, BLOCK1, SIZE2, SIZE1, NO_RESPONSE)


def code_str(code):
    return "%d.%02d" % (code >> 5, code & 31)


def uint_bytes(n):
    if n < 0:
        raise ValueError("negative uint")
    if n < 0x100:
        return bytes((n,)) if n else b""
    return n.to_bytes(2 if n < 0x10000 else 3 if n < 0x1000000 else 4, "big")


def _ext(out, n):
    # Extended delta/length: returns the nibble and appends the extension bytes.
    if n < 13:
        return n
    if n < 269:
        out.append(n - 13)
        return 13
    n -= 269
    out.append(n >> 8)
    out.append(n & 255)
    return 14


class Message:
    def __init__(self, mtype=CON, code=GET, mid=0, token=b"", payload=b""):
        self.type = mtype
        self.code = code
        self.mid = mid
        self.token = token
        self.payload = payload
        self.opts = []
        self.buf = None  # set on decoded messages: then opts is the flat [num, start, end, ...] index
        self.remote = None

    def add(self, num, value):
        if self.buf is not None:
            self._own()
        self.opts.append((num, value))
        return self

    def _own(self):
        # Turn a decoded message into a built one (for editing); values stay views of the buffer.
        self.opts = list(self.items())
        self.buf = None

    def remove(self, num):
        if self.buf is not None:
            self._own()
        self.opts = [o for o in self.opts if o[0] != num]

    def items(self):
        b = self.buf
        o = self.opts
        if b is None:
            for n, v in o:
                yield n, _val(v)
        else:
            for i in range(0, len(o), 3):
                yield o[i], b[o[i + 1]:o[i + 2]]

    def opt(self, num, default=None):
        o = self.opts
        b = self.buf
        if b is None:
            for n, v in o:
                if n == num:
                    return _val(v)
        else:
            for i in range(0, len(o), 3):
                n = o[i]
                if n == num:
                    return b[o[i + 1]:o[i + 2]]
                if n > num:
                    break
        return default

    def all(self, num):
        return [v for n, v in self.items() if n == num]

    def has(self, num):
        return self.opt(num) is not None

    def uint(self, num, default=None):
        v = self.opt(num)
        if v is None:
            return default
        if len(v) > 4:
            raise MessageError("uint option too long")
        return int.from_bytes(v, "big")

    def path(self):
        return "/" + "/".join(str(bytes(v), "utf-8") for v in self.all(URI_PATH))

    def query(self):
        return [str(bytes(v), "utf-8") for v in self.all(URI_QUERY)]

    def set_path(self, path):
        for seg in path.split("/"):
            if seg:
                self.add(URI_PATH, seg)
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
            self._own()
        opts = self.opts
        last = 0
        for n, _ in opts:
            if n < last:
                opts = _stable_sort(opts)
                break
            last = n
        last = 0
        for n, v in opts:
            t = type(v)
            if t is int:
                v = uint_bytes(v)
            elif t is str:
                v = v.encode()
            d = n - last
            last = n
            ln = len(v)
            if d < 13 and ln < 13:
                out.append((d << 4) | ln)
            else:
                i = len(out)
                out.append(0)
                hi = _ext(out, d)
                out[i] = (hi << 4) | _ext(out, ln)
            out += v
        p = self.payload
        if p:
            if type(p) is str:
                p = p.encode()
            out.append(0xFF)
            out += p
        return out

    def __repr__(self):
        return "<Message %s %s mid=%d token=%s %s payload=%d>" % (
            "CNAR"[self.type], code_str(self.code), self.mid, bytes(self.token).hex(),
            [(n, bytes(v)) for n, v in self.items()], len(self.payload))


def _val(v):
    t = type(v)
    if t is int:
        return uint_bytes(v)
    if t is str:
        return v.encode()
    return v


def _stable_sort(opts):
    # list.sort is not stable on MicroPython: sort by (number, position).
    idx = [(opts[i][0], i) for i in range(len(opts))]
    idx.sort()
    return [opts[i] for _, i in idx]


def _err(msg, mtype, mid):
    e = MessageError(msg)
    e.type = mtype
    e.mid = mid
    return e


def decode(buf):
    """Parse a datagram. Raises MessageError; when the 4-byte header was readable the error carries
    .type and .mid (so a server can RST a malformed CON), else they are None."""
    mv = memoryview(buf)
    n = len(mv)
    if n < 4:
        raise _err("short header", None, None)
    b = mv[0]
    if b >> 6 != 1:
        raise _err("bad version", None, None)
    mtype = (b >> 4) & 3
    mid = (mv[2] << 8) | mv[3]
    tkl = b & 15
    code = mv[1]
    if tkl > 8:
        raise _err("bad token length", mtype, mid)
    if code == 0 and n != 4:
        raise _err("empty message with content", mtype, mid)
    if (code >> 5) in (1, 6, 7):
        raise _err("reserved code class", mtype, mid)
    p = 4 + tkl
    if p > n:
        raise _err("truncated token", mtype, mid)
    m = Message(mtype, code, mid, bytes(mv[4:p]), b"")
    m.buf = mv
    opts = m.opts
    num = 0
    try:
        while p < n:
            b = mv[p]
            p += 1
            if b == 0xFF:
                if p == n:
                    raise _err("payload marker without payload", mtype, mid)
                m.payload = mv[p:]
                break
            d = b >> 4
            ln = b & 15
            if d >= 13:
                if d == 13:
                    d = mv[p] + 13
                    p += 1
                elif d == 14:
                    d = ((mv[p] << 8) | mv[p + 1]) + 269
                    p += 2
                else:
                    raise _err("reserved option delta 15", mtype, mid)
            if ln >= 13:
                if ln == 13:
                    ln = mv[p] + 13
                    p += 1
                elif ln == 14:
                    ln = ((mv[p] << 8) | mv[p + 1]) + 269
                    p += 2
                else:
                    raise _err("reserved option length 15", mtype, mid)
            num += d
            e = p + ln
            if e > n:
                raise _err("option value past end", mtype, mid)
            if num > 0xFFFF:
                raise _err("option number too large", mtype, mid)
            opts.append(num)
            opts.append(p)
            opts.append(e)
            p = e
    except IndexError:
        raise _err("truncated option header", mtype, mid)
    return m


def unknown_critical(msg):
    """The first unrecognised critical option number in msg, or None."""
    for n, _ in msg.items():
        if n & 1 and n not in KNOWN:
            return n
    return None
