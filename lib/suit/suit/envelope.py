# The SUIT envelope and manifest (draft-ietf-suit-manifest-37 section 8), read with cbor.Decoder: every member
# is a memoryview into the caller's envelope buffer, so nothing large is copied; the authentication wrapper is
# checked (detached COSE_Sign1/COSE_Mac0 over the bstr-wrapped SUIT_Digest) before the manifest is parsed.
#
#   authenticate(data, anchors, max_size) -> Manifest     data: the envelope in one buffer, or a file's path
#
# authenticate() is what an update trigger needs: the COSE blocks are walked in place (their signature or tag is
# a memoryview into the envelope, never a copy; cose.headers, cose.key and cose.algs do the rest), and an
# envelope in a file is read member by member (integrated payloads stay in the file).
from hashlib import sha256

import cbor
import cose
from cbor import CBORDecodeError, Decoder  # Decoder once: each cbor.Decoder is an import
from crypto import CryptoError
from crypto.util import ct_equal
from suit import SuitError, const
_CBOR_PARSE = const(1)
_ALG_UNSUPPORTED = const(3)
_UNAUTHORISED = const(4)
_COSE_UNSUPPORTED = const(2)
_COMPONENT_UNSUPPORTED = const(6)

_TAG_ENVELOPE = const(107)
_TAG_MANIFEST = const(1070)
_DIGEST_SHA256 = const(-16)

# envelope and manifest keys
_AUTHENTICATION = const(2)
_MANIFEST = const(3)
_VERSION = const(1)
_SEQUENCE_NUMBER = const(2)
_COMMON = const(3)
_REFERENCE_URI = const(4)
_MANIFEST_COMPONENT_ID = const(5)
_VALIDATE = const(7)
_LOAD = const(8)
_INVOKE = const(9)
_PAYLOAD_FETCH = const(16)
_INSTALL = const(20)
_TEXT = const(23)
SEVERABLE = (_PAYLOAD_FETCH, _INSTALL, _TEXT)
_COMPONENTS = const(2)
_SHARED_SEQUENCE = const(4)
_DEPENDENCIES = const(1)
# members of the trust-domains extension a plain processor can leave aside: the manifest's own component id (5)
# and the uninstall sequence (24) only matter to a manager of several trust domains
_TOLERATED = (_MANIFEST_COMPONENT_ID, 24)

_COSE_SIGN1 = const(0xD2)
_COSE_MAC0 = const(0xD1)


def read_map_keys(dec, what):
    """The map header of `what`: its length (indefinite maps are refused; SUIT encodes deterministically)."""
    n = dec.read_map_header()
    if n is None:
        raise SuitError(_CBOR_PARSE, (4, what))
    return n


def read_key(dec, uint=False):
    """dec.read_int() (dec.read_uint() when uint), with the one-byte case (0..23: every key SUIT defines) read
    inline: each cbor.Decoder read costs a few method calls."""
    p = dec.pos
    if p < dec.end:
        b = dec.buf[p]
        if b < 24:
            dec.pos = p + 1
            return b
    return dec.read_uint() if uint else dec.read_int()


def expect_end(dec, what):
    if not dec.at_end():
        raise SuitError(_CBOR_PARSE, (59, what))


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
        if not d.at_end():
            raise SuitError(_CBOR_PARSE, 6)
    except CBORDecodeError as e:
        raise SuitError(_CBOR_PARSE, (7, e))
    if alg != _DIGEST_SHA256:
        raise SuitError(_ALG_UNSUPPORTED, (5, alg))
    if len(value) != 32:
        raise SuitError(_CBOR_PARSE, 6)
    return alg, value


