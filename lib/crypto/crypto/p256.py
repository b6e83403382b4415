# NIST P-256 (secp256r1): ECDH, key generation and ECDSA verify; ECDSA sign with RFC 6979 deterministic nonces
# (SHA-256) is in crypto._p256_sign, loaded on first use of p256.sign or sign_digest.
#
# Jacobian coordinates (x = X/Z^2, y = Y/Z^3, a = -3 doubling), one `% p` per product with sums of products
# reduced once, and u1*G + u2*Q as one interleaved width-w NAF walk (Straus/Shamir): a small table of affine
# odd multiples of G (constants, _G_BYTES, read as the walk needs them) and a per-call Jacobian table for Q.
# verify needs no field inversion (r is compared as r * Z^2 == X); the others use extended Euclid.
# Python big ints are not constant-time: signing leaks timing like any pure-Python implementation.
import hashlib

from crypto import CryptoError
from crypto._ec import inverse, wnaf as _wnaf
from crypto.util import random_bytes

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_B = const(0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B)

_G_WIDTH = const(6)  # 16 affine points 1G, 3G, ..., 31G (_G_BYTES)
_Q_WIDTH = const(4)  # 4 Jacobian points per call: ~1.5 KiB on the 64-bit VM (width 5: twice that, ~3% faster)
# 1G, 3G, ..., 31G, each x || y (big-endian): constants, so a verification builds no table (building one took
# ~7 KB of the heap for a moment and kept 2.6 KB; test_g_table_is_odd_multiples_of_g recomputes them)
_G_BYTES = (
    b"\x6b\x17\xd1\xf2\xe1\x2c\x42\x47\xf8\xbc\xe6\xe5\x63\xa4\x40\xf2\x77\x03\x7d\x81\x2d\xeb\x33\xa0\xf4\xa1\x39\x45\xd8\x98\xc2\x96"
    b"\x4f\xe3\x42\xe2\xfe\x1a\x7f\x9b\x8e\xe7\xeb\x4a\x7c\x0f\x9e\x16\x2b\xce\x33\x57\x6b\x31\x5e\xce\xcb\xb6\x40\x68\x37\xbf\x51\xf5"
    b"\x5e\xcb\xe4\xd1\xa6\x33\x0a\x44\xc8\xf7\xef\x95\x1d\x4b\xf1\x65\xe6\xc6\xb7\x21\xef\xad\xa9\x85\xfb\x41\x66\x1b\xc6\xe7\xfd\x6c"
    b"\x87\x34\x64\x0c\x49\x98\xff\x7e\x37\x4b\x06\xce\x1a\x64\xa2\xec\xd8\x2a\xb0\x36\x38\x4f\xb8\x3d\x9a\x79\xb1\x27\xa2\x7d\x50\x32"
    b"\x51\x59\x0b\x7a\x51\x51\x40\xd2\xd7\x84\xc8\x56\x08\x66\x8f\xdf\xef\x8c\x82\xfd\x1f\x5b\xe5\x24\x21\x55\x4a\x0d\xc3\xd0\x33\xed"
    b"\xe0\xc1\x7d\xa8\x90\x4a\x72\x7d\x8a\xe1\xbf\x36\xbf\x8a\x79\x26\x0d\x01\x2f\x00\xd4\xd8\x08\x88\xd1\xd0\xbb\x44\xfd\xa1\x6d\xa4"
    b"\x8e\x53\x3b\x6f\xa0\xbf\x7b\x46\x25\xbb\x30\x66\x7c\x01\xfb\x60\x7e\xf9\xf8\xb8\xa8\x0f\xef\x5b\x30\x06\x28\x70\x31\x87\xb2\xa3"
    b"\x73\xeb\x1d\xbd\xe0\x33\x18\x36\x6d\x06\x9f\x83\xa6\xf5\x90\x00\x53\xc7\x36\x33\xcb\x04\x1b\x21\xc5\x5e\x1a\x86\xc1\xf4\x00\xb4"
    b"\xea\x68\xd7\xb6\xfe\xdf\x0b\x71\x87\x89\x38\xd5\x1d\x71\xf8\x72\x9e\x0a\xcb\x8c\x2c\x6d\xf8\xb3\xd7\x9e\x8a\x4b\x90\x94\x9e\xe0"
    b"\x2a\x27\x44\xc9\x72\xc9\xfc\xe7\x87\x01\x4a\x96\x4a\x8e\xa0\xc8\x4d\x71\x4f\xea\xa4\xde\x82\x3f\xe8\x5a\x22\x4a\x4d\xd0\x48\xfa"
    b"\x3e\xd1\x13\xb7\x88\x3b\x4c\x59\x06\x38\x37\x9d\xb0\xc2\x1c\xda\x16\x74\x2e\xd0\x25\x50\x48\xbf\x43\x33\x91\xd3\x74\xbc\x21\xd1"
    b"\x90\x99\x20\x9a\xcc\xc4\xc8\xa2\x24\xc8\x43\xaf\xa4\xf4\xc6\x8a\x09\x0d\x04\xda\x5e\x98\x89\xda\xe2\xf8\xee\xfc\xe8\x2a\x37\x40"
    b"\x17\x7c\x83\x7a\xe0\xac\x49\x5a\x61\x80\x5d\xf2\xd8\x5e\xe2\xfc\x79\x2e\x28\x4b\x65\xea\xd5\x8a\x98\xe1\x5d\x9d\x46\x07\x2c\x01"
    b"\x63\xbb\x58\xcd\x4e\xbe\xa5\x58\xa2\x40\x91\xad\xb4\x0f\x4e\x72\x26\xee\x14\xc3\xa1\xfb\x4d\xf3\x9c\x43\xbb\xe2\xef\xc7\xbf\xd8"
    b"\xf0\x45\x4d\xc6\x97\x1a\xba\xe7\xad\xfb\x37\x89\x99\x88\x82\x65\xae\x03\xaf\x92\xde\x3a\x0e\xf1\x63\x66\x8c\x63\xe5\x9b\x9d\x5f"
    b"\xb5\xb9\x3e\xe3\x59\x2e\x2d\x1f\x4e\x65\x94\xe5\x1f\x96\x43\xe6\x2a\x3b\x21\xce\x75\xb5\xfa\x3f\x47\xe5\x9c\xde\x0d\x03\x4f\x36"
    b"\x47\x77\x69\x04\xc0\xf1\xcc\x3a\x9c\x09\x84\xb6\x6f\x75\x30\x1a\x5f\xa6\x86\x78\xf0\xd6\x4a\xf8\xba\x1a\xbc\xe3\x47\x38\xa7\x3e"
    b"\xaa\x00\x5e\xe6\xb5\xb9\x57\x28\x62\x31\x85\x65\x77\x64\x8e\x83\x81\xb2\x80\x44\x28\xd5\x73\x3f\x32\xf7\x87\xff\x71\xf1\xfc\xdc"
    b"\xcb\x6d\x28\x61\x10\x2c\x0c\x25\xce\x39\xb7\xc1\x71\x08\xc5\x07\x78\x2c\x45\x22\x57\x88\x48\x95\xc1\xfc\x7b\x74\xab\x03\xed\x83"
    b"\x58\xd7\x61\x4b\x24\xd9\xef\x51\x5c\x35\xe7\x10\x0d\x6d\x6c\xe4\xa4\x96\x71\x6e\x30\xfa\x3e\x03\xe3\x91\x50\x75\x2b\xce\xcd\xaa"
    b"\x32\x50\xfc\xf6\x86\x63\x7c\x7b\x2e\x4a\xc8\x6e\xb4\x73\xbc\xa5\x3a\x58\x21\x39\xf4\x2b\x15\x23\xfd\x76\x36\x4e\x67\x39\x9e\x83"
    b"\x42\xe7\xc3\x42\x66\x7d\x35\x93\x97\xb3\x09\x0d\x1d\x7e\xb8\x8c\x89\x7c\xd3\xc3\x3b\x56\x6a\x82\x15\xde\x24\xa0\x71\xd4\x8c\x09"
    b"\x0e\x91\xc7\x23\x9c\x26\x40\xd7\xd2\x8a\x3e\x39\xd4\x58\x3f\xa6\x3c\x0b\xc0\xa5\xdf\x64\xa4\xfe\x67\x2e\x57\x30\x45\xca\x78\x96"
    b"\x5d\xf6\x5c\x3b\x55\x0d\xba\x22\x1a\x22\x73\x3b\xb8\xe0\xbd\x6d\x7e\x68\x83\x35\x75\xe7\xa5\xae\x13\x80\x46\x54\x31\x40\xad\x55"
    b"\x3a\x67\xe2\x55\x4b\x0c\x0b\xb6\x85\xf4\xf5\x2d\x8c\x07\xfa\x84\x41\x65\x2f\xc5\xb7\x6f\x1b\x24\x84\xa4\xdc\x45\xf2\x00\xd6\x87"
    b"\x27\xd0\xf1\x87\x2f\x1f\xcf\x43\x26\xda\xf2\x67\x16\x3a\xfb\x0d\x8c\x18\x8a\xf7\x35\xa7\x61\x8a\xa9\xed\x16\xb3\x02\xf7\x93\x24"
    b"\x18\x4f\xfa\x58\x19\xd8\x0d\x51\xde\xba\x2f\xac\x46\x11\xf3\x78\x57\x63\x55\xbd\x68\x3e\x54\xab\xf2\xe2\x01\x17\x3b\x08\x83\xd1"
    b"\xc0\xa6\x6e\x27\x66\x88\xf3\x59\xa4\xc6\xd9\x08\x26\xcb\x99\x95\x45\xbd\xec\xcc\x63\xf0\x49\x16\x20\xd2\x42\xc2\x60\x90\x6e\x6f"
    b"\xd6\xd3\x3a\xde\xfa\x19\x5b\x07\xa7\xc3\x6d\xa0\x90\x85\x3b\x8c\xfd\x8c\xd1\xc6\x88\xb5\x8a\x41\xde\xdd\x69\x3d\x1c\x78\x4d\xef"
    b"\x84\xaa\xba\x16\xee\x19\x5d\x7e\x3f\x78\x24\x5f\x55\x8a\x5d\xcb\x09\xa1\x66\xab\x4b\x95\xed\xed\x55\x0c\x12\x45\x93\xd1\xbc\xa6"
    b"\x30\x1d\x9e\x50\x2d\xc7\xe0\x5d\xa8\x5d\xa0\x26\xa7\xae\x9a\xa0\xfa\xc9\xdb\x7d\x52\xa9\x5b\x3e\x3e\x3f\x9a\xa0\xa1\xb4\x5b\x8b"
    b"\x65\x51\xb6\xf6\xb3\x06\x12\x23\xe0\xd2\x3c\x02\x6b\x01\x7d\x72\x29\x8d\x9a\xe4\x68\x87\xca\x61\xd5\x8d\xb6\xae\xa1\x7e\xe2\x67"
)


