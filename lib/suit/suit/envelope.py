# The SUIT envelope and manifest (draft-ietf-suit-manifest-37 section 8): every member is a memoryview into the
# caller's envelope buffer, so nothing large is copied; the authentication wrapper is checked (detached
# COSE_Sign1/COSE_Mac0 over the bstr-wrapped SUIT_Digest) before the manifest is parsed. The usual encodings
# (short heads, the members SUIT defines) are read inline: each cbor.Decoder, each of its reads and each
# cose.headers.Headers costs thousands of VM instructions, which at 64 KiB was most of an install's own time.
# Anything else, and every malformed envelope, goes to the general readers over cbor.Decoder and cose.headers
# in suit.envelope_file (read, decode, parse), loaded then.
#
#   authenticate(data, anchors, maxsize) -> Manifest      data: the envelope in one buffer, or a file's path
#   read(data, maxsize) -> Manifest, verify(m, anchors) -> digest, parse(m, max_components): its three steps
#
# The COSE blocks are walked in place (their signature or tag is a memoryview into the envelope, never a copy;
# cose.headers, cose.key and the crypto verifier do the rest), and an envelope in a file is read member by
# member (integrated payloads stay in the file). Functions over one plain object, not classes with methods:
# on a board each class and method is heap.
from hashlib import sha256

import sys

import cose
import crypto  # crypto.CryptoError
from cbor import CBORDecodeError, Decoder  # Decoder once: each cbor.Decoder is an import
from cose.key import candidates
from suit import SuitError, const
_CBOR_PARSE = const(1)
_ALG_UNSUPPORTED = const(3)
_UNAUTHORISED = const(4)
_COSE_UNSUPPORTED = const(2)

_DIGEST_SHA256 = const(-16)

# manifest keys; severable members: payload-fetch 16, install 20, text 23 (a bit mask: 1 << key)
_VERSION = const(1)
_SEQUENCE_NUMBER = const(2)
_COMMON = const(3)
_SEVERABLE = const(0x910000)
# validate 7, load 8, invoke 9 and the severable ones are sequences
_SEQUENCES = const(0x910380)


class Manifest:
    """An envelope and its manifest, as memoryviews into the envelope: from read(), buf, auth (the wrapper's
    contents), manifest (contents), wrapped (the bstr-wrapped members by key: the manifest 3, with its bstr head,
    what the digest covers, and the severable members), payloads (integrated payloads: name -> memoryview, or
    (offset, length) in the file at path; suit.spool.payload_reader), path (or None); from parse(),
    sequence_number, reference_uri, components (tuples of bytes), shared, sequences (key -> memoryview; a
    severed member not supplied is absent); digest (the encoded SUIT_Digest authenticated, from authenticate();
    else None). Fields are named by names the VM has already interned where one fits (each new one is a string
    on the board): suit.processor's install set may intern no more than fit its base's last qstr pool."""


def read_map_header(d, what):
    """d.read_map_header() of `what` (a suit._text.WHAT index, named in the error): its length (indefinite maps
    are refused; SUIT encodes deterministically)."""
    n = d.read_map_header()
    if n is None:
        raise SuitError(_CBOR_PARSE, (4, what))
    return n


def parse_digest(b):
    """(algorithm, digest memoryview) of an encoded SUIT_Digest; only SHA-256 is supported."""
    if len(b) == 36 and b[0] == 0x82 and b[1] == 0x2F and b[2] == 0x58 and b[3] == 32:
        return _DIGEST_SHA256, memoryview(b)[4:]  # [-16, bstr .size 32] in preferred encoding: the usual one
    try:
        d = Decoder(b)
        if d.read_array_header() != 2:
            raise SuitError(_CBOR_PARSE, 6)
        alg = d.read_int()
        value = d.read_bytes()
    except CBORDecodeError as e:
        raise SuitError(_CBOR_PARSE, (7, e))
    if alg != _DIGEST_SHA256:
        raise SuitError(_ALG_UNSUPPORTED, (5, alg))
    if len(value) != 32 or not d.at_end():
        raise SuitError(_CBOR_PARSE, 6)
    return alg, value