class Envelope:
    """The envelope's members as memoryviews: auth (the wrapper's contents), manifest (contents) and
    manifest_wrapped (with its bstr head, what the digest covers), severable members (bstr-wrapped, by key) and
    integrated payloads (payloads: name -> memoryview, or (offset, length) in the file at path;
    suit.spool.payload_reader).

    data is the envelope in one buffer (bytes, bytearray, memoryview: walked in place, never copied), or the path
    of a file that holds it: then only the authentication wrapper, the manifest and the severable members are
    read, into one buffer of their size; integrated payloads stay in the file and stream from it."""

    def __init__(self, data, max_size):
        self.path = None
        self.payloads = {}  # name -> memoryview, or (offset, length) in the file at self.path
        if isinstance(data, str):
            from suit.envelope_file import read_members
            self.path = data
            data = read_members(data, max_size, self.payloads)
        elif len(data) > max_size:
            raise SuitError(_CBOR_PARSE, (10, len(data), max_size))
        self.buf = memoryview(data)
        self.auth = None
        self.manifest = None
        self.manifest_wrapped = None
        self.severable = {}
        try:
            d = Decoder(self.buf)
            if len(self.buf) > 1 and self.buf[0] == 0xD8 and self.buf[1] == _TAG_ENVELOPE:
                d.pos = 2  # tag 107, as every envelope starts
            elif d.peek_major() == 6:
                tag = d.read_tag()
                if tag != _TAG_ENVELOPE:
                    raise SuitError(_CBOR_PARSE, (21, tag))
            n = read_map_keys(d, "envelope")
            seen = []
            for _ in range(n):
                if d.pos < d.end and self.buf[d.pos] >> 5 == 3:
                    name = d.read_text()
                    if name in self.payloads:
                        raise SuitError(_CBOR_PARSE, (30, name))
                    self.payloads[name] = d.read_bytes()
                    continue
                key = read_key(d)
                if key in seen:
                    raise SuitError(_CBOR_PARSE, (22, key))
                seen.append(key)
                start = d.pos
                value = d.read_bytes()
                if key == _AUTHENTICATION:
                    self.auth = value
                elif key == _MANIFEST:
                    self.manifest = value
                    self.manifest_wrapped = self.buf[start:d.pos]
                elif key in SEVERABLE:
                    self.severable[key] = self.buf[start:d.pos]
                else:
                    raise SuitError(_CBOR_PARSE, (36, key))
            if not d.at_end():
                raise SuitError(_CBOR_PARSE, (11, d.remaining()))
            if self.auth is None or self.manifest is None:
                raise SuitError(_CBOR_PARSE, (12, "authentication" if self.auth is None
                                                                       else "manifest"))
        except CBORDecodeError as e:
            raise SuitError(_CBOR_PARSE, (13, e))

    def authenticate(self, trust_anchors):
        """Check the authentication wrapper: one block must verify with a trust anchor, and the digest it
        covers must be the manifest's. Returns the encoded SUIT_Digest (memoryview)."""
        try:
            d = Decoder(self.auth)
            n = d.read_array_header()
            if n is None or n < 2:
                raise SuitError(_UNAUTHORISED, 14)
            digest = d.read_bytes()
            blocks = []
            for _ in range(n - 1):
                blocks.append(d.read_bytes())
            expect_end(d, "the authentication wrapper")
        except CBORDecodeError as e:
            raise SuitError(_CBOR_PARSE, (13, e))
        want = parse_digest(digest)[1]
        from cose.headers import Headers
        from cose.key import candidates
        failure = None  # a wrong key or signature outranks an algorithm this device lacks
        for blk in blocks:
            # a tagged COSE_Sign1 or COSE_Mac0, detached, over the digest, walked in place: its signature or tag
            # is a memoryview into it, never a copy
            try:
                try:
                    if len(blk) == 0:
                        raise SuitError(_CBOR_PARSE, 0)
                    first = blk[0]
                    if first == 0xD8 and len(blk) > 1 and blk[1] in (97, 98):  # tags 97, 98: COSE_Mac, COSE_Sign
                        name = "Mac" if blk[1] == 97 else "Sign"
                        raise SuitError(_COSE_UNSUPPORTED, (1, name, name, "01"[blk[1] - 97]))
                    if first != _COSE_SIGN1 and first != _COSE_MAC0:
                        raise SuitError(_COSE_UNSUPPORTED, 2)
                    sign = first == _COSE_SIGN1
                    d = Decoder(blk, unique_keys=True)
                    d.read_tag()
                    if d.read_array_header() != 4:
                        raise SuitError(_UNAUTHORISED, (15, "Sign1" if sign else "Mac0"))
                    protected = d.read_bytes()
                    if d.peek_major() != 5:
                        raise SuitError(_UNAUTHORISED, 16)
                    if blk[d.pos] == 0xA0:  # an empty map, as SUIT's blocks often have: no decode()
                        unprotected = {}
                        d.pos += 1
                    else:
                        unprotected = d.decode()
                    if d.peek_major() == 7 and blk[d.pos] == 0xF6:  # nil: detached, as SUIT sends it
                        d.pos += 1
                    elif bytes(d.read_bytes()) != bytes(digest):
                        raise SuitError(_UNAUTHORISED, 23)
                    sig = d.read_bytes()
                    expect_end(d, "the COSE block")
                except CBORDecodeError as e:
                    raise SuitError(_UNAUTHORISED, (17, e))
                hdr = Headers(protected, unprotected)
                alg = hdr.alg
                # the verifier of an algorithm is imported only when a manifest uses it (as cose.sign1 does)
                if not sign:
                    if alg != 4 and alg != 5:  # HMAC 256/64, HMAC 256/256
                        raise cose.CoseUnsupported(2, alg)
                    from crypto.kdf import hmac_sha256 as check
                elif alg == -7 or alg == -9:  # ES256, ESP256
                    from crypto.p256 import verify as check
                elif alg == -8 or alg == -19:  # EdDSA, Ed25519
                    from crypto.ed25519 import verify as check
                elif alg == -46:  # HSS-LMS
                    from crypto.lms import hss_verify as check
                else:
                    raise cose.CoseUnsupported(1, alg)
                # the Sig_structure / MAC_structure (RFC 9052 sections 4.4, 6.3), external AAD empty
                tbs = cbor.dumps(["Signature1" if sign else "MAC0", hdr.protected_bytes, b"", bytes(digest)])
                for key in candidates(trust_anchors, hdr.kid, alg):
                    if sign:
                        if check(key.public_bytes(), tbs, sig):
                            break
                    elif ct_equal(check(key.k, tbs)[:8 if alg == 4 else 32], sig):
                        break
                else:
                    from cose._text import alg_name
                    raise SuitError(_UNAUTHORISED, (3, "Sign1 signature" if sign else "Mac0 tag", alg_name(alg)))
                failure = None
                break
            except SuitError as e:
                r, w = e.reason, e.args[0]
            except cose.CoseUnsupported as e:
                r, w = _ALG_UNSUPPORTED, str(e)
            except cose.CoseError as e:  # includes "no key for this algorithm": not authorised by any anchor
                r, w = _UNAUTHORISED, str(e)
            except CryptoError as e:  # a malformed key
                r, w = _UNAUTHORISED, str(e)
            if failure is None or r == _UNAUTHORISED:
                failure = (r, w)
        if failure is not None:
            raise SuitError(failure[0], failure[1])
        # digests are public (the envelope carries them): a plain comparison; only the MAC tag above needs ct_equal
        if sha256(self.manifest_wrapped).digest() != want:
            raise SuitError(_UNAUTHORISED, 8)
        return digest


