# ECDSA P-256 signing with RFC 6979 deterministic nonces (HMAC-SHA-256): loaded on first use of p256.sign or
# p256.sign_digest, so a device that only verifies (SUIT) or only does ECDH (EAP-NOOB) never pays for it.
# Python big ints are not constant-time: signing leaks timing like any pure-Python implementation.
import hashlib

from crypto._ec import inverse
from crypto.p256 import _N, _bits2int, _mul2, _private_int, _to_affine


def _rfc6979_nonces(d, digest):
    """RFC 6979 section 3.2 candidate nonces k for private scalar d and message digest (HMAC-SHA-256)."""
    from crypto.kdf import HmacSha256

    x = d.to_bytes(32, "big")
    h = (_bits2int(digest) % _N).to_bytes(32, "big")
    v = b"\x01" * 32
    mac = HmacSha256(bytes(32)).mac
    k = mac(v, b"\x00", x, h)
    mac = HmacSha256(k).mac
    v = mac(v)
    k = mac(v, b"\x01", x, h)
    mac = HmacSha256(k).mac
    v = mac(v)
    while True:
        v = mac(v)  # qlen = hlen = 256: one HMAC block per candidate
        cand = int.from_bytes(v, "big")
        if 0 < cand < _N:
            yield cand
        k = mac(v, b"\x00")
        mac = HmacSha256(k).mac
        v = mac(v)


def sign_digest(priv, digest):
    """ECDSA signature r || s (64 bytes) of a message digest, nonce per RFC 6979 with HMAC-SHA-256."""
    d = _private_int(priv)
    e = _bits2int(digest) % _N
    n = _N
    for k in _rfc6979_nonces(d, digest):
        x, y, z = _mul2(k, 0, None)
        r = _to_affine(x, y, z)[0] % n
        if r == 0:
            continue
        s = inverse(k, n) * (e + r * d) % n
        if s == 0:
            continue
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def sign(priv, message):
    """ECDSA P-256 with SHA-256 (COSE ES256): 64-byte r || s."""
    return sign_digest(priv, hashlib.sha256(message).digest())
