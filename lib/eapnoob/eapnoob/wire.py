# EAP packet framing (RFC 3748 section 4), base64url without padding, and a strict JSON object reader that
# keeps every member's raw bytes: EAP-NOOB's Hoob and MACs cover ServerInfo, PeerInfo, PKs, ... exactly as
# received (RFC 9140 section 3.3.2), so values are never re-serialised, only sliced out of the message.
import binascii
import json

from eapnoob.errors import E_INVALID_DATA, E_MESSAGE_STRUCTURE, NoobError

REQUEST = 1
RESPONSE = 2
SUCCESS = 3
FAILURE = 4
TYPE_IDENTITY = 1
TYPE_NOTIFICATION = 2
TYPE_NAK = 3
TYPE_NOOB = 56

# The biggest EAP-NOOB message is a Type 2 request: ServerInfo (<= 500 bytes) plus a NewNAI (<= 253) and ~150
# bytes of fields. Anything longer is refused before it is parsed.
MAX_PACKET = 1280
MAX_DEPTH = 6
MAX_MEMBERS = 16
MAX_INFO = 500  # ServerInfo / PeerInfo / ErrorInfo bytes (RFC 9140 section 3.3.2)


class EapError(ValueError):
    """A malformed EAP packet (not an EAP-NOOB protocol error: such a packet is silently discarded)."""


def parse(pkt):
    """EAP packet -> (code, identifier, type or None, type-data memoryview). Bytes past Length are padding."""
    n = len(pkt)
    if n < 4:
        raise EapError("EAP packet shorter than its header")
    if n > MAX_PACKET:
        raise EapError("EAP packet too long")
    code = pkt[0]
    length = (pkt[2] << 8) | pkt[3]
    if length < 4 or length > n:
        raise EapError("EAP Length field out of range")
    if code == SUCCESS or code == FAILURE:
        return code, pkt[1], None, memoryview(b"")
    if code != REQUEST and code != RESPONSE:
        raise EapError("unknown EAP code")
    if length < 5:
        raise EapError("EAP request/response without a type")
    return code, pkt[1], pkt[4], memoryview(pkt)[5:length]


def build(code, ident, typ=None, data=b""):
    n = 4 if typ is None else 5 + len(data)
    if n > 0xFFFF:
        raise EapError("EAP packet too long")
    head = bytes((code, ident & 0xFF, n >> 8, n & 0xFF))
    return head if typ is None else head + bytes((typ,)) + data


# ---- base64url (RFC 4648 section 5), no padding -----------------------------------------------------------

_STD = b"+/"
_URL = b"-_"


def _swap(data, src, dst):
    b = bytearray(data)
    a0, a1 = src
    for i in range(len(b)):
        c = b[i]
        if c == a0:
            b[i] = dst[0]
        elif c == a1:
            b[i] = dst[1]
    return b


def b64e(raw):
    """bytes -> unpadded base64url bytes."""
    out = binascii.b2a_base64(raw).rstrip(b"=\n")
    return bytes(_swap(out, _STD, _URL))


_B64URL = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64d(text, size):
    """Unpadded base64url text (str or bytes) of exactly `size` decoded bytes -> bytes; NoobError 1003 otherwise.
    The encoding must be canonical (unused low bits zero), so each value has exactly one accepted spelling."""
    if isinstance(text, str):
        text = text.encode()
    if len(text) != (size * 4 + 2) // 3:
        raise NoobError(E_INVALID_DATA, "base64url value of the wrong length")
    for c in text:
        if c not in _B64URL:
            raise NoobError(E_INVALID_DATA, "not base64url")
    pad = b"=" * (-len(text) % 4)
    raw = binascii.a2b_base64(bytes(_swap(text, _URL, _STD)) + pad)
    if len(raw) != size or b64e(raw) != text:
        raise NoobError(E_INVALID_DATA, "non-canonical base64url")
    return raw


# ---- strict JSON (RFC 8259) object reader ------------------------------------------------------------------

def _bad(why):
    raise NoobError(E_MESSAGE_STRUCTURE, why)


def _ws(buf, i):
    n = len(buf)
    while i < n and buf[i] in b" \t\r\n":
        i += 1
    return i


