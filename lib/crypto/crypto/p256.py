# NIST P-256 (secp256r1): ECDH, key generation and ECDSA verify; ECDSA sign with RFC 6979 deterministic nonces
# (SHA-256) is in crypto._p256_sign, loaded on first use of p256.sign or sign_digest.
#
# Jacobian coordinates (x = X/Z^2, y = Y/Z^3, a = -3 doubling), one `% p` per product with sums of products
# reduced once, and u1*G + u2*Q as one interleaved width-w NAF walk (Straus/Shamir): a small table of affine
# odd multiples of G (built once, on first use: mixed additions) and a per-call Jacobian table for Q.
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
_GX = const(0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296)
_GY = const(0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5)

_G_WIDTH = const(6)  # 16 affine points 1G, 3G, ..., 31G: ~2 KiB on the 64-bit VM
_Q_WIDTH = const(5)  # 8 Jacobian points per call
_G_TABLE = None


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


def _g_table():
    """Affine odd multiples G, 3G, ..., (2^(w-1)-1)G, built with one shared inversion (Montgomery's trick)."""
    global _G_TABLE
    if _G_TABLE is None:
        p = _P
        count = 1 << (_G_WIDTH - 2)
        g2 = _jdouble(_GX, _GY, 1)
        pts = [(_GX, _GY, 1)]
        for _ in range(count - 1):
            pts.append(_jadd(pts[-1], g2))
        acc = [1]
        for q in pts:
            acc.append(acc[-1] * q[2] % p)
        inv = inverse(acc[-1], p)
        out = [None] * count
        for i in range(count - 1, -1, -1):
            zi = inv * acc[i] % p
            inv = inv * pts[i][2] % p
            zi2 = zi * zi % p
            out[i] = (pts[i][0] * zi2 % p, pts[i][1] * zi2 % p * zi % p)
        _G_TABLE = tuple(out)
    return _G_TABLE


# ---- u1*G + u2*Q -------------------------------------------------------------------------------------------

def _mul2(a, b, q):
    """[a]G + [b]Q as Jacobian (X, Y, Z) with Z = 0 for infinity; q is affine (x, y) or None (then b is
    ignored). Scalars are below 2^256."""
    p = _P
    n = 257
    gtab = _g_table()
    nu1 = _wnaf(a, _G_WIDTH, n)
    if q is not None:
        # Per-call table: Q, 3Q, ..., 15Q as (X, Y, Z, Z^2, Z^3) so an addition skips two products.
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
            if d < 128:
                x2, y2 = gtab[d >> 1]
            else:
                x2, y2 = gtab[(256 - d) >> 1]
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


def _bits2int(digest):
    e = int.from_bytes(digest, "big")
    if len(digest) > 32:
        e >>= 8 * len(digest) - 256
    return e


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
    x, y, z = _mul2(_bits2int(digest) % n * w % n, r * w % n, q)
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
