# CBOR (RFC 8949) for MicroPython and CPython.
#
#   dumps(obj, canonical=False) -> bytes       loads(data, ...) -> obj
#   Decoder(data): incremental reads over a memoryview without copying (SUIT/COSE walk envelopes with it).
#
# Every malformed input raises CBORDecodeError (a ValueError): lengths are checked against the data before
# anything is allocated, and nesting is limited, so hostile bytes cannot exhaust the heap or the C stack.
import struct

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

_MAJOR_UINT = const(0)
_MAJOR_NEGINT = const(1)
_MAJOR_BYTES = const(2)
_MAJOR_TEXT = const(3)
_MAJOR_ARRAY = const(4)
_MAJOR_MAP = const(5)
_MAJOR_TAG = const(6)
_MAJOR_SIMPLE = const(7)
_AI_INDEFINITE = const(31)
_BREAK = const(0xFF)
_TAG_POS_BIGNUM = const(2)
_TAG_NEG_BIGNUM = const(3)
_UINT64_LIMIT = const(0x10000000000000000)
_FLOAT32_MAX = 3.4028234663852886e38

DEFAULT_MAX_DEPTH = const(16)


class CBORError(ValueError):
    pass


class CBORDecodeError(CBORError):
    pass


class CBOREncodeError(CBORError):
    pass


class Tag:
    """A tagged item. Tags the decoder does not interpret stay as Tag objects, so they round-trip."""

    def __init__(self, tag, value):
        if not isinstance(tag, int) or tag < 0 or tag >= _UINT64_LIMIT:
            raise CBOREncodeError("tag number out of range")
        self.tag = tag
        self.value = value

    def __eq__(self, other):
        return isinstance(other, Tag) and self.tag == other.tag and self.value == other.value

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash((self.tag, repr(self.value)))

    def __repr__(self):
        return "Tag(%d, %r)" % (self.tag, self.value)


class Simple:
    """A simple value other than false/true/null/undefined (0..19, 32..255)."""

    def __init__(self, value):
        if not (0 <= value <= 19 or 32 <= value <= 255):
            raise CBOREncodeError("simple value %d is reserved or has its own name" % value)
        self.value = value

    def __eq__(self, other):
        return isinstance(other, Simple) and self.value == other.value

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash(("simple", self.value))

    def __repr__(self):
        return "Simple(%d)" % self.value


class _Undefined:
    def __repr__(self):
        return "undefined"

    def __bool__(self):
        return False


undefined = _Undefined()


# ---------------------------------------------------------------------------------------------- encoding

def _write_head(out, major, n):
    mt = major << 5
    if n < 24:
        out.append(mt | n)
    elif n < 0x100:
        out.append(mt | 24)
        out.append(n)
    elif n < 0x10000:
        out.append(mt | 25)
        out.extend(n.to_bytes(2, "big"))
    elif n < 0x100000000:
        out.append(mt | 26)
        out.extend(n.to_bytes(4, "big"))
    else:
        out.append(mt | 27)
        out.extend(n.to_bytes(8, "big"))


def _float16_bits(f32_bits):
    """The float16 encoding of a float32 value if it is exact there, else None."""
    sign = (f32_bits >> 16) & 0x8000
    exp = (f32_bits >> 23) & 0xFF
    mant = f32_bits & 0x7FFFFF
    if exp == 0:
        return sign if mant == 0 else None  # float32 subnormals are far below float16's range
    e = exp - 127
    if -14 <= e <= 15:
        if mant & 0x1FFF:
            return None
        return sign | ((e + 15) << 10) | (mant >> 13)
    if -24 <= e < -14:  # float16 subnormal: value = m * 2**-24
        full = 0x800000 | mant
        shift = -e - 1
        if full & ((1 << shift) - 1):
            return None
        return sign | (full >> shift)
    return None


def _write_float(out, f):
    # Preferred serialization (RFC 8949 §4.1): the shortest of float16/32/64 that keeps the value.
    if f != f:
        out.extend(b"\xf9\x7e\x00")
        return
    if f == _INF:
        out.extend(b"\xf9\x7c\x00")
        return
    if f == -_INF:
        out.extend(b"\xf9\xfc\x00")
        return
    if -_FLOAT32_MAX <= f <= _FLOAT32_MAX:
        b32 = struct.pack(">f", f)
        if struct.unpack(">f", b32)[0] == f:
            half = _float16_bits(int.from_bytes(b32, "big"))
            if half is not None:
                out.append(0xF9)
                out.extend(half.to_bytes(2, "big"))
            else:
                out.append(0xFA)
                out.extend(b32)
            return
    out.append(0xFB)
    out.extend(struct.pack(">d", f))


