# Small helpers every primitive shares: constant-time comparison and the random source.
from crypto import CryptoError


def ct_equal(a, b):
    """Compare two byte strings in time that depends only on their lengths (lengths are not secret)."""
    if len(a) != len(b):
        return False
    acc = 0
    for i in range(len(a)):
        acc |= a[i] ^ b[i]
    return acc == 0


def random_bytes(n):
    """n bytes from the port's cryptographic random source (os.urandom)."""
    if not isinstance(n, int) or n < 0:
        raise CryptoError(23)  # random_bytes: bad length
    try:
        import os
        urandom = os.urandom
    except (ImportError, AttributeError):
        urandom = None
    if urandom is None:
        raise CryptoError(24)  # this port has no os.urandom: no cryptographic random source
    return urandom(n)


def xor_bytes(a, b):
    """a XOR b for equal-length byte strings, as one bigint operation instead of a per-byte loop."""
    n = len(a)
    if len(b) != n:
        raise CryptoError(25)  # xor_bytes: length mismatch
    if n == 0:
        return b""
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(n, "big")
