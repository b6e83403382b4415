# CBOR (RFC 8949) for MicroPython and CPython.
#
#   dumps(obj, canonical=False) -> bytes       loads(data, ...) -> obj
#   Decoder(data): incremental reads over a memoryview without copying (SUIT walks envelopes with it).
#
# Every malformed input raises CBORDecodeError (a ValueError): lengths are checked against the data and against
# an item budget before anything is allocated, nesting is limited, and a MemoryError inside the decoder becomes
# a CBORDecodeError, so hostile bytes cannot exhaust the heap or the C stack.
#
# This module is what a device keeps loaded. What it rarely needs (floats, bignums, simple values and undefined,
# indefinite-length strings, deterministic map ordering, error texts) is in _cbor_ext, the incremental reads of
# Decoder in _cbor_stream, both imported on first use.
# Errors carry a small error number and their offset or value (e.g. CBORDecodeError(1, 17): truncated at offset
# 17); str(e) gives the full text (from _cbor_ext). A number is no interned name on the heap.
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
_BREAK = const(0xFF)

DEFAULT_MAX_DEPTH = const(16)
# Items one decode may build (every array element, map key and value, tag and scalar counts one). A SUIT
# manifest or an EAP-NOOB/CoAP-EAP message has tens; an empty array costs ~64 bytes of heap on the 64-bit VM,
# so the worst input the default lets through needs ~32 KB there (~16 KB on a board).
DEFAULT_MAX_ITEMS = const(512)


class CBORDecodeError(ValueError):
    def __str__(self):
        from _cbor_ext import describe
        return describe(self.args)


class CBOREncodeError(ValueError):
    __str__ = CBORDecodeError.__str__  # the same texts (a shared base class would cost a class object)


class Tag:
    """A tagged item. Tags the decoder does not interpret stay as Tag objects, so they round-trip."""

    def __init__(self, tag, value):
        if type(tag) is not int or tag < 0 or tag >> 64:
            raise CBOREncodeError(18, tag)  # tag number %r out of range
        self.tag = tag
        self.value = value

    def __eq__(self, other):
        return type(other) is Tag and self.tag == other.tag and self.value == other.value

    def __hash__(self):
        return hash((self.tag, repr(self.value)))

    def __repr__(self):
        return "Tag(%d, %r)" % (self.tag, self.value)


def __getattr__(name):
    # Simple and undefined live in _cbor_ext with the code that encodes and decodes them, Decoder's incremental
    # reads in _cbor_stream.
    if name == "Simple" or name == "undefined":
        import _cbor_ext
        return getattr(_cbor_ext, name)
    if name == "Decoder":
        from _cbor_stream import Decoder
        return Decoder
    raise AttributeError(name)


# ---------------------------------------------------------------------------------------------- encoding

def _head(out, major, n):
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


def _encode(out, obj, left, canonical):
    """Append obj's preferred serialization; left is the nesting depth still allowed."""
    t = type(obj)
    if t is int:
        n = obj if obj >= 0 else -1 - obj
        if n >> 64:  # a bignum
            from _cbor_ext import encode_other
            encode_other(out, obj, left, canonical)
        else:
            _head(out, _MAJOR_NEGINT if obj < 0 else _MAJOR_UINT, n)
    elif t is str:
        b = obj.encode()
        _head(out, _MAJOR_TEXT, len(b))
        out.extend(b)
    elif t is bytes or t is bytearray or t is memoryview:
        _head(out, _MAJOR_BYTES, len(obj))
        out.extend(obj)
    elif obj is None:
        out.append(0xF6)
    elif t is bool:
        out.append(0xF5 if obj else 0xF4)
    elif t is list or t is tuple or t is dict or t is Tag:
        if left <= 0:
            raise CBOREncodeError(8)  # nesting deeper than the limit (at offset %s)
        left -= 1
        if t is dict:
            if canonical:
                from _cbor_ext import encode_other
                encode_other(out, obj, left, True)
                return
            _head(out, _MAJOR_MAP, len(obj))
            for k in obj:
                _encode(out, k, left, False)
                _encode(out, obj[k], left, False)
        elif t is Tag:
            _head(out, _MAJOR_TAG, obj.tag)
            _encode(out, obj.value, left, canonical)
        else:
            _head(out, _MAJOR_ARRAY, len(obj))
            for item in obj:
                _encode(out, item, left, canonical)
    else:  # float, Simple, undefined, or something CBOR cannot carry
        from _cbor_ext import encode_other
        encode_other(out, obj, left, canonical)


def dumps(obj, canonical=False, max_depth=DEFAULT_MAX_DEPTH):
    """Encode obj. Integers, lengths and floats always use preferred serialization; canonical=True also
    sorts map keys as RFC 8949 §4.2.1 core deterministic encoding requires (COSE and SUIT need this)."""
    out = bytearray()
    _encode(out, obj, max_depth, canonical)
    return bytes(out)


# ---------------------------------------------------------------------------------------------- decoding