def read(data, maxsize):
    """The envelope's members (a Manifest not yet parsed). data is the envelope in one buffer (bytes, bytearray,
    memoryview: walked in place, never copied), or the path of a file that holds it: then only the
    authentication wrapper, the manifest and the severable members are read, into one buffer of their size;
    integrated payloads stay in the file and stream from it."""
    m = Manifest()
    m.path = m.digest = m.reference_uri = m.shared = None
    m.payloads = p = {}
    if isinstance(data, str):
        from suit.envelope_file import read_members
        m.path = data
        data = read_members(data, maxsize, p)
    elif len(data) > maxsize:
        raise SuitError(_CBOR_PARSE, (10, len(data), maxsize))
    buf = m.buf = memoryview(data)
    m.wrapped = members = {}
    try:  # the usual envelope read inline: tag 107 (or none: a file's members), a map of small keys to bstrs
        # with one- to three-byte heads
        found = {}  # integrated payloads
        i = 2 if buf[0] == 0xD8 and buf[1] == 107 else 0
        if not 0xA0 < buf[i] < 0xB8:
            raise IndexError
        i += 1
        for _ in range(buf[i - 1] - 0xA0):
            key = buf[i]
            if 0x60 < key < 0x78:  # an integrated payload's name (a short text)
                name = str(buf[i + 1:i + key - 0x5F], "utf-8")
                if name in found or i + key - 0x5F > len(buf):
                    raise IndexError
                i += key - 0x60  # the name's last byte: its payload's head follows
                key = -1
            b = buf[i + 1]
            n = b - 0x40 if b < 0x58 else buf[i + 2] if b == 0x58 else buf[i + 2] << 8 | buf[i + 3]
            start = i + 1
            i += 2 if b < 0x58 else 3 if b == 0x58 else 4
            if (key > 23 or key in members or b < 0x40 or b > 0x59 or i + n > len(buf)
                    or key != 2 and key != 3 and key != -1 and not (_SEVERABLE >> key) & 1):
                raise IndexError
            if key == 3:
                m.manifest = buf[i:i + n]
            if key == -1:
                found[name] = buf[i:i + n]
            else:
                members[key] = buf[i:i + n] if key == 2 else buf[start:i + n]
            i += n
        if i != len(buf):
            raise IndexError
        data = None
        p.update(found)
    except (IndexError, UnicodeError):
        m.wrapped = members = {}
    if data is not None:  # anything else (and every error) through cbor.Decoder
        from suit import envelope_file
        envelope_file.read(m, buf)
    try:
        w = members.get(3)
        m.auth = auth = members.pop(2, None)
        if auth is None or w is None:
            raise SuitError(_CBOR_PARSE, (12, 1 if auth is None else 3))
    except CBORDecodeError as e:
        raise SuitError(_CBOR_PARSE, (13, e))
    return m