_INF = float("inf")


class _Encoder:
    def __init__(self, canonical, max_depth):
        self.canonical = canonical
        self.max_depth = max_depth

    def encode(self, out, obj, depth):
        t = type(obj)
        if t is int:
            if obj >= 0:
                if obj < _UINT64_LIMIT:
                    _write_head(out, _MAJOR_UINT, obj)
                else:
                    self._bignum(out, _TAG_POS_BIGNUM, obj)
            else:
                n = -1 - obj
                if n < _UINT64_LIMIT:
                    _write_head(out, _MAJOR_NEGINT, n)
                else:
                    self._bignum(out, _TAG_NEG_BIGNUM, n)
        elif t is str:
            b = obj.encode("utf-8")
            _write_head(out, _MAJOR_TEXT, len(b))
            out.extend(b)
        elif t is bytes or t is bytearray or t is memoryview:
            _write_head(out, _MAJOR_BYTES, len(obj))
            out.extend(obj)
        elif t is bool:
            out.append(0xF5 if obj else 0xF4)
        elif obj is None:
            out.append(0xF6)
        elif t is list or t is tuple:
            if depth >= self.max_depth:
                raise CBOREncodeError("nesting deeper than %d" % self.max_depth)
            _write_head(out, _MAJOR_ARRAY, len(obj))
            for item in obj:
                self.encode(out, item, depth + 1)
        elif t is dict:
            if depth >= self.max_depth:
                raise CBOREncodeError("nesting deeper than %d" % self.max_depth)
            _write_head(out, _MAJOR_MAP, len(obj))
            if self.canonical:
                self._sorted_map(out, obj, depth)
            else:
                for k in obj:
                    self.encode(out, k, depth + 1)
                    self.encode(out, obj[k], depth + 1)
        elif t is float:
            _write_float(out, obj)
        elif t is Tag:
            if depth >= self.max_depth:
                raise CBOREncodeError("nesting deeper than %d" % self.max_depth)
            _write_head(out, _MAJOR_TAG, obj.tag)
            self.encode(out, obj.value, depth + 1)
        elif obj is undefined:
            out.append(0xF7)
        elif t is Simple:
            if obj.value < 24:
                out.append(0xE0 | obj.value)
            else:
                out.append(0xF8)
                out.append(obj.value)
        else:
            raise CBOREncodeError("cannot encode %s" % t.__name__)

    def _bignum(self, out, tag, n):
        _write_head(out, _MAJOR_TAG, tag)
        # MicroPython ints have no bit_length(): size the big-endian form from the hex digits.
        b = n.to_bytes((len("%x" % n) + 1) // 2, "big")
        _write_head(out, _MAJOR_BYTES, len(b))
        out.extend(b)

    def _sorted_map(self, out, obj, depth):
        # Core deterministic encoding (RFC 8949 §4.2.1): keys sorted bytewise by their own encodings.
        pairs = []
        for k in obj:
            kb = bytearray()
            self.encode(kb, k, depth + 1)
            pairs.append((bytes(kb), k))
        pairs.sort(key=lambda p: p[0])
        prev = None
        for kb, k in pairs:
            if kb == prev:
                raise CBOREncodeError("duplicate map key in deterministic encoding")
            prev = kb
            out.extend(kb)
            self.encode(out, obj[k], depth + 1)


def dumps(obj, canonical=False, max_depth=DEFAULT_MAX_DEPTH):
    """Encode obj. Integers, lengths and floats always use preferred serialization; canonical=True also
    sorts map keys as RFC 8949 §4.2.1 core deterministic encoding requires (COSE and SUIT need this)."""
    out = bytearray()
    _Encoder(canonical, max_depth).encode(out, obj, 0)
    return bytes(out)


def dump_into(out, obj, canonical=False, max_depth=DEFAULT_MAX_DEPTH):
    """Append obj's encoding to a caller's bytearray (no intermediate copy)."""
    _Encoder(canonical, max_depth).encode(out, obj, 0)
    return out


# ---------------------------------------------------------------------------------------------- decoding

def _half_to_float(h):
    exp = (h >> 10) & 0x1F
    mant = h & 0x3FF
    if exp == 0:
        val = mant * 5.960464477539063e-08  # 2**-24
    elif exp == 31:
        val = _INF if mant == 0 else float("nan")
    else:
        val = (mant + 1024) * (2.0 ** (exp - 25))
    return -val if h & 0x8000 else val


class Decoder:
    """Incremental decoder over a buffer. Reads return memoryview slices for byte strings, so large
    payloads are never copied; `raw()` gives the exact encoded bytes of the next item (for digests)."""

    def __init__(self, data, max_depth=DEFAULT_MAX_DEPTH, text_keys=False):
        self.buf = memoryview(data)
        self.pos = 0
        self.end = len(self.buf)
        self.max_depth = max_depth
        self.text_keys = text_keys
        self.ai = 0  # additional info and argument of the last head read (see _head)
        self.arg = 0

    def at_end(self):
        return self.pos >= self.end

    def remaining(self):
        return self.end - self.pos

    def _need(self, n):
        if n > self.end - self.pos:
            raise CBORDecodeError("truncated: need %d bytes at offset %d, have %d" % (n, self.pos, self.end - self.pos))

    def _byte(self):
        if self.pos >= self.end:
            raise CBORDecodeError("truncated at offset %d" % self.pos)
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def _head(self):
        """Read an initial byte and its argument. Returns the major type and leaves the additional info in
        self.ai and the argument in self.arg (None for indefinite length): no tuple per item."""
        ib = self._byte()
        major = ib >> 5
        ai = ib & 0x1F
        self.ai = ai
        if ai < 24:
            self.arg = ai
            return major
        if ai < 28:
            size = 1 << (ai - 24)
            self._need(size)
            p = self.pos
            self.pos = p + size
            if size == 1:
                arg = self.buf[p]
                if major == _MAJOR_SIMPLE and arg < 32:
                    raise CBORDecodeError("simple value %d in two-byte form is not well-formed" % arg)
            else:
                arg = int.from_bytes(self.buf[p:p + size], "big")
            self.arg = arg
            return major
        if ai < 31:
            raise CBORDecodeError("reserved additional information %d at offset %d" % (ai, self.pos - 1))
        if major == _MAJOR_UINT or major == _MAJOR_NEGINT or major == _MAJOR_TAG:
            raise CBORDecodeError("indefinite length not allowed for major type %d" % major)
        self.arg = None
        return major

    def peek_major(self):
        if self.pos >= self.end:
            raise CBORDecodeError("truncated at offset %d" % self.pos)
        return self.buf[self.pos] >> 5

    def peek_break(self):
        return self.pos < self.end and self.buf[self.pos] == _BREAK

    def _expect(self, major):
        m = self._head()
        if m != major:
            raise CBORDecodeError("expected major type %d, got %d at offset %d" % (major, m, self.pos - 1))
        return self.arg

    def read_uint(self):
        return self._expect(_MAJOR_UINT)

    def read_int(self):
        m = self._head()
        if m == _MAJOR_UINT:
            return self.arg
        if m == _MAJOR_NEGINT:
            return -1 - self.arg
        raise CBORDecodeError("expected an integer at offset %d" % (self.pos - 1))

    def _string(self, major):
        # Definite strings: a memoryview into the buffer. Indefinite ones must be joined (a copy).
        m = self._head()
        if m != major:
            raise CBORDecodeError("expected major type %d, got %d at offset %d" % (major, m, self.pos - 1))
        return self._string_body(major, self.arg)

    def _string_body(self, major, n):
        if n is not None:
            self._need(n)
            p = self.pos
            self.pos = p + n
            return self.buf[p:p + n]
        chunks = bytearray()
        while True:
            if self.peek_break():
                self.pos += 1
                return memoryview(chunks)
            cm = self._head()
            cn = self.arg
            if cm != major or cn is None:
                raise CBORDecodeError("bad chunk in indefinite-length string at offset %d" % self.pos)
            self._need(cn)
            chunks.extend(self.buf[self.pos:self.pos + cn])
            self.pos += cn

    def read_bytes(self):
        """A byte string as a memoryview (no copy for definite lengths)."""
        return self._string(_MAJOR_BYTES)

    def read_text(self):
        return self._text(self._string(_MAJOR_TEXT))

    def _text(self, b):
        try:
            return str(b, "utf-8")
        except UnicodeError:
            raise CBORDecodeError("invalid UTF-8 in text string")

    def read_array_header(self):
        """Number of items, or None for an indefinite-length array (then read until peek_break())."""
        return self._expect(_MAJOR_ARRAY)

    def read_map_header(self):
        return self._expect(_MAJOR_MAP)

    def read_tag(self):
        return self._expect(_MAJOR_TAG)

    def read_break(self):
        if self._byte() != _BREAK:
            raise CBORDecodeError("expected break at offset %d" % (self.pos - 1))

    def raw(self):
        """The next item's exact encoding, as a memoryview, and move past it."""
        start = self.pos
        self.skip()
        return self.buf[start:self.pos]

    def skip(self):
        """Move past one item without building it."""
        self._skip(0)

    def _skip(self, depth):
        if depth > self.max_depth:
            raise CBORDecodeError("nesting deeper than %d" % self.max_depth)
        major = self._head()
        ai = self.ai
        arg = self.arg
        if major == _MAJOR_BYTES or major == _MAJOR_TEXT:
            if arg is None:
                while not self.peek_break():
                    cm = self._head()
                    cn = self.arg
                    if cm != major or cn is None:
                        raise CBORDecodeError("bad chunk in indefinite-length string")
                    self._need(cn)
                    self.pos += cn
                self.pos += 1
            else:
                self._need(arg)
                self.pos += arg
        elif major == _MAJOR_ARRAY or major == _MAJOR_MAP:
            per = 1 if major == _MAJOR_ARRAY else 2
            if arg is None:
                while not self.peek_break():
                    for _ in range(per):
                        self._skip(depth + 1)
                self._need(1)
                self.pos += 1
            else:
                self._need(arg * per)  # each item takes at least one byte
                for _ in range(arg * per):
                    self._skip(depth + 1)
        elif major == _MAJOR_TAG:
            self._skip(depth + 1)
        elif major == _MAJOR_SIMPLE and ai == _AI_INDEFINITE:
            raise CBORDecodeError("unexpected break at offset %d" % (self.pos - 1))

    def decode(self):
        """Decode the next item into Python objects."""
        return self._item(0)

    def _item(self, depth):
        if depth > self.max_depth:
            raise CBORDecodeError("nesting deeper than %d" % self.max_depth)
        major = self._head()
        arg = self.arg
        if major == _MAJOR_UINT:
            return arg
        if major == _MAJOR_NEGINT:
            return -1 - arg
        if major == _MAJOR_BYTES or major == _MAJOR_TEXT:
            body = self._string_body(major, arg)
            return self._text(body) if major == _MAJOR_TEXT else bytes(body)
        if major == _MAJOR_ARRAY:
            items = []
            if arg is None:
                while not self.peek_break():
                    items.append(self._item(depth + 1))
                self.read_break()
            else:
                self._need(arg)  # each item takes at least one byte: no huge lists from a tiny input
                for _ in range(arg):
                    items.append(self._item(depth + 1))
            return items
        if major == _MAJOR_MAP:
            result = {}
            if arg is None:
                while not self.peek_break():
                    self._map_entry(result, depth)
                self.read_break()
            else:
                self._need(arg * 2)
                for _ in range(arg):
                    self._map_entry(result, depth)
            return result
        if major == _MAJOR_TAG:
            value = self._item(depth + 1)
            if arg == _TAG_POS_BIGNUM or arg == _TAG_NEG_BIGNUM:
                if type(value) is not bytes:
                    raise CBORDecodeError("bignum tag on a non-byte-string")
                n = int.from_bytes(value, "big")
                return n if arg == _TAG_POS_BIGNUM else -1 - n
            return Tag(arg, value)
        # major 7: simple values and floats
        ai = self.ai
        if ai < 20:
            return Simple(ai)
        if ai == 20:
            return False
        if ai == 21:
            return True
        if ai == 22:
            return None
        if ai == 23:
            return undefined
        if ai == 24:
            return Simple(arg)
        if ai == 25:
            return _half_to_float(arg)
        if ai == 26:
            return struct.unpack(">f", arg.to_bytes(4, "big"))[0]
        if ai == 27:
            return struct.unpack(">d", arg.to_bytes(8, "big"))[0]
        raise CBORDecodeError("unexpected break at offset %d" % (self.pos - 1))

    def _map_entry(self, result, depth):
        if self.text_keys and self.peek_major() != _MAJOR_TEXT:
            raise CBORDecodeError("map key is not a text string at offset %d" % self.pos)
        key = self._item(depth + 1)
        if type(key) is list:
            key = tuple(key)  # arrays are valid keys; make them hashable
        elif type(key) is dict:
            raise CBORDecodeError("map as map key is not supported")
        try:
            result[key] = self._item(depth + 1)
        except TypeError:
            raise CBORDecodeError("unhashable map key")


def loads(data, max_depth=DEFAULT_MAX_DEPTH, text_keys=False):
    """Decode exactly one item; trailing bytes are an error. text_keys=True requires text map keys."""
    dec = Decoder(data, max_depth, text_keys)
    obj = dec._item(0)
    if dec.pos != dec.end:
        raise CBORDecodeError("%d trailing bytes after the item" % (dec.end - dec.pos))
    return obj
