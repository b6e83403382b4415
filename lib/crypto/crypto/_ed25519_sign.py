# Ed25519 key generation, key derivation and signing (RFC 8032), loaded on first use of ed25519.public_key, sign
# or generate, so a verify-only device never pays for it. Not constant-time: Python big ints are not.
from crypto import CryptoError
from crypto import sha512 as _sha512
from crypto._ed25519_math import _double_scalar, _encode_point
from crypto.ed25519 import _L


def _base_mult(k):
    """[k]B for a secret scalar (signing/public keys on the host and in tests)."""
    return _double_scalar(k % _L, 0, None)  # B has order L


def _expand_seed(seed):
    if len(seed) != 32:
        raise CryptoError("Ed25519 private key must be 32 bytes")
    hd = _sha512.digest(seed)
    a = int.from_bytes(hd[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return a, hd[32:]


def public_key(seed):
    """32-byte public key for a 32-byte private key (seed)."""
    a, _ = _expand_seed(seed)
    x, y, z, _ = _base_mult(a)
    return _encode_point(x, y, z)


def generate():
    """(private seed, public key) with a fresh 32-byte seed from os.urandom."""
    from crypto.util import random_bytes

    seed = random_bytes(32)
    return seed, public_key(seed)


def sign(seed, message):
    """Deterministic RFC 8032 signature (64 bytes). Not constant-time: Python big ints are not."""
    a, prefix = _expand_seed(seed)
    x, y, z, _ = _base_mult(a)
    pub = _encode_point(x, y, z)
    r = int.from_bytes(_sha512.digest(prefix + bytes(message)), "little") % _L
    x, y, z, _ = _base_mult(r)
    rb = _encode_point(x, y, z)
    hobj = _sha512.new(rb)
    hobj.update(pub)
    hobj.update(message)
    h = int.from_bytes(hobj.digest(), "little") % _L
    s = (r + h * a) % _L
    return rb + s.to_bytes(32, "little")
