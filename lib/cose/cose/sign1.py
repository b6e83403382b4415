# COSE_Sign1 (RFC 9052 section 4.2), tag 18. SUIT uses it detached over the bstr-wrapped manifest digest.
# Verifying loads only what a device needs to check a message; sign() loads cose._create.
from crypto import InvalidSignature
from cose import CoseUnsupported
from cose import headers as _h
from cose.key import candidates

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

TAG = 18
_ES256 = const(-7)
_ESP256 = const(-9)
_EDDSA = const(-8)
_ED25519 = const(-19)
_HSS_LMS = const(-46)


def sign(*args, **kwargs):
    """Encode a COSE_Sign1: sign(key, payload, alg=None, protected=None, unprotected=None, external_aad=b"",
    detached=False, tagged=True, include_kid=True). alg defaults to the key's; the kid goes in the unprotected
    map."""
    from cose._create import sign1
    return sign1(*args, **kwargs)


def decode(msg):
    """(Headers, payload or None, signature) of a COSE_Sign1 (bytes, decoded array or cbor.Tag)."""
    return _h.decode_single(msg, TAG, "signature")


def verify(msg, keys, payload=None, external_aad=b""):
    """Check a COSE_Sign1 with a CoseKey, KeySet or list; return the payload. payload= supplies a detached one.
    Raises InvalidSignature when no candidate key verifies, CoseError/CoseUnsupported for bad structures."""
    hdr, body, sig = decode(msg)
    alg = hdr.alg
    # each primitive is imported only when its algorithm is used
    if alg == _ES256 or alg == _ESP256:
        from crypto.p256 import verify as check
    elif alg == _EDDSA or alg == _ED25519:
        from crypto.ed25519 import verify as check
    elif alg == _HSS_LMS:
        from crypto.lms import hss_verify as check
    else:
        raise CoseUnsupported(1, alg)  # unsupported signature algorithm %s
    body = _h.payload_for(body, payload)
    tbs = _h.to_be_checked("Signature1", hdr.protected_bytes, external_aad, body)
    for key in candidates(keys, hdr.kid, alg):  # only keys that fit alg
        if check(key.public_bytes(), tbs, sig):
            return body
    from cose._text import failed
    raise InvalidSignature(failed(1, alg))
