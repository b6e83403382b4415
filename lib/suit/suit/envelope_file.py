# An envelope in a file (suit.envelope.read given a path): its top level walked head by head, every length
# checked against the file's size before anything is read, and the members the processor parses (wrapper,
# manifest, severable members) read into one buffer; integrated payloads stay in the file. Loaded only for a file.
from suit import SuitError, const

_CBOR_PARSE = const(1)
_TAG_ENVELOPE = const(107)


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
