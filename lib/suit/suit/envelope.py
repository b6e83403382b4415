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
    integrated payloads (payload_reader(name)).

    data is the envelope in one buffer (bytes, bytearray, memoryview: walked in place, never copied), or the path
    of a file that holds it: then only the authentication wrapper, the manifest and the severable members are
    read, into one buffer of their size; integrated payloads stay in the file and stream from it."""

    def __init__(self, data, max_size):
        self.path = None
        self.payloads = {}  # name -> memoryview, or (offset, length) in the file at self.path
        if isinstance(data, str):
            self.path = data
            data = _read_members(data, max_size, self.payloads)
        elif len(data) > max_size:
            raise SuitError(_CBOR_PARSE, "envelope of %d bytes is bigger than this device accepts (%d)"
                            % (len(data), max_size))
        self.buf = memoryview(data)
        self.auth = None
        self.manifest = None
        self.manifest_wrapped = None
        self.severable = {}
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

    def payload_reader(self, name):
        """A reader (readinto, close) over integrated payload `name`, or None when the envelope has none."""
        p = self.payloads.get(name)
        if p is None:
            return None
        if isinstance(p, tuple):
            from suit.spool import FileReader
            return FileReader(self.path, p[0], p[1])
        return MemReader(p)

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


class MemReader:
    """A reader over a buffer (integrated payloads, content parameters)."""

    def __init__(self, mv):
        self.mv = mv
        self.pos = 0

    def readinto(self, buf):
        n = min(len(buf), len(self.mv) - self.pos)
        buf[0:n] = self.mv[self.pos:self.pos + n]
        self.pos += n
        return n

    def close(self):
        pass


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


def _read_members(path, max_size, payloads):
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


def _verify_block(blk, payload, trust_anchors):
    """(None, None) when blk (a tagged COSE_Sign1 or COSE_Mac0, detached, over payload) verifies, else (reason,
    message). The block is walked in place: its signature or tag is a memoryview into it, never a copy."""
    if len(blk) == 0:
        return _CBOR_PARSE, "empty authentication block"
    first = blk[0]
    if first == 0xD8 and len(blk) > 1 and blk[1] in (97, 98):  # tags 97, 98: COSE_Mac, COSE_Sign
        name = "Mac" if blk[1] == 97 else "Sign"
        return _COSE_UNSUPPORTED, "COSE_%s is not supported: one COSE_%s%s block per key" % (name, name,
                                                                                           "01"[blk[1] - 97])
    if first != _COSE_SIGN1 and first != _COSE_MAC0:
        return _COSE_UNSUPPORTED, "authentication block is not a tagged COSE_Sign1 or COSE_Mac0"
    from cose import algs
    from cose.headers import Headers
    from cose.key import candidates
    sign = first == _COSE_SIGN1
    try:
        try:
            d = Decoder(blk, unique_keys=True)
            d.read_tag()
            if d.read_array_header() != 4:
                raise SuitError(_UNAUTHORISED, "a COSE_%s is an array of 4" % ("Sign1" if sign else "Mac0"))
            protected = d.read_bytes()
            if d.peek_major() != 5:
                raise SuitError(_UNAUTHORISED, "COSE unprotected headers are not a map")
            unprotected = d.decode()
            if d.peek_major() == 7 and blk[d.pos] == 0xF6:  # nil: detached, as SUIT sends it
                d.pos += 1
            elif bytes(d.read_bytes()) != bytes(payload):
                raise SuitError(_UNAUTHORISED, "COSE payload is not the manifest digest")
            check = d.read_bytes()
            expect_end(d, "the COSE block")
        except CBORDecodeError as e:
            raise SuitError(_UNAUTHORISED, "malformed COSE block: %s" % e)
        hdr = Headers(protected, unprotected)
        alg = hdr.alg
        if alg not in (algs.SIGNATURE_ALGS if sign else algs.MAC_ALGS):
            raise cose.CoseUnsupported("unsupp", "signature" if sign else "MAC", alg)
        # the Sig_structure / MAC_structure (RFC 9052 sections 4.4, 6.3), external AAD empty
        tbs = cbor.dumps(["Signature1" if sign else "MAC0", hdr.protected_bytes, b"", bytes(payload)])
        for key in candidates(trust_anchors, hdr.kid, alg):
            if sign:
                if algs.verify(alg, key, tbs, check):
                    return None, None
            elif ct_equal(algs.mac(alg, key, tbs), check):
                return None, None
        return _UNAUTHORISED, "COSE_%s does not verify (%s)" % ("Sign1 signature" if sign else "Mac0 tag",
                                                               algs.name(alg))
    except SuitError as e:
        return e.reason, e.args[0]
    except cose.CoseUnsupported as e:
        return _ALG_UNSUPPORTED, str(e)
    except cose.CoseError as e:  # includes "no key for this algorithm": not authorised by any anchor
        return _UNAUTHORISED, str(e)
    except CryptoError as e:  # a malformed key
        return _UNAUTHORISED, str(e)


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
