# An envelope in a file (suit.envelope.read given a path): its top level walked head by head, every length
# checked against the file's size before anything is read, and the members the processor parses (wrapper,
# manifest, severable members) read into one buffer; integrated payloads stay in the file. Loaded only for a file,
# or when suit.envelope's inline readers leave an envelope to the general ones here (read, decode, parse: through
# cbor.Decoder and cose.headers, for any encoding and every malformed envelope).
from cbor import CBORDecodeError, Decoder
from cose.headers import Headers, to_be_checked
from suit import SuitError, const
from suit.envelope import read_map_header

_CBOR_PARSE = const(1)
_UNAUTHORISED = const(4)
_COMPONENT_UNSUPPORTED = const(6)
_TAG_MANIFEST = const(1070)
_SEVERABLE = const(0x910000)  # suit.envelope's masks
_TOLERATED = const(0x1000020)
_SEQUENCES = const(0x910380)
_VERSION = const(1)
_SEQUENCE_NUMBER = const(2)
_COMMON = const(3)
_REFERENCE_URI = const(4)
_TAG_ENVELOPE = const(107)


def _head(d, uint):
    """d.read_int() (d.read_uint() when uint) of cbor.Decoder d, with the one-byte head (0..23: every key SUIT
    defines) read inline: each cbor.Decoder read costs a few method calls."""
    p = d.pos
    if p < d.end:
        b = d.buf[p]
        if b < 24:
            d.pos = p + 1
            return b
    return d.read_uint() if uint else d.read_int()


def _file_head(f, hb, left):
    """(major, argument, head length) of the CBOR head at the file's position, `left` bytes before its end."""
    if left < 1 or f.readinto(hb[0:1]) != 1:
        raise SuitError(_CBOR_PARSE, "truncated envelope")
    ai = hb[0] & 31
    if ai < 24:
        return hb[0] >> 5, ai, 1
    if ai > 27:
        raise SuitError(_CBOR_PARSE, "indefinite length or reserved head in the envelope")
    k = 1 << (ai - 24)
    if left < 1 + k or f.readinto(hb[1:1 + k]) != k:
        raise SuitError(_CBOR_PARSE, "truncated envelope")
    return hb[0] >> 5, int.from_bytes(bytes(hb[1:1 + k]), "big"), 1 + k


def read_members(path, max_size, payloads):
    """The envelope in the file at path, as one buffer holding a map of its members but the integrated payloads
    (their encodings exactly as in the file), whose (offset, length) go into payloads. The file's top level is
    walked head by head: every length is checked against the file's size before anything is read."""
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        if size > max_size:
            raise SuitError(_CBOR_PARSE, "envelope of %d bytes is bigger than this device accepts (%d)"
                            % (size, max_size))
        f.seek(0)
        hb = memoryview(bytearray(9))
        major, arg, pos = _file_head(f, hb, size)
        if major == 6:
            if arg != _TAG_ENVELOPE:
                raise SuitError(_CBOR_PARSE, "envelope tag %d (expected 107)" % arg)
            major, arg, k = _file_head(f, hb, size - pos)
            pos += k
        if major != 5:
            raise SuitError(_CBOR_PARSE, "the envelope is not a map")
        spans = []
        total = 0
        for _ in range(arg):
            start = pos
            major, n, k = _file_head(f, hb, size - pos)
            pos += k
            name = None
            if major == 3:  # an integrated payload's name
                if n > size - pos or n > 255:
                    raise SuitError(_CBOR_PARSE, "bad integrated payload name")
                try:
                    name = f.read(n).decode()
                except UnicodeError:
                    raise SuitError(_CBOR_PARSE, "bad integrated payload name")
                pos += n
                if name in payloads:
                    raise SuitError(_CBOR_PARSE, "integrated payload %r given twice" % name)
            elif major > 1:
                raise SuitError(_CBOR_PARSE, "envelope keys are integers or payload names")
            major, n, k = _file_head(f, hb, size - pos)
            pos += k
            if major != 2 or n > size - pos:
                raise SuitError(_CBOR_PARSE, "envelope members are byte strings within the envelope")
            if name is None:
                spans.append((start, pos + n))
                total += pos + n - start
            else:
                payloads[name] = (pos, n)
            pos += n
            f.seek(pos)
        if pos != size:
            raise SuitError(_CBOR_PARSE, "%d bytes after the envelope" % (size - pos))
        buf = bytearray(total + 1 + (len(spans) > 23))
        mv = memoryview(buf)
        at = len(buf) - total
        buf[0] = 0xA0 + len(spans) if at == 1 else 0xB8  # a map of the members read
        if at == 2:
            buf[1] = len(spans)
        for start, end in spans:
            f.seek(start)
            if f.readinto(mv[at:at + end - start]) != end - start:
                raise SuitError(_CBOR_PARSE, "truncated envelope")
            at += end - start
        return buf