def verify(m, trust_anchors):
    """Check the authentication wrapper: one block must verify with a trust anchor, and the digest it covers
    must be the manifest's. Returns the encoded SUIT_Digest (memoryview)."""
    a = m.auth
    blocks = []
    try:  # [digest, blocks...] with one- to three-byte bstr heads read inline; anything else through cbor.Decoder
        p = 1
        for _ in range(a[0] - 0x80 if 0x81 < a[0] < 0x98 else 0):
            b = a[p]
            n = b - 0x40 if b < 0x58 else a[p + 1] if b == 0x58 else a[p + 1] << 8 | a[p + 2]
            p += 1 if b < 0x58 else 2 if b == 0x58 else 3
            if b < 0x40 or b > 0x59 or p + n > len(a):
                raise IndexError
            blocks.append(a[p:p + n])
            p += n
        if p != len(a) or not blocks:
            raise IndexError
        digest = blocks.pop(0)
    except IndexError:
        try:
            d = Decoder(a)
            n = d.read_array_header()
            if n is None or n < 2:
                raise SuitError(_UNAUTHORISED, 14)
            digest = d.read_bytes()
            blocks = []
            for _ in range(n - 1):
                blocks.append(d.read_bytes())
            if not d.at_end():
                raise SuitError(_CBOR_PARSE, (59, 1))
        except CBORDecodeError as e:
            raise SuitError(_CBOR_PARSE, (13, e))
    want = parse_digest(digest)[1]
    failure = None  # a wrong key or signature outranks an algorithm this device lacks
    for blk in blocks:
        # a tagged COSE_Sign1 (0xD2) or COSE_Mac0 (0xD1), detached, over the digest, walked in place: its
        # signature or tag is a memoryview into it, never a copy
        try:
            first = blk[0] if len(blk) else 0
            if first != 0xD2 and first != 0xD1:
                raise SuitError(_COSE_UNSUPPORTED, (2, blk[1] if first == 0xD8 and len(blk) > 1 else 0))
            sign = first == 0xD2
            # the usual block read inline (each cbor.Decoder and cose.headers.Headers is thousands of VM
            # instructions): [protected {1: alg}, unprotected {} or {4: kid}, nil, tag] with short heads;
            # anything else, and every error, goes the general way (suit.envelope_file.decode)
            kid = None
            try:
                n = blk[2] - 0x40  # the protected bstr's length; its map at 3
                if blk[1] != 0x84 or not 2 < n < 5:
                    raise IndexError
                p = 3 + n  # the unprotected map
                v = blk[5]
                alg = v if v < 24 else 31 - v if 0x1F < v < 0x38 else -1 - blk[6] if v == 0x38 else None
                if blk[3] != 0xA1 or blk[4] != 1 or alg is None or p != (6 if v < 0x38 else 7):
                    raise IndexError
                protected = blk[3:p]
                b = blk[p]
                if b == 0xA1 and blk[p + 1] == 4 and 0x3F < blk[p + 2] < 0x58:
                    kid = blk[p + 3:p + 3 + blk[p + 2] - 0x40]
                    p += 3 + blk[p + 2] - 0x40
                elif b == 0xA0:
                    p += 1
                else:
                    raise IndexError
                b = blk[p + 1]  # after nil (detached), the signature's or tag's bstr head (HSS-LMS: 2-byte length)
                if blk[p] != 0xF6 or b < 0x40 or b > 0x59:
                    raise IndexError
                n = b - 0x40 if b < 0x58 else blk[p + 2] if b == 0x58 else blk[p + 2] << 8 | blk[p + 3]
                p += 2 if b < 0x58 else 3 if b == 0x58 else 4
                sig = blk[p:p + n]
                if p + n != len(blk) or len(digest) > 255:
                    raise IndexError
                n = len(digest)
                # the Sig_structure / MAC_structure as cose.headers.to_be_checked encodes it
                tbs = bytearray(b"\x84\x6aSignature1" if sign else b"\x84\x64MAC0")
                tbs.append(0x40 + len(protected))
                tbs += protected
                tbs += b"\x40\x58" if n > 23 else b"\x40"
                tbs.append(n if n > 23 else 0x40 + n)
                tbs += digest
                if sign:  # (a MAC hashes the bytearray as it is)
                    tbs = bytes(tbs)
            except IndexError:
                from suit import envelope_file
                alg, kid, tbs, sig = envelope_file.decode(blk, sign, digest)
            # the verifier of an algorithm is imported only when a manifest uses it (as cose.sign1 does); HMAC's
            # taken from sys.modules once loaded (an import statement is ~19K VM instructions)
            if not sign:
                if alg != 4 and alg != 5:  # HMAC 256/64, HMAC 256/256
                    raise cose.CoseUnsupported(2, alg)
                check = sys.modules.get("crypto.kdf")
                if check is None:
                    from crypto import kdf as check
                check = check.hmac_sha256
            elif alg == -7 or alg == -9:  # ES256, ESP256
                from crypto.p256 import verify as check
            elif alg == -8 or alg == -19:  # EdDSA, Ed25519
                from crypto.ed25519 import verify as check
            elif alg == -46:  # HSS-LMS
                from crypto.lms import hss_verify as check
            else:
                raise cose.CoseUnsupported(1, alg)
            for key in candidates(trust_anchors, kid, alg):
                # the tag compared through the digests of both (what an attacker could learn from the time of
                # == is where two digests he cannot aim at differ): crypto.util.ct_equal's loop is ~28K VM
                # instructions
                if sign:
                    if check(key.public_bytes(), tbs, sig):
                        break
                else:
                    tag = check(key.k, tbs)
                    if sha256(tag[:8] if alg == 4 else tag).digest() == sha256(sig).digest():  # HMAC 256/64: 8
                        break
            else:
                raise SuitError(_UNAUTHORISED, (3, sign, alg))
            failure = None
            break
        except SuitError as e:
            r, w = e.reason, e.args[0]
        except cose.CoseUnsupported as e:
            r, w = _ALG_UNSUPPORTED, str(e)
        except (cose.CoseError, crypto.CryptoError) as e:  # "no key for this algorithm", a malformed key: unauthorised
            r, w = _UNAUTHORISED, str(e)
        if failure is None or r == _UNAUTHORISED:
            failure = (r, w)
    if failure is not None:
        raise SuitError(failure[0], failure[1])
    # digests are public (the envelope carries them): a plain comparison; only the MAC tag above needs ct_equal
    if sha256(m.wrapped[3]).digest() != want:
        raise SuitError(_UNAUTHORISED, 8)
    return digest


