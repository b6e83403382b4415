# P-256 on both runtimes: RFC 6979 A.2.5 (SHA-256) deterministic signatures, RFC 5903 section 8.1 ECDH, and the
# Wycheproof-style negative ECDSA cases: r or s out of range, flipped bits, wrong key, points off the curve or
# at infinity, truncated signatures; high s is valid ECDSA and must be accepted.
import hashlib

import hgtest
from hgtest import unhex

from crypto import CryptoError
from crypto import p256
from crypto import _p256_sign

# Below the default 128k (the VM's stand-in for the ESP32): compiling this file and its vectors needs more
# heap than the operations themselves (see host_tests/bench/host_crypto_ec.py for their peaks).
MP_HEAP = "96k"

N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B  # the curve coefficient b (SEC 2)

# RFC 6979 A.2.5
X = unhex("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721")
UX = unhex("60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6")
UY = unhex("7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299")
PUB = b"\x04" + UX + UY
SAMPLE = (b"sample",
          "A6E3C57DD01ABE90086538398355DD4C3B17AA873382B0F24D6129493D8AAD60",
          "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716",
          "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8")
TEST = (b"test",
        "D16B6AE827F17175E040871A1C7EC3500192C4C92677336EC2537ACAEE0008E0",
        "F1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367",
        "019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083")


def _sig(v):
    return unhex(v[2] + v[3])


def test_rfc6979_a25_public_key():
    assert p256.public_key(X) == PUB


def test_rfc6979_a25_nonces():
    d = int.from_bytes(X, "big")
    for v in (SAMPLE, TEST):
        k = next(_p256_sign._rfc6979_nonces(d, hashlib.sha256(v[0]).digest()))
        assert k == int(v[1], 16)


def test_rfc6979_a25_signatures():
    for v in (SAMPLE, TEST):
        assert p256.sign(X, v[0]) == _sig(v)
        assert p256.sign_digest(X, hashlib.sha256(v[0]).digest()) == _sig(v)


def test_rfc6979_a25_verify_both_encodings():
    for v in (SAMPLE, TEST):
        assert p256.verify(PUB, v[0], _sig(v))
        assert p256.verify(UX + UY, v[0], _sig(v))  # 64-byte x || y
        assert p256.verify_digest(PUB, hashlib.sha256(v[0]).digest(), _sig(v))
    assert not p256.verify(PUB, b"sample", _sig(TEST))


def test_rfc5903_8_1_ecdh():
    i = unhex("C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433")
    gi = unhex("04DAD0B65394221CF9B051E1FECA5787D098DFE637FC90B9EF945D0C3772581180"
               "5271A0461CDB8252D61F1C456FA3E59AB1F45B33ACCF5F58389E0577B8990BB3")
    r = unhex("C6EF9C5D78AE012A011164ACB397CE2088685D8F06BF9BE0B283AB46476BEE53")
    gr = unhex("04D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF63"
               "56FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB")
    shared = unhex("D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE")
    assert p256.public_key(i) == gi
    assert p256.public_key(r) == gr
    assert p256.ecdh(i, gr) == shared
    assert p256.ecdh(r, gi[1:]) == shared


def test_extreme_private_keys():
    g = b"\x04" + GX.to_bytes(32, "big") + GY.to_bytes(32, "big")
    assert p256.public_key((1).to_bytes(32, "big")) == g
    minus_g = b"\x04" + GX.to_bytes(32, "big") + (P - GY).to_bytes(32, "big")
    assert p256.public_key((N - 1).to_bytes(32, "big")) == minus_g
    for bad in (bytes(32), N.to_bytes(32, "big"), b"\xff" * 32, bytes(31)):
        hgtest.raises(CryptoError, p256.public_key, bad)
        hgtest.raises(CryptoError, p256.sign, bad, b"x")


def _with_rs(r, s):
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def test_r_or_s_out_of_range_is_rejected():
    sig = _sig(SAMPLE)
    r = int.from_bytes(sig[:32], "big")
    s = int.from_bytes(sig[32:], "big")
    for rr, ss in ((0, s), (r, 0), (0, 0), (N, s), (r, N), (r + N, s) if r + N < 2**256 else (N + 1, s),
                   (r, s + N) if s + N < 2**256 else (r, N + 1), (2**256 - 1, s), (r, 2**256 - 1)):
        assert not p256.verify(PUB, b"sample", _with_rs(rr, ss)), (rr, ss)


def test_high_s_is_accepted():
    # ECDSA has no low-s rule: (r, n - s) is the same signature with the other y of kG
    sig = _sig(SAMPLE)
    s = int.from_bytes(sig[32:], "big")
    assert p256.verify(PUB, b"sample", sig[:32] + (N - s).to_bytes(32, "big"))
    sig = _sig(TEST)
    s = int.from_bytes(sig[32:], "big")
    assert p256.verify(PUB, b"test", sig[:32] + (N - s).to_bytes(32, "big"))


def test_flipped_bits_are_rejected():
    sig = _sig(SAMPLE)
    rng = hgtest.Rng(6979)
    for bit in [0, 255, 256, 511] + [rng.below(512) for _ in range(6)]:
        bad = bytearray(sig)
        bad[bit >> 3] ^= 0x80 >> (bit & 7)
        assert not p256.verify(PUB, b"sample", bytes(bad)), bit
    assert not p256.verify(PUB, b"samplf", sig)
    digest = bytearray(hashlib.sha256(b"sample").digest())
    digest[31] ^= 1
    assert not p256.verify_digest(PUB, bytes(digest), sig)


def test_wrong_key_is_rejected():
    other = p256.public_key(unhex("C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433"))
    assert not p256.verify(other, b"sample", _sig(SAMPLE))