def _string(buf, i):
    """buf[i] is '"': index after the closing quote."""
    n = len(buf)
    i += 1
    while i < n:
        c = buf[i]
        if c == 0x22:  # "
            return i + 1
        if c < 0x20:
            _bad("control character in a JSON string")
        if c == 0x5C:  # backslash
            i += 1
            if i >= n:
                break
            e = buf[i]
            if e == 0x75:  # \uXXXX
                if i + 4 >= n:
                    break
                for h in buf[i + 1:i + 5]:
                    if h not in b"0123456789abcdefABCDEF":
                        _bad("bad \\u escape")
                i += 4
            elif e not in b'"\\/bfnrt':
                _bad("bad JSON escape")
        i += 1
    _bad("unterminated JSON string")


def _number(buf, i):
    n = len(buf)
    start = i
    if i < n and buf[i] == 0x2D:  # -
        i += 1
    if i < n and buf[i] == 0x30:  # 0
        i += 1
    else:
        d = i
        while i < n and 0x30 <= buf[i] <= 0x39:
            i += 1
        if i == d:
            _bad("bad JSON number")
    if i < n and buf[i] == 0x2E:  # .
        i += 1
        d = i
        while i < n and 0x30 <= buf[i] <= 0x39:
            i += 1
        if i == d:
            _bad("bad JSON number")
    if i < n and buf[i] in b"eE":
        i += 1
        if i < n and buf[i] in b"+-":
            i += 1
        d = i
        while i < n and 0x30 <= buf[i] <= 0x39:
            i += 1
        if i == d:
            _bad("bad JSON number")
    if i - start > 20:
        _bad("JSON number too long")
    return i


def _value(buf, i, depth):
    """Index after the JSON value that starts at buf[i] (whitespace already skipped)."""
    if i >= len(buf):
        _bad("truncated JSON")
    c = buf[i]
    if c == 0x22:
        return _string(buf, i)
    if c == 0x7B or c == 0x5B:  # { [
        if depth >= MAX_DEPTH:
            _bad("JSON nested too deep")
        close = 0x7D if c == 0x7B else 0x5D
        i = _ws(buf, i + 1)
        if i < len(buf) and buf[i] == close:
            return i + 1
        while True:
            if c == 0x7B:
                if i >= len(buf) or buf[i] != 0x22:
                    _bad("JSON member name expected")
                i = _ws(buf, _string(buf, i))
                if i >= len(buf) or buf[i] != 0x3A:  # :
                    _bad("':' expected")
                i = _ws(buf, i + 1)
            i = _ws(buf, _value(buf, i, depth + 1))
            if i >= len(buf):
                _bad("truncated JSON")
            if buf[i] == close:
                return i + 1
            if buf[i] != 0x2C:  # ,
                _bad("',' expected")
            i = _ws(buf, i + 1)
    for word in (b"true", b"false", b"null"):
        if buf[i:i + len(word)] == word:
            return i + len(word)
    return _number(buf, i)


