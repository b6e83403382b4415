# Header maps (RFC 9052 section 3): the protected map travels as a bstr and is authenticated as those exact
# bytes; a label may appear in only one of the two maps, and only once in each (decoded with unique_keys); every
# label named in crit must be understood. Also what COSE_Sign1 and COSE_Mac0 share: four-element structures
# [protected, unprotected, payload, check] whose check value covers a [context, protected, external_aad, payload]
# array (creating them is in cose._create).
import cbor

from cose import CoseError, CoseUnsupported

ALG = 1
CRIT = 2
CONTENT_TYPE = 3
KID = 4
IV = 5
PARTIAL_IV = 6


class Headers:
    """The protected (as bytes and as a map) and unprotected headers of one COSE layer."""

    def __init__(self, protected_bytes, unprotected, understood=()):
        if not isinstance(protected_bytes, (bytes, bytearray, memoryview)):
            raise CoseError(8)  # protected header must be a bstr
        if not isinstance(unprotected, dict):
            raise CoseError(9)  # unprotected header must be a map
        m = {}
        if len(protected_bytes):
            try:
                m = cbor.loads(protected_bytes, unique_keys=True)
            except cbor.CBORDecodeError as e:
                raise CoseError(6, e)  # protected header is not valid CBOR: %s
            if not isinstance(m, dict):
                raise CoseError(7)  # protected header is not a map
        self.protected = m
        # An empty protected map is authenticated as a zero-length bstr however the sender encoded it
        # (RFC 9052 section 4.4; COSE WG example sign-pass-01 sends h'a0').
        self.protected_bytes = bytes(protected_bytes) if self.protected else b""
        self.unprotected = unprotected
        for label in unprotected:
            if label in self.protected:
                raise CoseError(10, label)  # header label %r appears in both maps
        if CRIT in unprotected:
            raise CoseError(11)  # crit must be a protected header
        crit = self.protected.get(CRIT)
        if crit is not None:
            if not isinstance(crit, list) or not crit:
                raise CoseError(12)  # crit must be a non-empty array
            for label in crit:
                if not isinstance(label, (int, str)):
                    raise CoseError(13)  # crit labels must be int or tstr
                if label not in self.protected:
                    raise CoseError(14, label)  # crit names %r, which is not in the protected header
                if label not in (1, 2, 3, 4, 5, 6) and label not in understood:  # ALG .. PARTIAL_IV
                    raise CoseUnsupported(15, label)  # unknown critical header %r

    def get(self, label, default=None):
        if label in self.protected:
            return self.protected[label]
        return self.unprotected.get(label, default)

    @property
    def alg(self):
        a = self.get(ALG)
        if a is None:
            raise CoseError(16)  # no alg header
        if not isinstance(a, (int, str)):
            raise CoseError(17)  # alg must be int or tstr
        return a

    @property
    def kid(self):
        k = self.get(KID)
        if k is not None and not isinstance(k, (bytes, bytearray)):
            raise CoseError(18)  # kid must be a bstr
        return k


def unwrap(msg, tag, length):
    """The array of a COSE message (bytes, a decoded list, or a cbor.Tag) after checking its tag and length."""
    if isinstance(msg, (bytes, bytearray, memoryview)):
        try:
            msg = cbor.loads(msg, unique_keys=True)  # the only maps in a COSE message are headers
        except cbor.CBORDecodeError as e:
            raise CoseError(19, e)  # not valid CBOR: %s
    if isinstance(msg, cbor.Tag):
        if msg.tag != tag:
            raise CoseError(20, tag, msg.tag)  # expected COSE tag %d, got tag %d
        msg = msg.value
    if not isinstance(msg, list) or len(msg) != length:
        raise CoseError(21, length)  # COSE structure must be an array of %d items
    return msg


def check_bstr_or_nil(v, what):
    if v is not None and not isinstance(v, (bytes, bytearray)):
        raise CoseError(22, what)  # %s must be a bstr or nil


def to_be_checked(context, protected_bytes, external_aad, payload):
    return cbor.dumps([context, protected_bytes, bytes(external_aad), payload])


def decode_single(msg, tag, what):
    """(Headers, payload or None, check value) of a COSE_Sign1 or COSE_Mac0 given as bytes, decoded array or
    cbor.Tag; what names the check value in errors."""
    arr = unwrap(msg, tag, 4)
    hdr = Headers(arr[0], arr[1])
    check_bstr_or_nil(arr[2], "payload")
    if not isinstance(arr[3], (bytes, bytearray)):
        raise CoseError(44, what)  # %s must be a bstr
    return hdr, arr[2], arr[3]


def payload_for(b, payload):
    """The payload to check: the message's own (b), or the detached one the caller supplies (never both)."""
    if b is None:
        if payload is None:
            raise CoseError(45)  # detached payload: pass payload=
        return bytes(payload)
    if payload is not None and bytes(payload) != b:
        raise CoseError(46)  # payload given for a message that carries its own
    return b
