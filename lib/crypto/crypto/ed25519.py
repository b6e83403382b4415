# Ed25519 (RFC 8032): verify for the device, plus public_key/sign (deterministic; tests, tools, optional
# device signing) in crypto._ed25519_sign, loaded on first use.
#
# Speed comes from big Python ints used the way MicroPython's mpz likes them (few large operations, one `% p`
# per product, sums of products reduced once), extended twisted Edwards coordinates (no inversion per step),
# and one joint double-scalar multiplication [S]B - [h]A: interleaved width-w NAF digits over a table of odd
# multiples of the base point B (built once, on first use; mixed additions) and a per-call table for A.
# The one inversion is extended Euclid (_ec.inverse) and the square root an addition chain. SHA-512 is
# crypto.sha512 (viper on MicroPython), loaded by the first verification. Python ints are not constant-time:
# signing on a device leaks timing.
from crypto._ec import inverse, wnaf as _wnaf

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = const(37095705934669439343138083508754565189542113879843219016388785533085940283555)
_D2 = 16295367250680780974490674513165176452449235426866156013048779062215315747161  # 2d mod p
_SQRT_M1 = const(19681161376707505956807079304988542015446066515923890162744021073123829784752)
_BX = const(15112221349535400772501151409588531511454012693041857206046113283949847762202)
_BY = const(46316835694926478169428394003475163141307993866256225615783033603165251855960)

# Odd multiples 1B, 3B, ..., 31B (width-6 NAF digits) as affine "Niels" triples (y+x, y-x, 2d*x*y) mod p:
# with Z = 1 a mixed addition costs 7 multiplications. 16 entries: ~3 KiB on the 64-bit VM, half on a board.
_B_WIDTH = const(6)
_B_TABLE = None


def _b_table():
    """[(y+x, y-x, 2dxy) for B, 3B, 5B, ...], affine, built on first use with one inversion (Montgomery's trick)."""
    global _B_TABLE
    if _B_TABLE is None:
        p = _P
        count = 1 << (_B_WIDTH - 2)
        pt = (_BX, _BY, 1, _BX * _BY % p)
        two = _to_niels(_double(pt))
        pts = [pt]
        for _ in range(count - 1):
            pts.append(_add(pts[-1], two))
        zs = [q[2] for q in pts]
        acc = [1]
        for z in zs:
            acc.append(acc[-1] * z % p)
        inv = inverse(acc[-1], p)
        out = [None] * count
        for i in range(count - 1, -1, -1):
            zi = inv * acc[i] % p
            inv = inv * zs[i] % p
            ax = pts[i][0] * zi % p
            ay = pts[i][1] * zi % p
            out[i] = ((ay + ax) % p, (ay - ax) % p, _D2 * ax * ay % p)
        _B_TABLE = tuple(out)
    return _B_TABLE


def _to_niels(pt):
    """Extended (X, Y, Z, T) -> (Y+X, Y-X, 2Z, 2dT), the addend form for _add."""
    p = _P
    x, y, z, t = pt
    return ((y + x) % p, (y - x) % p, 2 * z % p, _D2 * t % p)


def _add(pt, q):
    """Extended point + Niels-form point (add-2008-hwcd-3, a = -1): 8 multiplications."""
    p = _P
    x1, y1, z1, t1 = pt
    ypx, ymx, z2, t2 = q
    a = (y1 - x1) * ymx % p
    b = (y1 + x1) * ypx % p
    c = t1 * t2 % p
    d = z1 * z2 % p
    e = b - a
    f = d - c
    g = d + c
    h = b + a
    return (e * f % p, g * h % p, f * g % p, e * h % p)


def _double(pt):
    """dbl-2008-hwcd with a = -1: 4 squarings + 4 multiplications."""
    p = _P
    x1, y1, z1 = pt[0], pt[1], pt[2]
    a = x1 * x1 % p
    b = y1 * y1 % p
    c = 2 * z1 * z1 % p
    s = x1 + y1
    e = (s * s - a - b) % p
    g = b - a
    f = g - c
    h = -a - b
    return (e * f % p, g * h % p, f * g % p, e * h % p)


def _pow_p58(z):
    """z^((p-5)/8) = z^(2^252 - 3) by the usual addition chain: 251 squarings + 11 products, about 60% of
    pow(), which multiplies for nearly every bit of this all-ones exponent."""
    p = _P

    def sq(x, n):
        for _ in range(n):
            x = x * x % p
        return x

    t0 = z * z % p
    t1 = z * sq(t0, 2) % p  # z^9
    t0 = t0 * t1 % p  # z^11
    t0 = t1 * (t0 * t0 % p) % p  # 2^5 - 1
    t0 = sq(t0, 5) * t0 % p  # 2^10 - 1
    t1 = sq(t0, 10) * t0 % p  # 2^20 - 1
    t1 = sq(t1, 20) * t1 % p  # 2^40 - 1
    t0 = sq(t1, 10) * t0 % p  # 2^50 - 1
    t1 = sq(t0, 50) * t0 % p  # 2^100 - 1
    t1 = sq(t1, 100) * t1 % p  # 2^200 - 1
    t0 = sq(t1, 50) * t0 % p  # 2^250 - 1
    return sq(t0, 2) * z % p  # 2^252 - 3


