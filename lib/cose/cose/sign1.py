# COSE_Sign1 (RFC 9052 section 4.2), tag 18. SUIT uses it detached over the bstr-wrapped manifest digest.
from crypto import InvalidSignature
from cose import algs as _algs
import cose._single as _single
from cose.key import candidates

TAG = 18


def sign(key, payload, alg=None, protected=None, unprotected=None, external_aad=b"", detached=False,
         tagged=True, include_kid=True):
    """Encode a COSE_Sign1 over payload. alg defaults to the key's; the kid goes in the unprotected map."""
    from cose._create import encode_single, sign
    return encode_single(TAG, "Signature1", sign, key, payload, alg, protected, unprotected, external_aad,
                         detached, tagged, include_kid)


def decode(msg):
    """(Headers, payload or None, signature) of a COSE_Sign1 (bytes, decoded array or cbor.Tag)."""
    return _single.decode(msg, TAG, "signature")


def verify(msg, keys, payload=None, external_aad=b""):
    """Check a COSE_Sign1 with a CoseKey, KeySet or list; return the payload. payload= supplies a detached one.
    Raises InvalidSignature when no candidate key verifies, CoseError/CoseUnsupported for bad structures."""
    hdr, body, sig = decode(msg)
    alg = hdr.alg
    if alg not in _algs.SIGNATURE_ALGS:
        raise _algs._unsupported(alg, "signature")
    body = _single.payload_for(body, payload)
    tbs = _single.to_be_checked("Signature1", hdr.protected_bytes, external_aad, body)
    for key in candidates(keys, hdr.kid, alg):
        if _algs.verify(alg, key, tbs, sig):
            return body
    raise InvalidSignature("COSE_Sign1 signature does not verify (%s)" % _algs.name(alg))