def read(m, buf):
    """suit.envelope.read's general walk of the envelope's members (buf: the envelope or the members read from
    a file) through cbor.Decoder: what its inline reader does not take, and every malformed envelope."""
    members = m.wrapped
    p = m.payloads
    try:
        d = Decoder(buf)
        # the first bytes and each key's head read inline (each cbor.Decoder call is a few method calls)
        if len(buf) > 1 and buf[0] == 0xD8 and buf[1] == 107:
            d.pos = 2  # tag 107, as every envelope starts
        elif d.peek_major() == 6:
            tag = d.read_tag()
            if tag != 107:
                raise SuitError(_CBOR_PARSE, (21, tag))
        for _ in range(read_map_header(d, 0)):
            if d.pos < d.end and buf[d.pos] >> 5 == 3:  # an integrated payload's name
                name = d.read_text()
                if name in p:
                    raise SuitError(_CBOR_PARSE, (30, name))
                p[name] = d.read_bytes()
                continue
            key = _head(d, False)
            if key in members:
                raise SuitError(_CBOR_PARSE, (22, key))
            start = d.pos
            value = d.read_bytes()
            if key == 3:
                m.manifest = value
            elif key != 2 and not (0 < key < 32 and (_SEVERABLE >> key) & 1):
                raise SuitError(_CBOR_PARSE, (36, key))
            members[key] = value if key == 2 else buf[start:d.pos]  # the wrapper's contents; the rest bstr-wrapped
        if not d.at_end():
            raise SuitError(_CBOR_PARSE, (11, d.remaining()))
    except CBORDecodeError as e:
        raise SuitError(_CBOR_PARSE, (13, e))


def decode(blk, sign, digest):
    """(alg, kid, to-be-checked bytes, signature or tag) of a COSE block through cbor.Decoder and
    cose.headers.Headers: whatever suit.envelope.verify does not read inline, and every malformed block."""
    try:
        d = Decoder(blk, unique_keys=True)
        d.pos = 1
        if d.read_array_header() != 4:
            raise SuitError(_UNAUTHORISED, (15, sign))
        protected = d.read_bytes()
        if d.peek_major() != 5:
            raise SuitError(_UNAUTHORISED, 16)
        unprotected = d.decode()
        if d.peek_major() == 7 and blk[d.pos] == 0xF6:  # nil: detached, as SUIT sends it
            d.pos += 1
        elif bytes(d.read_bytes()) != bytes(digest):
            raise SuitError(_UNAUTHORISED, 23)
        sig = d.read_bytes()
        if not d.at_end():
            raise SuitError(_CBOR_PARSE, (59, 2))
    except CBORDecodeError as e:
        raise SuitError(_UNAUTHORISED, (17, e))
    hdr = Headers(protected, unprotected)
    # the Sig_structure / MAC_structure (RFC 9052 sections 4.4, 6.3), external AAD empty
    return hdr.alg, hdr.kid, to_be_checked("Signature1" if sign else "MAC0", hdr.protected_bytes, b"",
                                           bytes(digest)), sig


def parse(m, max_components, severed):
    """suit.envelope.parse's general reading of the manifest and its common through cbor.Decoder: what its
    inline reader does not take, and every malformed manifest. Fills m.components, m.sequences, m.shared,
    m.sequence_number, m.reference_uri and severed (key -> encoded SUIT_Digest)."""
    m.components = components = []
    m.sequences = sequences = {}
    m.shared = None
    try:
        d = Decoder(m.manifest)
        if d.peek_major() == 6 and d.read_tag() != _TAG_MANIFEST:
            raise SuitError(_CBOR_PARSE, 18)
        common = seq = None
        seen = 0
        for _ in range(read_map_header(d, 3)):
            key = _head(d, False)
            bit = 1 << key if 0 <= key < 32 else 0
            if seen & bit:
                raise SuitError(_CBOR_PARSE, (24, key))
            seen |= bit
            if key == _VERSION:
                v = _head(d, True)
                if v != 1:
                    raise SuitError(_CBOR_PARSE, (31, v))
            elif key == _SEQUENCE_NUMBER:
                seq = m.sequence_number = _head(d, True)
            elif key == _COMMON:
                common = d.read_bytes()
            elif key == _REFERENCE_URI:
                m.reference_uri = d.read_text()
            elif bit & _SEVERABLE and d.peek_major() == 4:  # severed: the envelope may carry it, digest checked
                severed[key] = d.raw()
            elif bit & _SEQUENCES:
                sequences[key] = d.read_bytes()
            elif bit & _TOLERATED:
                d.skip()
            else:
                raise SuitError(_CBOR_PARSE, (37, key))
        if not d.at_end():
            raise SuitError(_CBOR_PARSE, (59, 3))
        if not seen & 2 or seq is None or common is None:
            raise SuitError(_CBOR_PARSE, 19)
        # common: components 2 and the shared sequence 4 (dependencies 1: not supported)
        d = Decoder(common)
        for _ in range(read_map_header(d, 4)):
            key = _head(d, False)
            if key == 2 and not components:
                count = d.read_array_header()
                if count is None or count < 1:
                    raise SuitError(_CBOR_PARSE, 28)
                if count > max_components:
                    raise SuitError(_COMPONENT_UNSUPPORTED, (29, count, max_components))
                for _ in range(count):
                    parts = d.read_array_header()
                    if parts is None or parts > 8:
                        raise SuitError(_COMPONENT_UNSUPPORTED, 32)
                    cid = []
                    for _ in range(parts):
                        cid.append(bytes(d.read_bytes()))
                    components.append(tuple(cid))
            elif key == 4 and m.shared is None:
                m.shared = d.read_bytes()
            else:
                raise SuitError(_COMPONENT_UNSUPPORTED if key == 1 else _CBOR_PARSE, (35, key))
        if not d.at_end():
            raise SuitError(_CBOR_PARSE, (59, 4))
        if not components:
            raise SuitError(_CBOR_PARSE, 9)
    except CBORDecodeError as e:
        raise SuitError(_CBOR_PARSE, (20, e))