def _decode_point(s):
    """RFC 8032 5.1.3: 32 bytes -> affine (x, y), or None for an invalid encoding."""
    p = _P
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= p:
        return None
    yy = y * y % p
    u = yy - 1
    v = (_D * yy + 1) % p
    v3 = v * v % p * v % p
    x = u * v3 % p * _pow_p58(u * v3 % p * v3 % p * v % p) % p
    vxx = v * x % p * x % p
    if vxx != u % p:
        if vxx != -u % p:
            return None
        x = x * _SQRT_M1 % p
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = p - x
    return x, y


def _encode_point(x, y, z):
    p = _P
    zi = inverse(z, p)
    x = x * zi % p
    y = y * zi % p
    return (y | (x & 1) << 255).to_bytes(32, "little")


def _double_scalar(s, h, q):
    """[s]B + [h]A with interleaved wNAF; q is A, affine (x, y), or None. Returns extended (X, Y, Z, T)."""
    p = _P
    btable = _b_table()
    n = 254  # s, h < 2^253: their NAFs have at most 254 digits
    ns = _wnaf(s, _B_WIDTH, n)
    if q is not None:
        ax, ay = q
        a1 = (ax, ay, 1, ax * ay % p)
        a2 = _to_niels(_double(a1))
        atab = [_to_niels(a1)]
        acc = a1
        for _ in range(7):  # 3A ... 15A for width-5 digits
            acc = _add(acc, a2)
            atab.append(_to_niels(acc))
        nh = _wnaf(h, 5, n)
    else:
        nh = bytes(n)
    x, y, z, t = 0, 1, 1, 0
    for i in range(n - 1, -1, -1):
        # Doubling (dbl-2008-hwcd); T is needed only if an addition follows at this position.
        ds = ns[i]
        dh = nh[i]
        a = x * x % p
        b = y * y % p
        c = 2 * z * z % p
        e = x + y
        e = (e * e - a - b) % p
        g = b - a
        f = g - c
        hh = -a - b
        x = e * f % p
        y = g * hh % p
        z = f * g % p
        if ds or dh:
            t = e * hh % p
            if ds:
                # Mixed addition with an affine Niels point (Z2 = 1): 7 multiplications.
                if ds < 128:
                    ypx, ymx, xy2d = btable[ds >> 1]
                else:  # negative digit: -(x, y) = (-x, y) swaps y+x and y-x and negates 2dxy
                    ymx, ypx, xy2d = btable[(256 - ds) >> 1]
                    xy2d = -xy2d
                a = (y - x) * ymx % p
                b = (y + x) * ypx % p
                c = t * xy2d % p
                d = 2 * z
                e = b - a
                f = d - c
                g = d + c
                hh = b + a
                x = e * f % p
                y = g * hh % p
                z = f * g % p
                t = e * hh % p
            if dh:
                if dh < 128:
                    ypx, ymx, z2, t2 = atab[dh >> 1]
                else:
                    ymx, ypx, z2, t2 = atab[(256 - dh) >> 1]
                    t2 = -t2
                a = (y - x) * ymx % p
                b = (y + x) * ypx % p
                c = t * t2 % p
                d = z * z2 % p
                e = b - a
                f = d - c
                g = d + c
                hh = b + a
                x = e * f % p
                y = g * hh % p
                z = f * g % p
                t = e * hh % p
    return x, y, z, t


def verify(pub, message, sig):
    """True iff sig is a valid RFC 8032 Ed25519 signature of message under the 32-byte public key pub.

    Cofactorless check [S]B - [h]A == R by canonical encoding (as OpenSSL): S must be < L, A must decode,
    and a non-canonical R can never match."""
    if len(pub) != 32 or len(sig) != 64:
        return False
    s = int.from_bytes(sig[32:], "little")
    if s >= _L:
        return False
    a_pt = _decode_point(pub)
    if a_pt is None:
        return False
    from crypto.sha512 import new  # SHA-512 loads with the first verification

    hobj = new(sig[:32])
    hobj.update(pub)
    hobj.update(message)
    h = int.from_bytes(hobj.digest(), "little") % _L
    # [S]B - [h]A = [S]B + [h](-A), -(x, y) = (-x, y)
    x, y, z, _ = _double_scalar(s, h, (_P - a_pt[0], a_pt[1]))
    if z == 0:
        return False
    return _encode_point(x, y, z) == bytes(sig[:32])


def __getattr__(name):
    # public_key(seed): 32 bytes; sign(seed, message): deterministic RFC 8032 signature (64 bytes);
    # generate(): (private seed, public key)
    if name in ("public_key", "sign", "generate"):
        from crypto import _ed25519_sign
        return getattr(_ed25519_sign, name)
    raise AttributeError(name)