class _Reader:
    """What loads() needs of the decoder; cbor.Decoder (in _cbor_stream, loaded on first use) adds the
    incremental reads. decode() builds at most max_items items per call, and with unique_keys=True a map that
    repeats a key raises CBORDecodeError naming it."""

    def __init__(self, data, max_depth=DEFAULT_MAX_DEPTH, text_keys=False, max_items=DEFAULT_MAX_ITEMS,
                 unique_keys=False):
        self.buf = memoryview(data)
        self.pos = 0
        self.end = len(self.buf)
        self.max_depth = max_depth
        self.text_keys = text_keys
        self.max_items = max_items
        self.unique_keys = unique_keys
        self.left = 0  # items the running decode() may still build
        self.ai = 0  # additional info and argument of the last head read (see _head)
        self.arg = 0

    def _need(self, n):
        if n > self.end - self.pos:
            raise CBORDecodeError(1, self.pos)  # truncated at offset %s

    def _head(self):
        """Read an initial byte and its argument. Returns the major type and leaves the additional info in
        self.ai and the argument in self.arg (None for indefinite length): no tuple per item."""
        p = self.pos
        if p >= self.end:
            raise CBORDecodeError(1, p)  # truncated at offset %s
        ib = self.buf[p]
        p += 1
        major = ib >> 5
        ai = ib & 0x1F
        self.ai = ai
        if ai < 24:
            self.pos = p
            self.arg = ai
            return major
        if ai < 28:
            size = 1 << (ai - 24)
            if p + size > self.end:
                raise CBORDecodeError(1, p)  # truncated at offset %s
            self.pos = p + size
            if size == 1:
                arg = self.buf[p]
                if major == _MAJOR_SIMPLE and arg < 32:
                    raise CBORDecodeError(2, p - 1)  # simple value below 32 in two-byte form at offset %s is not wel...
            else:
                arg = int.from_bytes(self.buf[p:p + size], "big")
            self.arg = arg
            return major
        if ai < 31 or major < _MAJOR_BYTES or major == _MAJOR_TAG:
            raise CBORDecodeError(3, p - 1)  # reserved additional information (or indefinite length for an int or a ...
        self.pos = p
        self.arg = None
        return major

    def peek_break(self):
        return self.pos < self.end and self.buf[self.pos] == _BREAK

    def _string(self, major, n):
        # Definite strings: a memoryview into the buffer. Indefinite ones must be joined (a copy).
        if n is None:
            from _cbor_ext import decode_other
            return decode_other(self, major, None, True)
        p = self.pos
        if n > self.end - p:
            raise CBORDecodeError(1, p)  # truncated at offset %s
        self.pos = p + n
        return self.buf[p:p + n]

    def _text(self, b):
        try:
            return str(b, "utf-8")
        except UnicodeError:
            raise CBORDecodeError(5, self.pos)  # invalid UTF-8 in text string before offset %s

    def decode(self):
        """Decode the next item into Python objects (at most max_items of them)."""
        self.left = self.max_items
        try:
            return self._item(self.max_depth)
        except MemoryError:  # the budget let it through, the heap did not: still the caller's bad input
            raise CBORDecodeError(10, self.pos)  # out of memory decoding the item (at offset %s)

    def _item(self, depth):
        if depth < 0:
            raise CBORDecodeError(8, self.pos)  # nesting deeper than the limit (at offset %s)
        self.left -= 1
        if self.left < 0:
            raise CBORDecodeError(9, self.max_items)  # more than max_items=%s items
        major = self._head()
        arg = self.arg
        if major == _MAJOR_UINT:
            return arg
        if major == _MAJOR_NEGINT:
            return -1 - arg
        if major == _MAJOR_BYTES:
            return bytes(self._string(major, arg))
        if major == _MAJOR_TEXT:
            return self._text(self._string(major, arg))
        if major == _MAJOR_ARRAY:
            if arg is None:
                items = []
                while not self.peek_break():
                    items.append(self._item(depth - 1))
                self.pos += 1
                return items
            # checked before the list is allocated: each item takes at least one byte and one budget unit
            if arg > self.left:
                raise CBORDecodeError(9, self.max_items)  # more than max_items=%s items
            self._need(arg)
            items = []
            for _ in range(arg):
                items.append(self._item(depth - 1))
            return items
        if major == _MAJOR_MAP:
            result = {}
            if arg is None:
                while not self.peek_break():
                    self._map_entry(result, depth)
                self.pos += 1
            else:
                if 2 * arg > self.left:
                    raise CBORDecodeError(9, self.max_items)  # more than max_items=%s items
                self._need(2 * arg)
                for _ in range(arg):
                    self._map_entry(result, depth)
            return result
        if major == _MAJOR_TAG:
            value = self._item(depth - 1)
            if arg == 2 or arg == 3:
                from _cbor_ext import decode_other
                return decode_other(self, major, arg, value)
            return Tag(arg, value)
        ai = self.ai  # major 7
        if ai == 20:
            return False
        if ai == 21:
            return True
        if ai == 22:
            return None
        from _cbor_ext import decode_other
        return decode_other(self, major, arg, ai)

    def _map_entry(self, result, depth):
        if self.text_keys and (self.pos >= self.end or self.buf[self.pos] >> 5 != _MAJOR_TEXT):
            raise CBORDecodeError(11, self.pos)  # map key is not a text string at offset %s
        key = self._item(depth - 1)
        if type(key) is list:
            key = tuple(key)  # arrays are valid keys; make them hashable
        elif type(key) is dict:
            raise CBORDecodeError(12, self.pos)  # map as map key is not supported (at offset %s)
        try:
            if self.unique_keys and key in result:
                raise CBORDecodeError(13, key)  # duplicate map key %r
            result[key] = self._item(depth - 1)
        except TypeError:
            raise CBORDecodeError(14, self.pos)  # unhashable map key (at offset %s)


def loads(data, max_depth=DEFAULT_MAX_DEPTH, text_keys=False, max_items=DEFAULT_MAX_ITEMS, unique_keys=False):
    """Decode exactly one item; trailing bytes are an error. text_keys=True requires text map keys,
    max_items bounds the items built, unique_keys=True rejects a map that repeats a key."""
    dec = _Reader(data, max_depth, text_keys, max_items, unique_keys)
    obj = dec.decode()
    if dec.pos != dec.end:
        raise CBORDecodeError(15, dec.end - dec.pos)  # %s trailing bytes after the item
    return obj
