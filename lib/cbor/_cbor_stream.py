# cbor.Decoder: the incremental reads over a buffer (SUIT walks envelopes with them), imported on first use of
# cbor.Decoder; loads() needs only the decoding core in cbor._Reader. Use cbor.Decoder, not this module.
from cbor import CBORDecodeError, _Reader

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


class Decoder(_Reader):
    """Incremental decoder over a buffer. Reads return memoryview slices for byte strings, so large
    payloads are never copied; `raw()` gives the exact encoded bytes of the next item (for digests).

    Decoder(data, max_depth=16, text_keys=False, max_items=512, unique_keys=False): decode() builds at most
    max_items items per call, and with unique_keys=True a map that repeats a key raises CBORDecodeError naming it
    (COSE header maps, COSE_Key and SUIT maps must reject those)."""

    def at_end(self):
        return self.pos >= self.end

    def remaining(self):
        return self.end - self.pos

    def peek_major(self):
        if self.pos >= self.end:
            raise CBORDecodeError(1, self.pos)  # truncated at offset %s
        return self.buf[self.pos] >> 5

    def _expect(self, major):
        if self._head() != major:
            raise CBORDecodeError(4, self.pos - 1)  # unexpected major type at offset %s
        return self.arg

    def read_uint(self):
        return self._expect(_MAJOR_UINT)

    def read_int(self):
        m = self._head()
        if m == _MAJOR_UINT:
            return self.arg
        if m == _MAJOR_NEGINT:
            return -1 - self.arg
        raise CBORDecodeError(4, self.pos - 1)  # unexpected major type at offset %s

    def read_bytes(self):
        """A byte string as a memoryview (no copy for definite lengths)."""
        return self._string(_MAJOR_BYTES, self._expect(_MAJOR_BYTES))

    def read_text(self):
        return self._text(self._string(_MAJOR_TEXT, self._expect(_MAJOR_TEXT)))

    def read_array_header(self):
        """Number of items, or None for an indefinite-length array (then read until peek_break())."""
        return self._expect(_MAJOR_ARRAY)

    def read_map_header(self):
        return self._expect(_MAJOR_MAP)

    def read_tag(self):
        return self._expect(_MAJOR_TAG)

    def read_break(self):
        if not self.peek_break():
            raise CBORDecodeError(6, self.pos)  # expected break at offset %s
        self.pos += 1

    def raw(self):
        """The next item's exact encoding, as a memoryview, and move past it."""
        start = self.pos
        self._skip(self.max_depth)
        return self.buf[start:self.pos]

    def skip(self):
        """Move past one item without building it."""
        self._skip(self.max_depth)

    def _skip(self, left):
        if left < 0:
            raise CBORDecodeError(8, self.pos)  # nesting deeper than the limit (at offset %s)
        major = self._head()
        arg = self.arg
        if major == _MAJOR_BYTES or major == _MAJOR_TEXT:
            if arg is None:
                from _cbor_ext import chunks
                chunks(self, major, False)
            else:
                self._need(arg)
                self.pos += arg
        elif major == _MAJOR_ARRAY or major == _MAJOR_MAP:
            per = 1 if major == _MAJOR_ARRAY else 2
            if arg is None:
                while not self.peek_break():
                    for _ in range(per):
                        self._skip(left - 1)
                self._need(1)
                self.pos += 1
            else:
                self._need(arg * per)  # each item takes at least one byte
                for _ in range(arg * per):
                    self._skip(left - 1)
        elif major == _MAJOR_TAG:
            self._skip(left - 1)
        elif major == _MAJOR_SIMPLE and self.ai == 31:
            raise CBORDecodeError(7, self.pos - 1)  # unexpected break at offset %s