# ---- encoding and validation ------------------------------------------------------------------------------

def decode_public_key(pub):
    """65-byte uncompressed (0x04 || x || y) or 64-byte x || y -> (x, y); CryptoError unless the point is on
    the curve with coordinates below p (the point at infinity has no such encoding)."""
    if len(pub) == 65:
        if pub[0] != 4:
            raise CryptoError(17)  # P-256 point: only the uncompressed form (0x04) is supported
        pub = pub[1:]
    elif len(pub) != 64:
        raise CryptoError(18)  # P-256 point must be 65 or 64 bytes
    x = int.from_bytes(pub[:32], "big")
    y = int.from_bytes(pub[32:], "big")
    if x >= _P or y >= _P or (y * y - (x * x - 3) * x - _B) % _P:  # not below p, or not on the curve
        raise CryptoError(19)  # P-256 point is not on the curve
    return x, y


def _private_int(priv):
    if len(priv) != 32:
        raise CryptoError(20)  # P-256 private key must be 32 bytes
    d = int.from_bytes(priv, "big")
    if not 0 < d < _N:
        raise CryptoError(21)  # P-256 private key out of range
    return d


# ---- Jacobian arithmetic (used outside the hot loop) -------------------------------------------------------

def _jdouble(x, y, z):
    p = _P
    delta = z * z % p
    gamma = y * y % p
    beta = x * gamma % p
    alpha = 3 * (x - delta) * (x + delta) % p
    x3 = (alpha * alpha - 8 * beta) % p
    return x3, (alpha * (4 * beta - x3) - 8 * gamma * gamma) % p, 2 * y * z % p


