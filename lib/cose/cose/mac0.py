# COSE_Mac0 (RFC 9052 section 6.2), tag 17: HMAC 256/64 (4) and HMAC 256/256 (5).
import cbor

from crypto import InvalidTag
from crypto.util import ct_equal
from cose import CoseError
from cose import algs as _algs
from cose import headers as _h
from cose.key import candidates

TAG = 17


def _mac_structure(protected_bytes, external_aad, payload):
    return cbor.dumps(["MAC0", protected_bytes, bytes(external_aad), payload])


def create(key, payload, alg=None, protected=None, unprotected=None, external_aad=b"", detached=False,
           tagged=True, include_kid=True):
    alg = alg if alg is not None else key.alg
    if alg is None:
        raise CoseError("no algorithm: give alg or a key that names one")
    p, u = _h.build(alg, protected, unprotected, key.kid if include_kid else None)
    pb = _h.encode_protected(p)
    payload = bytes(payload)
    tag = _algs.mac(alg, key, _mac_structure(pb, external_aad, payload))
    arr = [pb, u, None if detached else payload, tag]
    return cbor.dumps(cbor.Tag(TAG, arr) if tagged else arr)


def decode(msg):
    arr = _h.unwrap(msg, TAG, 4)
    hdr = _h.Headers(arr[0], arr[1])
    _h.check_bstr_or_nil(arr[2], "payload")
    if not isinstance(arr[3], (bytes, bytearray)):
        raise CoseError("tag must be a bstr")
    return hdr, arr[2], arr[3]


def verify(msg, keys, payload=None, external_aad=b""):
    """Check a COSE_Mac0 and return its payload (or the detached payload given). Raises InvalidTag."""
    hdr, body, tag = decode(msg)
    alg = hdr.alg
    if alg not in _algs.MAC_ALGS:
        raise _algs._unsupported(alg, "MAC")
    if body is None:
        if payload is None:
            raise CoseError("detached payload: pass payload=")
        body = bytes(payload)
    elif payload is not None and bytes(payload) != body:
        raise CoseError("payload given for a message that carries its own")
    data = _mac_structure(hdr.protected_bytes, external_aad, body)
    for key in candidates(keys, hdr.kid, alg):
        if ct_equal(_algs.mac(alg, key, data), tag):
            return body
    raise InvalidTag("COSE_Mac0 tag does not verify (%s)" % _algs.name(alg))
