# COSE_Mac0 (RFC 9052 section 6.2), tag 17: HMAC 256/64 (4) and HMAC 256/256 (5).
from crypto import InvalidTag
from crypto.util import ct_equal
from cose import algs as _algs
import cose._single as _single
from cose.key import candidates

TAG = 17


def create(key, payload, alg=None, protected=None, unprotected=None, external_aad=b"", detached=False,
           tagged=True, include_kid=True):
    from cose._create import encode_single
    return encode_single(TAG, "MAC0", _algs.mac, key, payload, alg, protected, unprotected, external_aad,
                         detached, tagged, include_kid)


def decode(msg):
    return _single.decode(msg, TAG, "tag")


def verify(msg, keys, payload=None, external_aad=b""):
    """Check a COSE_Mac0 and return its payload (or the detached payload given). Raises InvalidTag."""
    hdr, body, tag = decode(msg)
    alg = hdr.alg
    if alg not in _algs.MAC_ALGS:
        raise _algs._unsupported(alg, "MAC")
    body = _single.payload_for(body, payload)
    data = _single.to_be_checked("MAC0", hdr.protected_bytes, external_aad, body)
    for key in candidates(keys, hdr.kid, alg):
        if ct_equal(_algs.mac(alg, key, data), tag):
            return body
    raise InvalidTag("COSE_Mac0 tag does not verify (%s)" % _algs.name(alg))
