# COSE_Sign1 (RFC 9052 section 4.2), tag 18. SUIT uses it detached over the bstr-wrapped manifest digest.
import cbor

from crypto import InvalidSignature
from cose import CoseError
from cose import algs as _algs
from cose import headers as _h
from cose.key import candidates

TAG = 18


def _tbs(protected_bytes, external_aad, payload):
    return cbor.dumps(["Signature1", protected_bytes, bytes(external_aad), payload])


def sign(key, payload, alg=None, protected=None, unprotected=None, external_aad=b"", detached=False,
         tagged=True, include_kid=True):
    """Encode a COSE_Sign1 over payload. alg defaults to the key's; the kid goes in the unprotected map."""
    alg = alg if alg is not None else key.alg
    if alg is None:
        raise CoseError("no algorithm: give alg or a key that names one")
    p, u = _h.build(alg, protected, unprotected, key.kid if include_kid else None)
    pb = _h.encode_protected(p)
    payload = bytes(payload)
    sig = _algs.sign(alg, key, _tbs(pb, external_aad, payload))
    arr = [pb, u, None if detached else payload, sig]
    return cbor.dumps(cbor.Tag(TAG, arr) if tagged else arr)


def decode(msg):
    """(Headers, payload or None, signature) of a COSE_Sign1 (bytes, decoded array or cbor.Tag)."""
    arr = _h.unwrap(msg, TAG, 4)
    hdr = _h.Headers(arr[0], arr[1])
    _h.check_bstr_or_nil(arr[2], "payload")
    if not isinstance(arr[3], (bytes, bytearray)):
        raise CoseError("signature must be a bstr")
    return hdr, arr[2], arr[3]


def verify(msg, keys, payload=None, external_aad=b""):
    """Check a COSE_Sign1 with a CoseKey, KeySet or list; return the payload. payload= supplies a detached one.
    Raises InvalidSignature when no candidate key verifies, CoseError/CoseUnsupported for bad structures."""
    hdr, body, sig = decode(msg)
    alg = hdr.alg
    if alg not in _algs.SIGNATURE_ALGS:
        raise _algs._unsupported(alg, "signature")
    if body is None:
        if payload is None:
            raise CoseError("detached payload: pass payload=")
        body = bytes(payload)
    elif payload is not None and bytes(payload) != body:
        raise CoseError("payload given for a message that carries its own")
    tbs = _tbs(hdr.protected_bytes, external_aad, body)
    for key in candidates(keys, hdr.kid, alg):
        if _algs.verify(alg, key, tbs, sig):
            return body
    raise InvalidSignature("COSE_Sign1 signature does not verify (%s)" % _algs.name(alg))