def authenticate(data, trust_anchors, max_size=8192, max_components=8):
    """Authenticate an envelope and parse its manifest, in place: data is the envelope in one buffer or the path
    of the file holding it (see Envelope). Returns the Manifest; its digest is the encoded SUIT_Digest the
    authentication covered. Raises SuitError. The anti-rollback check (sequence_number against the stored one)
    is the caller's. The Manifest's members are memoryviews into data (or into the members read from the file)."""
    env = Envelope(data, max_size)
    digest = env.authenticate(trust_anchors)
    m = Manifest(env, max_components)
    m.digest = bytes(digest)
    return m


class Manifest:
    """The authenticated manifest: sequence number, components, and the command sequences as memoryviews
    (None when absent or severed and not supplied)."""

    def __init__(self, env, max_components=8):
        self.sequence_number = None
        self.reference_uri = None
        self.components = []
        self.shared = None
        self.sequences = {}
        self.severed = {}  # key -> encoded SUIT_Digest of a severed member
        try:
            d = Decoder(env.manifest)
            if d.peek_major() == 6 and d.read_tag() != _TAG_MANIFEST:
                raise SuitError(_CBOR_PARSE, 18)
            n = read_map_keys(d, "manifest")
            common = None
            seen = []
            for _ in range(n):
                key = read_key(d)
                if key in seen:
                    raise SuitError(_CBOR_PARSE, (24, key))
                seen.append(key)
                if key == _VERSION:
                    v = read_key(d, True)
                    if v != 1:
                        raise SuitError(_CBOR_PARSE, (31, v))
                elif key == _SEQUENCE_NUMBER:
                    self.sequence_number = read_key(d, True)
                elif key == _COMMON:
                    common = d.read_bytes()
                elif key == _REFERENCE_URI:
                    self.reference_uri = d.read_text()
                elif key in (_VALIDATE, _LOAD, _INVOKE):
                    self.sequences[key] = d.read_bytes()
                elif key in SEVERABLE:
                    if d.peek_major() == 4:  # severed: the envelope may carry it, its digest must match
                        self.severed[key] = d.raw()
                    else:
                        self.sequences[key] = d.read_bytes()
                elif key in _TOLERATED:
                    d.skip()
                else:
                    raise SuitError(_CBOR_PARSE, (37, key))
            expect_end(d, "the manifest")
            if _VERSION not in seen or self.sequence_number is None or common is None:
                raise SuitError(_CBOR_PARSE, 19)
            # common: components and the shared sequence
            d = Decoder(common)
            n = read_map_keys(d, "common")
            for _ in range(n):
                key = read_key(d)
                if key == _COMPONENTS:
                    if self.components:
                        raise SuitError(_CBOR_PARSE, 27)
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
                        self.components.append(tuple(cid))
                elif key == _SHARED_SEQUENCE:
                    if self.shared is not None:
                        raise SuitError(_CBOR_PARSE, 33)
                    self.shared = d.read_bytes()
                elif key == _DEPENDENCIES:
                    raise SuitError(_COMPONENT_UNSUPPORTED, 34)
                else:
                    raise SuitError(_CBOR_PARSE, (35, key))
            expect_end(d, "common")
            if not self.components:
                raise SuitError(_CBOR_PARSE, 9)
            for key in self.severed:
                member = env.severable.get(key)
                if member is None:
                    continue  # severed and not supplied: tolerated, the member does not run
                if sha256(member).digest() != parse_digest(self.severed[key])[1]:
                    raise SuitError(_UNAUTHORISED, (25, key))
                dm = Decoder(member)
                self.sequences[key] = dm.read_bytes()
            for key in env.severable:
                if key not in self.severed:
                    raise SuitError(_UNAUTHORISED, (26, key))
        except CBORDecodeError as e:
            raise SuitError(_CBOR_PARSE, (20, e))
