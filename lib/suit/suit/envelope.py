# The SUIT envelope and manifest (draft-ietf-suit-manifest-37 section 8), read with cbor.Decoder: every member
# is a memoryview into the caller's envelope buffer, so nothing large is copied; the authentication wrapper is
# checked (detached COSE_Sign1/COSE_Mac0 over the bstr-wrapped SUIT_Digest) before the manifest is parsed.
from hashlib import sha256

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
        raise SuitError(_CBOR_PARSE, "%s: indefinite-length map" % what)
    return n


def expect_end(dec, what):
    if not dec.at_end():
        raise SuitError(_CBOR_PARSE, "trailing bytes after " + what)


def parse_digest(b):
    """(algorithm, digest memoryview) of an encoded SUIT_Digest; only SHA-256 is supported."""
    try:
        d = Decoder(b)
        if d.read_array_header() != 2:
            raise SuitError(_CBOR_PARSE, "bad SUIT_Digest")
        alg = d.read_int()
        value = d.read_bytes()
        if not d.at_end():
            raise SuitError(_CBOR_PARSE, "bad SUIT_Digest")
    except CBORDecodeError as e:
        raise SuitError(_CBOR_PARSE, "bad SUIT_Digest: %s" % e)
    if alg != _DIGEST_SHA256:
        raise SuitError(_ALG_UNSUPPORTED, "digest algorithm %d (only -16)" % alg)
    if len(value) != 32:
        raise SuitError(_CBOR_PARSE, "bad SUIT_Digest")
    return alg, value


def digest_matches(encoded_digest, data):
    """Whether sha256(data) equals the encoded SUIT_Digest's value (compared in constant time)."""
    return ct_equal(sha256(data).digest(), parse_digest(encoded_digest)[1])


class Envelope:
    """The envelope's members as memoryviews: auth (the wrapper's contents), manifest (contents) and
    manifest_wrapped (with its bstr head, what the digest covers), severable members (bstr-wrapped, by key) and
    integrated payloads (by name)."""

    def __init__(self, data, max_size):
        if len(data) > max_size:
            raise SuitError(_CBOR_PARSE, "envelope of %d bytes is bigger than this device accepts (%d)"
                            % (len(data), max_size))
        self.buf = memoryview(data)
        self.auth = None
        self.manifest = None
        self.manifest_wrapped = None
        self.severable = {}
        self.payloads = {}
        try:
            d = Decoder(self.buf)
            if d.peek_major() == 6:
                tag = d.read_tag()
                if tag != _TAG_ENVELOPE:
                    raise SuitError(_CBOR_PARSE, "envelope tag %d (expected 107)" % tag)
            n = read_map_keys(d, "envelope")
            seen = []
            for _ in range(n):
                if d.peek_major() == 3:
                    name = d.read_text()
                    if name in self.payloads:
                        raise SuitError(_CBOR_PARSE, "integrated payload %r given twice" % name)
                    self.payloads[name] = d.read_bytes()
                    continue
                key = d.read_int()
                if key in seen:
                    raise SuitError(_CBOR_PARSE, "envelope member %d given twice" % key)
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
                    raise SuitError(_CBOR_PARSE, "unsupported envelope member %d" % key)
            if not d.at_end():
                raise SuitError(_CBOR_PARSE, "%d bytes after the envelope" % d.remaining())
            if self.auth is None or self.manifest is None:
                raise SuitError(_CBOR_PARSE, "envelope without %s" % ("authentication" if self.auth is None
                                                                       else "manifest"))
        except CBORDecodeError as e:
            raise SuitError(_CBOR_PARSE, "malformed envelope: %s" % e)

    def authenticate(self, trust_anchors):
        """Check the authentication wrapper: one block must verify with a trust anchor, and the digest it
        covers must be the manifest's. Returns the encoded SUIT_Digest (memoryview)."""
        try:
            d = Decoder(self.auth)
            n = d.read_array_header()
            if n is None or n < 2:
                raise SuitError(_UNAUTHORISED, "no authentication block")
            digest = d.read_bytes()
            blocks = []
            for _ in range(n - 1):
                blocks.append(d.read_bytes())
            expect_end(d, "the authentication wrapper")
        except CBORDecodeError as e:
            raise SuitError(_CBOR_PARSE, "malformed envelope: %s" % e)
        want = parse_digest(digest)[1]
        failure = None  # a wrong key or signature outranks an algorithm this device lacks
        for blk in blocks:
            r, w = _verify_block(blk, digest, trust_anchors)
            if r is None:
                failure = None
                break
            if failure is None or r == _UNAUTHORISED:
                failure = (r, w)
        if failure is not None:
            raise SuitError(failure[0], failure[1])
        if not ct_equal(sha256(self.manifest_wrapped).digest(), want):
            raise SuitError(_UNAUTHORISED, "manifest digest does not match the authenticated one")
        return digest