def test_points_off_the_curve_or_at_infinity_are_rejected():
    y = int.from_bytes(UY, "big")
    x = int.from_bytes(UX, "big")
    off = b"\x04" + UX + ((y + 1) % P).to_bytes(32, "big")
    bad_keys = (
        off,
        bytes(65),  # (0, 0) with a zero prefix
        b"\x04" + bytes(64),  # (0, 0) is not on the curve: infinity has no affine encoding
        b"\x00",  # SEC1 encoding of infinity
        b"\x02" + UX,  # compressed: not supported
        b"\x03" + UX + UY,  # wrong prefix
        b"\x04" + (x + P).to_bytes(32, "big") + UY if x + P < 2**256 else b"\x04" + P.to_bytes(32, "big") + UY,
        PUB[:64],  # truncated
        PUB + b"\x00",
    )
    for key in bad_keys:
        assert not p256.verify(key, b"sample", _sig(SAMPLE)), key
        hgtest.raises(CryptoError, p256.ecdh, X, key)
        hgtest.raises(CryptoError, p256.decode_public_key, key)


def test_truncated_signatures_are_rejected():
    sig = _sig(SAMPLE)
    for bad in (sig[:63], sig[:32], b"", sig + b"\x00"):
        assert not p256.verify(PUB, b"sample", bad)


def test_long_digest_is_truncated_to_the_leftmost_256_bits():
    d512 = bytes(range(64))
    sig = p256.sign_digest(X, d512)
    assert p256.verify_digest(PUB, d512, sig)
    assert p256.verify_digest(PUB, d512[:32], sig)


def test_random_sign_verify_and_ecdh():
    rng = hgtest.Rng(256)
    for _ in range(2):
        a = rng.bytes(32)
        b = rng.bytes(32)
        pa = p256.public_key(a)
        pb = p256.public_key(b)
        assert p256.ecdh(a, pb) == p256.ecdh(b, pa)
        msg = rng.bytes(rng.below(100))
        sig = p256.sign(a, msg)
        assert p256.verify(pa, msg, sig)
        assert not p256.verify(pb, msg, sig)


def test_generate():
    priv, pub = p256.generate()
    assert len(priv) == 32 and len(pub) == 65
    assert p256.verify(pub, b"m", p256.sign(priv, b"m"))


def test_g_table_is_odd_multiples_of_g():
    # independent of the table: repeated general additions G + 2G + 2G ...
    t = p256._G_BYTES  # constants: 16 points, x || y each
    table = [(int.from_bytes(t[i:i + 32], "big"), int.from_bytes(t[i + 32:i + 64], "big"))
             for i in range(0, len(t), 64)]
    g2 = p256._jdouble(GX, GY, 1)
    acc = (GX, GY, 1)
    for i in range(len(table)):
        assert p256._to_affine(*acc) == table[i], i
        acc = p256._jadd(acc, g2)
    assert table[0] == (GX, GY)
    assert len(table) == 16


def test_exceptional_additions_in_the_joint_multiplication():
    # u1*G + u2*Q with Q = G: the walk adds G to G (the doubling case) and G to -G (infinity)
    g = (GX, GY)
    two_g = p256._to_affine(*p256._jdouble(GX, GY, 1))
    assert p256._to_affine(*p256._mul2(1, 1, g)) == two_g
    assert p256._mul2(1, N - 1, g)[2] == 0  # G + (-G): Z = 0
    assert p256._to_affine(*p256._mul2(3, N - 1, g)) == two_g
    # the same through verify: a signature whose u1*G + u2*Q is the point at infinity is invalid
    e = 5
    r = 7
    s = 11
    w = pow(s, N - 2, N)
    # choose Q so that u1*G + u2*Q = O: Q = -(u1/u2) G
    u1 = e * w % N
    u2 = r * w % N
    qk = (N - u1 * pow(u2, N - 2, N) % N) % N
    q = p256.public_key(qk.to_bytes(32, "big"))
    assert not p256.verify_digest(q, e.to_bytes(32, "big"), _with_rs(r, s))


def _point_with_x_at_least_n():
    # smallest x >= n with a point on the curve (p = 3 mod 4: sqrt is a power)
    x = N
    while True:
        rhs = ((x * x - 3) * x + B) % P
        y = pow(rhs, (P + 1) // 4, P)
        if y * y % P == rhs:
            return x, y
        x += 1


def key_for_r_at_least_n():
    """(pub, digest, sig) valid only through the 'x(R) mod n' rule with x(R) >= n: r = x(R) - n.
    Built from the point R, not from a nonce: Q = (R - u1 G) / u2."""
    rx, ry = _point_with_x_at_least_n()
    r = rx - N
    s = 0x1234567
    e = 0xC0FFEE
    w = pow(s, N - 2, N)
    u1 = e * w % N
    u2 = r * w % N
    gx, gy, gz = p256._mul2(N - u1, 0, None)  # -u1 G
    sx, sy, sz = p256._jadd((rx, ry, 1), (gx, gy, gz))  # R - u1 G
    sx, sy = p256._to_affine(sx, sy, sz)
    qx, qy, qz = p256._mul2(0, pow(u2, N - 2, N), (sx, sy))
    qx, qy = p256._to_affine(qx, qy, qz)
    pub = b"\x04" + qx.to_bytes(32, "big") + qy.to_bytes(32, "big")
    return pub, e.to_bytes(32, "big"), _with_rs(r, s)


def test_r_from_an_x_coordinate_at_least_n_is_accepted():
    pub, digest, sig = key_for_r_at_least_n()
    assert p256.verify_digest(pub, digest, sig)
    # r itself (not r + n) as the x-coordinate is a different point: flipping r's low bit must fail
    bad = bytearray(sig)
    bad[31] ^= 1
    assert not p256.verify_digest(pub, digest, bytes(bad))