class Message:
    """A JSON object message: raw(name) gives a member's value bytes exactly as received; the other accessors
    decode and check one member. Construction validates the whole text (NoobError 1002 if malformed)."""

    def __init__(self, data):
        buf = bytes(data)
        self.buf = buf
        spans = {}
        i = _ws(buf, 0)
        if i >= len(buf) or buf[i] != 0x7B:
            _bad("not a JSON object")
        i = _ws(buf, i + 1)
        if i < len(buf) and buf[i] == 0x7D:
            i += 1
        else:
            while True:
                if i >= len(buf) or buf[i] != 0x22:
                    _bad("JSON member name expected")
                end = _string(buf, i)
                name = buf[i + 1:end - 1]
                if b"\\" in name:
                    try:
                        name = json.loads(buf[i:end]).encode()
                    except ValueError:  # UnicodeError: an escaped lone surrogate
                        _bad("bad JSON member name")
                i = _ws(buf, end)
                if i >= len(buf) or buf[i] != 0x3A:
                    _bad("':' expected")
                i = _ws(buf, i + 1)
                end = _value(buf, i, 1)
                if name in spans:
                    _bad("duplicate JSON member")
                if len(spans) >= MAX_MEMBERS:
                    _bad("too many JSON members")
                spans[name] = (i, end)
                i = _ws(buf, end)
                if i >= len(buf):
                    _bad("truncated JSON")
                if buf[i] == 0x7D:
                    i += 1
                    break
                if buf[i] != 0x2C:
                    _bad("',' expected")
                i = _ws(buf, i + 1)
        if _ws(buf, i) != len(buf):
            _bad("data after the JSON object")
        self.spans = spans

    def has(self, name):
        return name in self.spans

    def raw(self, name):
        span = self.spans.get(name)
        if span is None:
            return None
        return self.buf[span[0]:span[1]]

    def need(self, name):
        raw = self.raw(name)
        if raw is None:
            raise NoobError(E_MESSAGE_STRUCTURE, "missing " + name.decode())
        return raw

    def int(self, name, lo, hi):
        raw = self.need(name)
        if not raw or len(raw) > 10:
            raise NoobError(E_INVALID_DATA, name.decode() + " is not a small unsigned integer")
        for c in raw:
            if not 0x30 <= c <= 0x39:
                raise NoobError(E_INVALID_DATA, name.decode() + " is not an unsigned integer")
        v = int(raw)
        if not lo <= v <= hi:
            raise NoobError(E_INVALID_DATA, name.decode() + " out of range")
        return v

    def text(self, name, max_bytes):
        raw = self.need(name)
        if raw[0] != 0x22:
            raise NoobError(E_INVALID_DATA, name.decode() + " is not a string")
        try:
            s = json.loads(raw)
            enc = s.encode()  # CPython refuses an escaped lone surrogate here (UnicodeError)
        except ValueError:
            enc = b"\xed\xa0"
        i = enc.find(b"\xed")
        while i >= 0:  # MicroPython encodes it instead, as ED A0..BF xx: refuse that too
            if i + 1 < len(enc) and enc[i + 1] >= 0xA0:
                raise NoobError(E_INVALID_DATA, name.decode() + " is not UTF-8 text")
            i = enc.find(b"\xed", i + 1)
        n = len(enc)
        if n > max_bytes:
            raise NoobError(E_INVALID_DATA, name.decode() + " too long")
        return s

    def b64(self, name, size):
        return b64d(self.text(name, 64), size)

    def object(self, name, max_bytes):
        raw = self.need(name)
        if raw[0] != 0x7B:
            raise NoobError(E_INVALID_DATA, name.decode() + " is not a JSON object")
        if len(raw) > max_bytes:
            raise NoobError(E_INVALID_DATA, name.decode() + " too long")
        return raw

    def int_list(self, name):
        """A nonempty JSON array of distinct unsigned integers (Vers, Cryptosuites), at most 8 of them."""
        raw = self.need(name)
        if raw[0] != 0x5B:
            raise NoobError(E_INVALID_DATA, name.decode() + " is not an array")
        items = json.loads(raw)
        if not items or len(items) > 8:
            raise NoobError(E_INVALID_DATA, name.decode() + " empty or too long")
        for k, v in enumerate(items):
            if type(v) is not int or v < 0 or v > 0xFFFF or v in items[:k]:
                raise NoobError(E_INVALID_DATA, name.decode() + " has a bad or repeated element")
        return items

    def check_members(self, required, optional=()):
        """NoobError 1002 for a missing or an unrecognized top-level member (RFC 9140 section 3.6.1)."""
        for name in required:
            if name not in self.spans:
                raise NoobError(E_MESSAGE_STRUCTURE, "missing " + name.decode())
        for name in self.spans:
            if name not in required and name not in optional:
                raise NoobError(E_MESSAGE_STRUCTURE, "unrecognized member " + name.decode())


def json_str(text):
    """A JSON string literal (bytes) for text we send (NAI, ErrorInfo)."""
    return json.dumps(text).encode()


def json_b64(raw):
    return b'"' + b64e(raw) + b'"'


def check_text(msg, name, max_bytes):
    """A member that must be nonempty text without NUL or space (PeerId, NewNAI)."""
    s = msg.text(name, max_bytes)
    if not s or "\x00" in s or " " in s:
        raise NoobError(E_INVALID_DATA, "bad " + name.decode())
    return s
