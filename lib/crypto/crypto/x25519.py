# X25519 (RFC 7748 section 5): the Montgomery ladder on Curve25519 with Python big ints.
#
# Compared with a literal transcription of the RFC pseudo-code, sums and differences are left unreduced (they
# only feed the next product, which is reduced once with `% p`), the scalar bits come from the bytes as small
# ints instead of shifting a big int, the swap is a tuple swap, and the final inversion is extended Euclid
# (_ec.inverse, ~13x faster than pow() on the VM). Python big ints are not constant-time, so neither is this
# (the swap is a branch, Euclid's steps depend on the value): fine for ephemeral ECDH keys, and the best a
# pure-Python implementation can offer.
from crypto import CryptoError
from crypto._ec import inverse
from crypto.util import random_bytes

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

_P = 2**255 - 19
_A24 = const(121665)


def _ladder(k, u):
    """x-coordinate of [k]u; k is the clamped little-endian scalar (bytearray), u an int < p."""
    p = _P
    a24 = _A24
    x2, z2, x3, z3 = 1, 0, u, 1
    swap = 0
    for i in range(31, -1, -1):
        byte = k[i]
        for shift in (7, 6, 5, 4, 3, 2, 1, 0):
            bit = (byte >> shift) & 1
            if swap != bit:
                x2, x3 = x3, x2
                z2, z3 = z3, z2
                swap = bit
            a = x2 + z2
            b = x2 - z2
            aa = a * a % p
            bb = b * b % p
            e = aa - bb
            da = (x3 - z3) * a % p
            cb = (x3 + z3) * b % p
            x3 = da + cb
            x3 = x3 * x3 % p
            z3 = da - cb
            z3 = z3 * z3 % p * u % p
            x2 = aa * bb % p
            z2 = e * (aa + a24 * e) % p
    if swap:
        x2, z2 = x3, z3
    return x2 * inverse(z2, p) % p


def x25519(k, u):
    """The RFC 7748 X25519 function: 32-byte scalar, 32-byte u-coordinate -> 32-byte shared value.

    Raises CryptoError when the result is all zero (u of small order), as RFC 7748 section 6.1 allows."""
    if len(u) != 32:
        raise CryptoError(27)  # X25519 u-coordinate must be 32 bytes
    un = int.from_bytes(u, "little") & ((1 << 255) - 1)  # mask bit 255; values >= p are accepted, reduced
    if len(k) != 32:
        raise CryptoError(26)  # X25519 scalar must be 32 bytes
    k = bytearray(k)  # clamped
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    out = _ladder(k, un % _P)
    if out == 0:
        raise CryptoError(28)  # X25519 result is all zero (small-order point)
    return out.to_bytes(32, "little")


def public_key(k):
    return x25519(k, b"\x09" + bytes(31))  # u = 9, the base point


def generate():
    """(private, public) with a fresh private key from os.urandom."""
    k = random_bytes(32)
    return k, public_key(k)