def _jadd(a, b):
    """General Jacobian addition of two (X, Y, Z) tuples, handling infinity (Z = 0) and equal/opposite points."""
    p = _P
    x1, y1, z1 = a
    x2, y2, z2 = b
    if z1 == 0:
        return b
    if z2 == 0:
        return a
    zz1 = z1 * z1 % p
    zz2 = z2 * z2 % p
    u1 = x1 * zz2 % p
    u2 = x2 * zz1 % p
    s1 = y1 * z2 % p * zz2 % p
    s2 = y2 * z1 % p * zz1 % p
    h = (u2 - u1) % p
    r = (s2 - s1) % p
    if h == 0:
        if r == 0:
            return _jdouble(x1, y1, z1)
        return 1, 1, 0
    hh = h * h % p
    hhh = h * hh % p
    v = u1 * hh % p
    x3 = (r * r - hhh - 2 * v) % p
    return x3, (r * (v - x3) - s1 * hhh) % p, z1 * z2 % p * h % p


def _to_affine(x, y, z):
    p = _P
    zi = inverse(z, p)
    zi2 = zi * zi % p
    return x * zi2 % p, y * zi2 % p * zi % p


# ---- u1*G + u2*Q -------------------------------------------------------------------------------------------

def _mul2(a, b, q):
    """[a]G + [b]Q as Jacobian (X, Y, Z) with Z = 0 for infinity; q is affine (x, y) or None (then b is
    ignored). Scalars are below 2^256."""
    p = _P
    n = 257
    gtab = memoryview(_G_BYTES)
    nu1 = _wnaf(a, _G_WIDTH, n)
    if q is not None:
        # Per-call table: Q, 3Q, ..., as (X, Y, Z, Z^2, Z^3) so an addition skips two products.
        qx, qy = q
        q2 = _jdouble(qx, qy, 1)
        qtab = [(qx, qy, 1, 1, 1)]
        cur = (qx, qy, 1)
        for _ in range((1 << (_Q_WIDTH - 2)) - 1):
            cur = _jadd(cur, q2)
            zz = cur[2] * cur[2] % p
            qtab.append((cur[0], cur[1], cur[2], zz, zz * cur[2] % p))
        nu2 = _wnaf(b, _Q_WIDTH, n)
    else:
        nu2 = bytes(n)
    x, y, z = 1, 1, 0
    for i in range(n - 1, -1, -1):
        if z:
            # dbl-2001-b (a = -3): 3M + 5S
            delta = z * z % p
            gamma = y * y % p
            beta = x * gamma % p
            alpha = 3 * (x - delta) * (x + delta) % p
            z = 2 * y * z % p
            x = (alpha * alpha - 8 * beta) % p
            y = (alpha * (4 * beta - x) - 8 * gamma * gamma) % p
        d = nu1[i]
        if d:
            i2 = (d if d < 128 else 256 - d) >> 1 << 6
            x2 = int.from_bytes(gtab[i2:i2 + 32], "big")
            y2 = int.from_bytes(gtab[i2 + 32:i2 + 64], "big")
            if d >= 128:
                y2 = p - y2
            if z == 0:
                x, y, z = x2, y2, 1
            else:
                # Mixed addition (Z2 = 1): 8M + 3S
                zz = z * z % p
                h = x2 * zz % p - x
                r = y2 * (z * zz % p) % p - y
                if h % p == 0:
                    x, y, z = _jadd((x, y, z), (x2, y2, 1))
                else:
                    hh = h * h % p
                    hhh = h * hh % p
                    v = x * hh % p
                    z = z * h % p
                    x = (r * r - hhh - 2 * v) % p
                    y = (r * (v - x) - y * hhh) % p
        d = nu2[i]
        if d:
            if d < 128:
                x2, y2, z2, zz2, zzz2 = qtab[d >> 1]
            else:
                x2, y2, z2, zz2, zzz2 = qtab[(256 - d) >> 1]
                y2 = p - y2
            if z == 0:
                x, y, z = x2, y2, z2
            else:
                # Jacobian addition with the table point's Z^2, Z^3 cached: 10M + 4S
                zz = z * z % p
                u1 = x * zz2 % p
                s1 = y * zzz2 % p
                h = x2 * zz % p - u1
                r = y2 * (z * zz % p) % p - s1
                if h % p == 0:
                    x, y, z = _jadd((x, y, z), (x2, y2, z2))
                else:
                    hh = h * h % p
                    hhh = h * hh % p
                    v = u1 * hh % p
                    z = z * z2 % p * h % p
                    x = (r * r - hhh - 2 * v) % p
                    y = (r * (v - x) - s1 * hhh) % p
    return x, y, z


