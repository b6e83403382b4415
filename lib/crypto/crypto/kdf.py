# HMAC-SHA256 (RFC 2104), HKDF-SHA256 (RFC 5869) and the NIST SP 800-56C one-step (concatenation) KDF (in
# crypto._concat_kdf, loaded on first use of kdf.concat_kdf_sha256).
import hashlib

from crypto import CryptoError

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

_BLOCK = const(64)
_HASH_LEN = const(32)


# the inner and outer pads as 512-bit integers (constants: folded by the compiler, no global names): a padded key
# is one integer XOR (no per-byte loop, no tables)
_IPAD = const(0x36 * ((1 << 8 * _BLOCK) - 1) // 255)
_OPAD = const(0x5C * ((1 << 8 * _BLOCK) - 1) // 255)


class HmacSha256:
    """HMAC-SHA256 with the padded keys computed once, for many MACs under one key (HKDF, EAP-NOOB)."""

    def __init__(self, key):
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        k = int.from_bytes(key, "big") << (8 * (_BLOCK - len(key)))
        self._ipad = (k ^ _IPAD).to_bytes(_BLOCK, "big")
        self._opad = (k ^ _OPAD).to_bytes(_BLOCK, "big")

    def mac(self, *chunks):
        h = hashlib.sha256(self._ipad)
        for c in chunks:
            h.update(c)
        o = hashlib.sha256(self._opad)
        o.update(h.digest())
        return o.digest()


def hmac_sha256(key, data):
    return HmacSha256(key).mac(data)


def hkdf_extract(salt, ikm):
    if salt is None or len(salt) == 0:
        salt = bytes(_HASH_LEN)
    return hmac_sha256(salt, ikm)


def hkdf_expand(prk, info, length):
    if not isinstance(length, int) or length < 0 or length > 255 * _HASH_LEN:
        raise CryptoError(8)  # HKDF: length must be 0..8160
    if len(prk) < _HASH_LEN:
        raise CryptoError(9)  # HKDF: PRK shorter than the hash
    mac = HmacSha256(prk)
    out = bytearray(length)
    t = b""
    pos = 0
    counter = bytearray(1)
    i = 1
    while pos < length:
        counter[0] = i
        t = mac.mac(t, info, counter)
        take = min(_HASH_LEN, length - pos)
        out[pos:pos + take] = t[:take] if take < _HASH_LEN else t
        pos += take
        i += 1
    return bytes(out)


def hkdf_sha256(salt, ikm, info, length):
    return hkdf_expand(hkdf_extract(salt, ikm), info, length)


def __getattr__(name):
    if name == "concat_kdf_sha256":  # EAP-NOOB's KDF, needed only while bootstrapping
        from crypto._concat_kdf import concat_kdf_sha256
        return concat_kdf_sha256
    raise AttributeError(name)