def _verify_block(blk, payload, trust_anchors):
    """(None, None) when blk verifies, else (reason, message)."""
    if len(blk) == 0:
        return _CBOR_PARSE, "empty authentication block"
    first = blk[0]
    if first == _COSE_SIGN1:
        from cose import sign1 as mod
    elif first == _COSE_MAC0:
        from cose import mac0 as mod
    elif first == 0xD8 and len(blk) > 1 and blk[1] in (97, 98):  # tags 97, 98: COSE_Mac, COSE_Sign
        name = "Mac" if blk[1] == 97 else "Sign"
        return _COSE_UNSUPPORTED, "COSE_%s is not supported: one COSE_%s%s block per key" % (name, name,
                                                                                           "01"[blk[1] - 97])
    else:
        return _COSE_UNSUPPORTED, "authentication block is not a tagged COSE_Sign1 or COSE_Mac0"
    try:
        mod.verify(bytes(blk), trust_anchors, payload=bytes(payload))
    except cose.CoseUnsupported as e:
        return _ALG_UNSUPPORTED, str(e)
    except cose.CoseError as e:  # includes "no key for this algorithm": not authorised by any anchor
        return _UNAUTHORISED, str(e)
    except CryptoError as e:  # InvalidSignature / InvalidTag
        return _UNAUTHORISED, str(e)
    return None, None


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
                raise SuitError(_CBOR_PARSE, "manifest has a tag other than 1070")
            n = read_map_keys(d, "manifest")
            common = None
            seen = []
            for _ in range(n):
                key = d.read_int()
                if key in seen:
                    raise SuitError(_CBOR_PARSE, "manifest member %d given twice" % key)
                seen.append(key)
                if key == _VERSION:
                    v = d.read_uint()
                    if v != 1:
                        raise SuitError(_CBOR_PARSE, "manifest version %d (only 1)" % v)
                elif key == _SEQUENCE_NUMBER:
                    self.sequence_number = d.read_uint()
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
                    raise SuitError(_CBOR_PARSE, "unsupported manifest member %d" % key)
            expect_end(d, "the manifest")
            if _VERSION not in seen or self.sequence_number is None or common is None:
                raise SuitError(_CBOR_PARSE, "manifest without version, sequence number or common")
            self._parse_common(common, max_components)
            for key in self.severed:
                member = env.severable.get(key)
                if member is None:
                    continue  # severed and not supplied: tolerated, the member does not run
                if not digest_matches(self.severed[key], member):
                    raise SuitError(_UNAUTHORISED, "severable member %d does not match its digest" % key)
                dm = Decoder(member)
                self.sequences[key] = dm.read_bytes()
            for key in env.severable:
                if key not in self.severed:
                    raise SuitError(_UNAUTHORISED, "envelope member %d is not severed from this manifest" % key)
        except CBORDecodeError as e:
            raise SuitError(_CBOR_PARSE, "malformed manifest: %s" % e)

    def _parse_common(self, common, max_components):
        d = Decoder(common)
        n = read_map_keys(d, "common")
        for _ in range(n):
            key = d.read_int()
            if key == _COMPONENTS:
                if self.components:
                    raise SuitError(_CBOR_PARSE, "components given twice")
                count = d.read_array_header()
                if count is None or count < 1:
                    raise SuitError(_CBOR_PARSE, "components must be a non-empty array")
                if count > max_components:
                    raise SuitError(_COMPONENT_UNSUPPORTED, "%d components (this device takes %d)"
                                    % (count, max_components))
                for _ in range(count):
                    parts = d.read_array_header()
                    if parts is None or parts > 8:
                        raise SuitError(_COMPONENT_UNSUPPORTED, "component identifier too long")
                    cid = []
                    for _ in range(parts):
                        cid.append(bytes(d.read_bytes()))
                    self.components.append(tuple(cid))
            elif key == _SHARED_SEQUENCE:
                if self.shared is not None:
                    raise SuitError(_CBOR_PARSE, "shared sequence given twice")
                self.shared = d.read_bytes()
            elif key == _DEPENDENCIES:
                raise SuitError(_COMPONENT_UNSUPPORTED, "dependency manifests are not supported")
            else:
                raise SuitError(_CBOR_PARSE, "unsupported common member %d" % key)
        expect_end(d, "common")
        if not self.components:
            raise SuitError(_CBOR_PARSE, "manifest names no components")
