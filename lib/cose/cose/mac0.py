# COSE_Mac0 (RFC 9052 section 6.2), tag 17: HMAC 256/64 (4) and HMAC 256/256 (5).
from crypto import InvalidTag
from crypto.util import ct_equal
from cose import CoseUnsupported
from cose import headers as _h
from cose.key import candidates, check_key

TAG = 17


def _tag_len(alg):
    if alg == 4:  # HMAC 256/64
        return 8
    if alg == 5:  # HMAC 256/256
        return 32
    raise CoseUnsupported(2, alg)  # unsupported MAC algorithm %s


def mac(alg, key, data):
    """The tag of data under key (an alg-sized prefix of HMAC-SHA256)."""
    n = _tag_len(alg)
    check_key(alg, key)
    from crypto.kdf import hmac_sha256
    return hmac_sha256(key.k, data)[:n]


def create(*args, **kwargs):
    """Encode a COSE_Mac0: create(key, payload, alg=None, protected=None, unprotected=None, external_aad=b"",
    detached=False, tagged=True, include_kid=True)."""
    from cose._create import mac0
    return mac0(*args, **kwargs)


def decode(msg):
    return _h.decode_single(msg, TAG, "tag")


def verify(msg, keys, payload=None, external_aad=b""):
    """Check a COSE_Mac0 and return its payload (or the detached payload given). Raises InvalidTag."""
    hdr, body, tag = decode(msg)
    alg = hdr.alg
    _tag_len(alg)
    body = _h.payload_for(body, payload)
    data = _h.to_be_checked("MAC0", hdr.protected_bytes, external_aad, body)
    for key in candidates(keys, hdr.kid, alg):
        if ct_equal(mac(alg, key, data), tag):
            return body
    from cose._text import failed
    raise InvalidTag(failed(2, alg))
