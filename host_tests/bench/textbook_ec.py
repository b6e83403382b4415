# Textbook references for the EC benchmarks only (never used by the firmware): the straightforward way,
# affine coordinates, plain double-and-add, every modular inverse by pow(x, p - 2, p), every field operation
# reduced `% p`. They run on MicroPython and CPython so the benchmark can time them on the same VM.
import hashlib

from crypto import sha512

def _bit_length(k):
    return len(bin(k)) - 2  # MicroPython ints have no bit_length()


# ---- X25519: the RFC 7748 section 5 pseudo-code, transcribed -------------------------------------------------

P25519 = 2**255 - 19
A24 = 121665


def _cswap(swap, x2, x3):
    mask = -swap  # 0 or all ones (as a Python int: -1)
    dummy = mask & (x2 ^ x3)
    return x2 ^ dummy, x3 ^ dummy


def x25519(k, u):
    p = P25519
    kb = bytearray(k)
    kb[0] &= 248
    kb[31] &= 127
    kb[31] |= 64
    k = int.from_bytes(kb, "little")
    x1 = (int.from_bytes(u, "little") & ((1 << 255) - 1)) % p
    x2, z2, x3, z3 = 1, 0, x1, 1
    swap = 0
    for t in range(254, -1, -1):
        k_t = (k >> t) & 1
        swap ^= k_t
        x2, x3 = _cswap(swap, x2, x3)
        z2, z3 = _cswap(swap, z2, z3)
        swap = k_t
        a = (x2 + z2) % p
        aa = (a * a) % p
        b = (x2 - z2) % p
        bb = (b * b) % p
        e = (aa - bb) % p
        c = (x3 + z3) % p
        d = (x3 - z3) % p
        da = (d * a) % p
        cb = (c * b) % p
        x3 = ((da + cb) % p) ** 2 % p
        z3 = (x1 * (((da - cb) % p) ** 2 % p)) % p
        x2 = (aa * bb) % p
        z2 = (e * ((aa + (A24 * e) % p) % p)) % p
    x2, x3 = _cswap(swap, x2, x3)
    z2, z3 = _cswap(swap, z2, z3)
    return ((x2 * pow(z2, p - 2, p)) % p).to_bytes(32, "little")


# ---- Ed25519 verify: affine Edwards points, double-and-add ---------------------------------------------------

ED_L = 2**252 + 27742317777372353535851937790883648493
ED_D = (-121665 * pow(121666, P25519 - 2, P25519)) % P25519
ED_B = (15112221349535400772501151409588531511454012693041857206046113283949847762202,
        46316835694926478169428394003475163141307993866256225615783033603165251855960)


def _ed_add(p1, p2):
    p = P25519
    x1, y1 = p1
    x2, y2 = p2
    t = (ED_D * x1 % p) * x2 % p * y1 % p * y2 % p
    x3 = (x1 * y2 + x2 * y1) % p * pow((1 + t) % p, p - 2, p) % p
    y3 = (y1 * y2 + x1 * x2) % p * pow((1 - t) % p, p - 2, p) % p
    return x3, y3


def _ed_mul(k, pt):
    acc = (0, 1)
    for i in range(_bit_length(k) - 1, -1, -1):
        acc = _ed_add(acc, acc)
        if (k >> i) & 1:
            acc = _ed_add(acc, pt)
    return acc


def _ed_decode(s):
    p = P25519
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= p:
        return None
    x2 = (y * y - 1) * pow((ED_D * y * y + 1) % p, p - 2, p) % p
    x = pow(x2, (p + 3) // 8, p)
    if (x * x - x2) % p:
        x = x * pow(2, (p - 1) // 4, p) % p
    if (x * x - x2) % p:
        return None
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = p - x
    return x, y


def ed25519_verify(pub, msg, sig):
    if len(pub) != 32 or len(sig) != 64:
        return False
    a = _ed_decode(pub)
    r = _ed_decode(sig[:32])
    s = int.from_bytes(sig[32:], "little")
    if a is None or r is None or s >= ED_L:
        return False
    h = int.from_bytes(sha512.digest(sig[:32] + pub + msg), "little") % ED_L
    return _ed_mul(s, ED_B) == _ed_add(r, _ed_mul(h, a))


# ---- P-256 ECDSA verify: affine Weierstrass points, double-and-add --------------------------------------------

P256_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P256_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
P256_G = (0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
          0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5)


def _w_add(p1, p2):
    """Affine addition; None is the point at infinity."""
    p = P256_P
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    x1, y1 = p1
    x2, y2 = p2
    if x1 == x2:
        if (y1 + y2) % p == 0:
            return None
        lam = (3 * x1 * x1 - 3) * pow(2 * y1 % p, p - 2, p) % p
    else:
        lam = (y2 - y1) * pow((x2 - x1) % p, p - 2, p) % p
    x3 = (lam * lam - x1 - x2) % p
    return x3, (lam * (x1 - x3) - y1) % p


def _w_mul(k, pt):
    acc = None
    for i in range(_bit_length(k) - 1, -1, -1):
        acc = _w_add(acc, acc)
        if (k >> i) & 1:
            acc = _w_add(acc, pt)
    return acc


def p256_verify(pub, msg, sig):
    p, n = P256_P, P256_N
    if len(pub) != 65 or pub[0] != 4 or len(sig) != 64:
        return False
    q = (int.from_bytes(pub[1:33], "big"), int.from_bytes(pub[33:], "big"))
    if q[0] >= p or q[1] >= p or (q[1] * q[1] - q[0] ** 3 + 3 * q[0] - P256_B) % p:
        return False
    r = int.from_bytes(sig[:32], "big")
    s = int.from_bytes(sig[32:], "big")
    if not (0 < r < n and 0 < s < n):
        return False
    e = int.from_bytes(hashlib.sha256(msg).digest(), "big")
    w = pow(s, n - 2, n)
    pt = _w_add(_w_mul(e * w % n, P256_G), _w_mul(r * w % n, q))
    return pt is not None and pt[0] % n == r
