# The parts of cbor a device rarely needs, imported on first use: floats (preferred serialization), bignums,
# simple values and undefined, indefinite-length strings, deterministic map ordering (RFC 8949 §4.2.1), and the
# texts of cbor's errors. Import cbor, not this module.
import struct

import cbor
from cbor import CBORDecodeError, CBOREncodeError

_INF = float("inf")
_FLOAT32_MAX = 3.4028234663852886e38

# error number -> text; "%s" takes the offset (or the value) the error carries
TEXTS = {
    1: "truncated at offset %s",
    2: "simple value below 32 in two-byte form at offset %s is not well-formed",
    3: "reserved additional information (or indefinite length for an int or a tag) at offset %s",
    4: "unexpected major type at offset %s",
    5: "invalid UTF-8 in text string before offset %s",
    6: "expected break at offset %s",
    7: "unexpected break at offset %s",
    8: "nesting deeper than the limit (at offset %s)",
    9: "more than max_items=%s items",
    10: "out of memory decoding the item (at offset %s)",
    11: "map key is not a text string at offset %s",
    12: "map as map key is not supported (at offset %s)",
    13: "duplicate map key %r",
    14: "unhashable map key (at offset %s)",
    15: "%s trailing bytes after the item",
    16: "bad chunk in indefinite-length string at offset %s",
    17: "bignum tag on a non-byte-string",
    18: "tag number %r out of range",
    19: "simple value %r is reserved or has its own name",
    20: "cannot encode %s",
    21: "duplicate map key in deterministic encoding",
}


def describe(args):
    if not args:
        return ""
    text = TEXTS.get(args[0])
    if text is None:
        return " ".join(str(a) for a in args)
    if "%" not in text:
        return text
    return text % (args[1] if len(args) > 1 else "?",)


class Simple:
    """A simple value other than false/true/null/undefined (0..19, 32..255)."""

    def __init__(self, value):
        if not (0 <= value <= 19 or 32 <= value <= 255):
            raise CBOREncodeError(19, value)  # simple value %r is reserved or has its own name
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


def encode_other(out, obj, left, canonical):
    """What cbor._encode leaves to this module: bignums, canonical maps, floats, Simple and undefined;
    CBOREncodeError for anything else."""
    t = type(obj)
    if t is int:
        if obj < 0:
            _bignum(out, 1, -1 - obj)
        else:
            _bignum(out, 0, obj)
    elif t is dict:
        _sorted_map(out, obj, left)
    elif t is float:
        _write_float(out, obj)
    elif obj is undefined:
        out.append(0xF7)
    elif t is Simple:
        if obj.value < 24:
            out.append(0xE0 | obj.value)
        else:
            out.append(0xF8)
            out.append(obj.value)
    else:
        raise CBOREncodeError(20, t.__name__)  # cannot encode %s


def _bignum(out, major, n):
    """Tag 2 (major 0) or 3 (major 1) around the big-endian bytes of n >= 2**64."""
    cbor._head(out, 6, 2 + major)
    # MicroPython ints have no bit_length(): size the big-endian form from the hex digits.
    b = n.to_bytes((len("%x" % n) + 1) // 2, "big")
    cbor._head(out, 2, len(b))
    out.extend(b)


def _sorted_map(out, obj, left):
    # Core deterministic encoding (RFC 8949 §4.2.1): keys sorted bytewise by their own encodings.
    pairs = []
    for k in obj:
        kb = bytearray()
        cbor._encode(kb, k, left, True)
        pairs.append((bytes(kb), k))
    pairs.sort(key=lambda p: p[0])
    cbor._head(out, 5, len(obj))
    prev = None
    for kb, k in pairs:
        if kb == prev:
            raise CBOREncodeError(21)  # duplicate map key in deterministic encoding
        prev = kb
        out.extend(kb)
        cbor._encode(out, obj[k], left, True)


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


def decode_other(dec, major, arg, extra):
    """What cbor's decoder leaves to this module: an indefinite-length string (major 2/3; the chunks joined),
    a bignum (major 6, arg 2/3; extra is the tagged value), major 7 other than false/true/null (extra is the
    additional info)."""
    if major == 6:
        return _bignum_value(arg, extra)
    if major == 7:
        return _simple_or_float(dec, extra, arg)
    return chunks(dec, major, True)


def _simple_or_float(dec, ai, arg):
    if ai < 20:
        return Simple(ai)
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
    raise CBORDecodeError(7, dec.pos - 1)  # unexpected break at offset %s


def _bignum_value(tag, value):
    if type(value) is not bytes:
        raise CBORDecodeError(17)  # bignum tag on a non-byte-string
    n = int.from_bytes(value, "big")
    return n if tag == 2 else -1 - n


def chunks(dec, major, keep):
    """The chunks of an indefinite-length string after its head, joined (keep) or just skipped."""
    out = bytearray() if keep else None
    while True:
        if dec.peek_break():
            dec.pos += 1
            return memoryview(out) if keep else None
        cm = dec._head()
        cn = dec.arg
        if cm != major or cn is None:
            raise CBORDecodeError(16, dec.pos)  # bad chunk in indefinite-length string at offset %s
        dec._need(cn)
        if keep:
            out.extend(dec.buf[dec.pos:dec.pos + cn])
        dec.pos += cn