# ---- public API --------------------------------------------------------------------------------------------

def public_key(priv):
    """65-byte uncompressed public key for a 32-byte big-endian private key."""
    x, y, z = _mul2(_private_int(priv), 0, None)
    x, y = _to_affine(x, y, z)
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")


def generate():
    """(private, public) with a fresh private key from os.urandom (rejection sampling in [1, n-1])."""
    while True:
        priv = random_bytes(32)
        d = int.from_bytes(priv, "big")
        if 0 < d < _N:
            return priv, public_key(priv)


def ecdh(priv, peer_pub):
    """Shared secret: the 32-byte x-coordinate of [priv]peer_pub. The peer point is validated first."""
    d = _private_int(priv)
    q = decode_public_key(peer_pub)
    x, y, z = _mul2(0, d, q)
    if z == 0:  # cannot happen for a valid point (prime order), kept as a guard
        raise CryptoError(22)  # P-256 ECDH result is the point at infinity
    return _to_affine(x, y, z)[0].to_bytes(32, "big")


def verify_digest(pub, digest, sig):
    """True iff sig (64-byte r || s) is a valid ECDSA signature of digest under pub. False for an invalid
    key (off the curve, bad length) or an r or s outside [1, n-1]. Both s and n - s are valid (plain ECDSA)."""
    if len(sig) != 64:
        return False
    try:
        q = decode_public_key(pub)
    except CryptoError:
        return False
    n = _N
    p = _P
    r = int.from_bytes(sig[:32], "big")
    s = int.from_bytes(sig[32:], "big")
    if not (0 < r < n and 0 < s < n):
        return False
    w = inverse(s, n)
    e = int.from_bytes(digest, "big")  # bits2int: the leftmost 256 bits of a longer digest
    if len(digest) > 32:
        e >>= 8 * len(digest) - 256
    x, y, z = _mul2(e % n * w % n, r * w % n, q)
    if z == 0:
        return False
    # x(R) mod n == r without an inversion: X == r' * Z^2 (mod p) for r' = r or r + n (when below p).
    zz = z * z % p
    if (r * zz - x) % p == 0:
        return True
    return r + n < p and ((r + n) * zz - x) % p == 0


def verify(pub, message, sig):
    """ECDSA P-256 with SHA-256 (COSE ES256) verification; returns a bool."""
    return verify_digest(pub, hashlib.sha256(message).digest(), sig)


def __getattr__(name):
    # sign(priv, message) (COSE ES256: SHA-256), sign_digest(priv, digest): the 64-byte r || s
    if name == "sign" or name == "sign_digest":
        from crypto import _p256_sign
        return getattr(_p256_sign, name)
    raise AttributeError(name)
