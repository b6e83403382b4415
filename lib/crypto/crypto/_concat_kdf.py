# NIST SP 800-56C one-step (concatenation) KDF with SHA-256, as EAP-NOOB (RFC 9140) uses it. Loaded on first
# use of crypto.kdf.concat_kdf_sha256, so a device pays for it only while bootstrapping. Use crypto.kdf.
import hashlib

from crypto import CryptoError


def concat_kdf_sha256(z, length, other_info):
    """NIST SP 800-56C one-step KDF with SHA-256: H(counter32 || Z || OtherInfo) for counter = 1, 2, ..."""
    if not isinstance(length, int) or length < 0 or length > 1 << 16:
        raise CryptoError("concat KDF: bad length")
    out = bytearray(length)
    pos = 0
    counter = bytearray(4)
    i = 1
    while pos < length:
        counter[0] = i >> 24
        counter[1] = (i >> 16) & 0xFF
        counter[2] = (i >> 8) & 0xFF
        counter[3] = i & 0xFF
        h = hashlib.sha256(counter)
        h.update(z)
        h.update(other_info)
        d = h.digest()
        take = min(32, length - pos)
        out[pos:pos + take] = d[:take] if take < 32 else d
        pos += take
        i += 1
    return bytes(out)