def authenticate(data, trust_anchors, maxsize=8192, max_components=8):
    """Authenticate an envelope and parse its manifest, in place: data is the envelope in one buffer or the path
    of the file holding it (see read). Returns the Manifest; its digest is the encoded SUIT_Digest the
    authentication covered. Raises SuitError. The anti-rollback check (sequence_number against the stored one)
    is the caller's. The Manifest's members are memoryviews into data (or into the members read from the file)."""
    m = read(data, maxsize)
    m.digest = bytes(verify(m, trust_anchors))
    return parse(m, max_components)


def parse(m, max_components):
    """Parse the manifest of read(): sequence number, components, and the command sequences as memoryviews
    (absent from sequences when absent, or severed and not supplied). Returns m."""
    m.components = components = []
    m.sequences = sequences = {}
    severed = {}  # severed members: key -> encoded SUIT_Digest
    try:
        # the usual manifest read inline: a map of small keys to uints (version, sequence number) and bstrs, its
        # common a map of components (short bstr parts) and the shared sequence; anything else, and every error,
        # through cbor.Decoder below
        fast = True
        try:
            b = m.manifest
            i = 1
            seen = 0
            common = seq = None
            for _ in range(b[0] - 0xA0 if 0xA0 < b[0] < 0xB8 else 0):
                key = b[i]
                h = b[i + 1]
                bit = 1 << key
                if key > 23 or seen & bit:
                    raise IndexError
                seen |= bit
                if key == _VERSION or key == _SEQUENCE_NUMBER:
                    n = 0 if h < 24 else 1 << (h - 24) if h < 0x1C else 9
                    if n > 8 or i + 2 + n > len(b):
                        raise IndexError
                    v = h if h < 24 else int.from_bytes(b[i + 2:i + 2 + n], "big")
                    if key == _VERSION and v != 1:
                        raise IndexError
                    seq = v if key == _SEQUENCE_NUMBER else seq
                    i += 2 + n
                elif key == _COMMON or bit & _SEQUENCES:
                    n = h - 0x40 if h < 0x58 else b[i + 2] if h == 0x58 else b[i + 2] << 8 | b[i + 3]
                    i += 2 if h < 0x58 else 3 if h == 0x58 else 4
                    if h < 0x40 or h > 0x59 or i + n > len(b):
                        raise IndexError
                    if key == _COMMON:
                        common = b[i:i + n]
                    else:
                        sequences[key] = b[i:i + n]
                    i += n
                else:
                    raise IndexError
            if i != len(b) or seq is None or common is None or not 0xA0 < common[0] < 0xA3:
                raise IndexError
            b = common
            i = 1
            for _ in range(b[0] - 0xA0):
                key = b[i]
                if key == 2 and not components and 0x80 < b[i + 1] < 0x80 + min(max_components + 1, 24):
                    i += 2
                    for _ in range(b[i - 1] - 0x80):
                        if not 0x7F < b[i] < 0x89:
                            raise IndexError
                        cid = []
                        i += 1
                        for _ in range(b[i - 1] - 0x80):
                            n = b[i] - 0x40
                            if not -1 < n < 24 or i + 1 + n > len(b):
                                raise IndexError
                            cid.append(bytes(b[i + 1:i + 1 + n]))
                            i += 1 + n
                        components.append(tuple(cid))
                elif key == 4 and m.shared is None:
                    h = b[i + 1]
                    n = h - 0x40 if h < 0x58 else b[i + 2] if h == 0x58 else b[i + 2] << 8 | b[i + 3]
                    i += 2 if h < 0x58 else 3 if h == 0x58 else 4
                    if h < 0x40 or h > 0x59 or i + n > len(b):
                        raise IndexError
                    m.shared = b[i:i + n]
                    i += n
                else:
                    raise IndexError
            if i != len(b) or not components:
                raise IndexError
            m.sequence_number = seq
        except IndexError:
            fast = False
            m.components = components = []
            m.sequences = sequences = {}
            m.shared = None
        if not fast:
            from suit import envelope_file
            envelope_file.parse(m, max_components, severed)
            components = m.components
            sequences = m.sequences
        for key in severed:
            member = m.wrapped.get(key)
            if member is None:
                continue  # severed and not supplied: tolerated, the member does not run
            if sha256(member).digest() != parse_digest(severed[key])[1]:
                raise SuitError(_UNAUTHORISED, (25, key))
            sequences[key] = Decoder(member).read_bytes()
        for key in m.wrapped:
            if key != 3 and key not in severed:
                raise SuitError(_UNAUTHORISED, (26, key))
    except CBORDecodeError as e:
        raise SuitError(_CBOR_PARSE, (20, e))
    return m
