# Symmetric primitives on both runtimes: published vectors (RFC 4231, 5869, 3610, 3394, FIPS-197, the EAP-NOOB
# KDF transcript), the pure AES against cryptolib, and the negative cases (flipped bits, wrong keys, bad sizes).
import hgtest
from hgtest import unhex

from crypto import CryptoError, InvalidTag
from crypto import aes, ccm, kdf, kw, util
MP_HEAP = "144k"  # passes at 96k on the bare VM; the ESP32 (112k) through the HIL runner: its 8160-byte HKDF

# RFC 4231 section 4, HMAC-SHA-256 (test case 5 is truncated to 128 bits)
RFC4231 = [
    ("0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    ("4a656665", b"what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    ("aa" * 20, b"\xdd" * 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    ("0102030405060708090a0b0c0d0e0f10111213141516171819", b"\xcd" * 50,
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    ("0c" * 20, b"Test With Truncation", "a3b6167473100ee06e0c796c2955552b"),
    ("aa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    ("aa" * 131, b"This is a test using a larger than block-size key and a larger than block-size data. The key "
                 b"needs to be hashed before being used by the HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]

# RFC 5869 appendix A.1-A.3 (SHA-256): ikm, salt, info, L, PRK, OKM
RFC5869 = [
    ("0b" * 22, "000102030405060708090a0b0c", "f0f1f2f3f4f5f6f7f8f9", 42,
     "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
     "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"),
    ("".join("%02x" % i for i in range(0x00, 0x50)), "".join("%02x" % i for i in range(0x60, 0xB0)),
     "".join("%02x" % i for i in range(0xB0, 0x100)), 82,
     "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
     "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09"
     "da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87"),
    ("0b" * 22, "", "", 42,
     "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
     "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"),
]

# FIPS-197 appendix C: key, plaintext, ciphertext
FIPS197 = [
    ("000102030405060708090a0b0c0d0e0f", "69c4e0d86a7b0430d8cdb78070b4c55a"),
    ("000102030405060708090a0b0c0d0e0f1011121314151617", "dda97ca4864cdfe06eaf70a0ec0d7191"),
    ("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "8ea2b7ca516745bfeafc49904b496089"),
]
FIPS197_PT = "00112233445566778899aabbccddeeff"

# RFC 3394 section 4: KEK length, key data length, wrapped
RFC3394 = [
    (16, 16, "1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5"),
    (24, 16, "96778b25ae6ca435f92b5b97c050aed2468ab8a17ad84e5d"),
    (32, 16, "64e8c3f9ce0f5ba263e9777905818a2a93c8191e7d6e8ae7"),
    (24, 24, "031d33264e15d33268f24ec260743edce1c6c7ddee725a936ba814915c6762d2"),
    (32, 24, "a8f9bc1612c68b3ff6e6f4fbe30e71e4769c8b80a32cb8958cd5d17d6b254da1"),
    (32, 32, "28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21"),
]
RFC3394_KEK = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
RFC3394_DATA = "00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f"


def _ccm_vectors():
    out = []
    with open(hgtest.vector_path("crypto/rfc3610_ccm.txt")) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                out.append([unhex(x) for x in line.split()])
    return out


class _Huge:
    """Claims a length without holding the bytes: size checks must come before any allocation."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


def _flip(data, bit):
    b = bytearray(data)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def test_ct_equal():
    assert util.ct_equal(b"abc", b"abc")
    assert not util.ct_equal(b"abc", b"abd")
    assert not util.ct_equal(b"abc", b"ab")
    assert util.ct_equal(b"", b"")
    assert util.ct_equal(bytearray(b"\x00\xff"), memoryview(b"\x00\xff"))


def test_random_bytes():
    a = util.random_bytes(32)
    b = util.random_bytes(32)
    assert len(a) == 32 and a != b
    assert util.random_bytes(0) == b""
    hgtest.raises(CryptoError, util.random_bytes, -1)


def test_xor_bytes():
    assert util.xor_bytes(b"\x0f\xf0", b"\xff\xff") == b"\xf0\x0f"
    assert util.xor_bytes(b"\x00\x01", b"\x00\x00") == b"\x00\x01"  # leading zero bytes are kept
    hgtest.raises(CryptoError, util.xor_bytes, b"a", b"ab")


def test_hmac_rfc4231():
    for key, data, mac in RFC4231:
        got = kdf.hmac_sha256(unhex(key), data).hex()
        assert got[:len(mac)] == mac, (key, got)


def test_hmac_object_reuse_and_chunks():
    m = kdf.HmacSha256(b"Jefe")
    want = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert m.mac(b"what do ya ", b"want ", b"for nothing?").hex() == want
    assert m.mac(b"what do ya want for nothing?").hex() == want
    assert "Jefe" not in repr(m)


def test_hkdf_rfc5869():
    for ikm, salt, info, n, prk, okm in RFC5869:
        got_prk = kdf.hkdf_extract(unhex(salt), unhex(ikm))
        assert got_prk.hex() == prk
        assert kdf.hkdf_expand(got_prk, unhex(info), n).hex() == okm
        assert kdf.hkdf_sha256(unhex(salt), unhex(ikm), unhex(info), n).hex() == okm
    # RFC 5869 test case 3 again with salt=None (same as empty)
    assert kdf.hkdf_extract(None, unhex("0b" * 22)).hex() == RFC5869[2][4]


def test_hkdf_limits():
    prk = bytes(32)
    assert len(kdf.hkdf_expand(prk, b"", 255 * 32)) == 255 * 32
    assert kdf.hkdf_expand(prk, b"", 0) == b""
    hgtest.raises(CryptoError, kdf.hkdf_expand, prk, b"", 255 * 32 + 1)
    hgtest.raises(CryptoError, kdf.hkdf_expand, bytes(16), b"", 16)


def test_concat_kdf_eap_noob():
    # RFC 9140 cryptosuite 1 transcript (eap-noob_cs1_1_0): KDF(Z, "EAP-NOOB" || Np || Ns || Noob) -> 320 bytes
    z = unhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
    other = unhex("4541502d4e4f4f421c8bc1ea0d27d9bb69c44714ed85e7581fb8e75103e8beaf79041deae8223c553d83bb3557"
                  "7d01fdc1c44ae2d4c23a84bf02938f58c700a34913ea942d523dbcc77265a2568f7222b859ae9794c271b5")
    out = kdf.concat_kdf_sha256(z, 320, other)
    assert out[0:64].hex() == ("4c7166a4b512e79d3b0f18970922fa61f538a89b8cbe976b5cbf2df698e5349b"
                               "76cbe017eca221301f82e7c4a0320717991e1f21c0c53f320736fa456e50c29b")
    assert out[192:224].hex() == "49e03e0e5c0aa586e5c2c9f595c0a4ee05fef59004a74f4ed189003d9f37f1e9"
    assert out[224:256].hex() == "c3d4e9ab0eb6703f23144c1369643bfd9dec1bda90a085db181e219b3913f2e2"
    assert out[288:320].hex() == "50d04db89f0aadd86df523234a3876780f77a467a8b1cc993cd0acd4278c0b9e"
    assert kdf.concat_kdf_sha256(z, 20, other) == out[:20]


def test_aes_fips197_pure_and_default():
    for key, ct in FIPS197:
        for cipher in (aes.PureAES(unhex(key)), aes.new(unhex(key))):
            assert cipher.encrypt_block(unhex(FIPS197_PT)).hex() == ct
            assert cipher.decrypt_block(unhex(ct)).hex() == FIPS197_PT


def test_aes_pure_matches_cryptolib_random():
    if not aes.has_cryptolib():
        hgtest.skip("no cryptolib on this runtime")
    rng = hgtest.Rng(197)
    for klen in (16, 32):
        for _ in range(12):
            key = rng.bytes(klen)
            block = rng.bytes(16)
            pure = aes.PureAES(key)
            lib = aes.CryptolibAES(key)
            c = pure.encrypt_block(block)
            assert c == lib.encrypt_block(block)
            assert pure.decrypt_block(c) == block == lib.decrypt_block(c)


def test_aes_viper_matches_pure():
    from crypto import _aes_soft
    if not _aes_soft.viper_works():
        if hgtest.IS_MICROPYTHON:
            raise AssertionError("the VM has the viper emitter: ViperAES should be in use")
        hgtest.skip("no viper emitter on this runtime")
    assert type(aes.new(bytes(16), pure=True)) is aes.ViperAES
    rng = hgtest.Rng(1197)
    for klen in (16, 24, 32):
        for _ in range(10):
            key = rng.bytes(klen)
            block = rng.bytes(16)
            v = aes.ViperAES(key)
            p = aes.PureAES(key)
            c = v.encrypt_block(block)
            assert c == p.encrypt_block(block)
            assert v.decrypt_block(c) == block == p.decrypt_block(c)
    for key, ct in FIPS197:
        assert aes.ViperAES(unhex(key)).encrypt_block(unhex(FIPS197_PT)).hex() == ct
    assert "0001" not in repr(aes.ViperAES(bytes(range(16))))


def test_aes_rejects_bad_sizes_and_hides_key():
    hgtest.raises(CryptoError, aes.PureAES, bytes(15))
    hgtest.raises(CryptoError, aes.new, bytes(33))
    a = aes.PureAES(unhex("2b7e151628aed2a6abf7158809cf4f3c"))
    hgtest.raises(CryptoError, a.encrypt_block, bytes(15))
    assert "2b7e" not in repr(a)
    assert "2b7e" not in repr(aes.new(unhex("2b7e151628aed2a6abf7158809cf4f3c")))


def test_ccm_rfc3610_packets():
    for kind in ("default", "no-cryptolib", "bytecode"):
        for key, nonce, aad, pt, ct in _ccm_vectors():
            m = len(ct) - len(pt)
            if kind == "bytecode":
                c = ccm.AesCcm(key, m, cipher=aes.PureAES(key))
            else:
                c = ccm.AesCcm(key, m, pure=(kind == "no-cryptolib"))
            assert c.encrypt(nonce, pt, aad) == ct
            assert c.decrypt(nonce, ct, aad) == pt
    key, nonce, aad, pt, ct = _ccm_vectors()[0]
    assert ccm.AesCcm(key, 8).encrypt(nonce, pt, aad) == ct
    assert ccm.AesCcm(key, 8).decrypt(nonce, ct, aad) == pt


def test_ccm_flipped_bits_rejected():
    key, nonce, aad, pt, ct = _ccm_vectors()[6]  # packet 7, M=10
    for bit in range(0, len(ct) * 8, 7):
        hgtest.raises(InvalidTag, ccm.AesCcm(key, 10).decrypt, nonce, _flip(ct, bit), aad)
    for bit in range(0, len(aad) * 8, 5):
        hgtest.raises(InvalidTag, ccm.AesCcm(key, 10).decrypt, nonce, ct, _flip(aad, bit))
    for bit in range(0, len(nonce) * 8, 9):
        hgtest.raises(InvalidTag, ccm.AesCcm(key, 10).decrypt, _flip(nonce, bit), ct, aad)
    hgtest.raises(InvalidTag, ccm.AesCcm(_flip(key, 0), 10).decrypt, nonce, ct, aad)
    hgtest.raises(InvalidTag, ccm.AesCcm(key, 10).decrypt, nonce, ct[:-1], aad)
    hgtest.raises(InvalidTag, ccm.AesCcm(key, 10).decrypt, nonce, ct[:5], aad)
    hgtest.raises(InvalidTag, ccm.AesCcm(key, 8).decrypt, nonce, ct, aad)


def test_ccm_parameters_and_lengths():
    rng = hgtest.Rng(3610)
    key = rng.bytes(16)
    hgtest.raises(CryptoError, ccm.AesCcm, key, 5)
    hgtest.raises(CryptoError, ccm.AesCcm, key, 18)
    c = ccm.AesCcm(key, 8)
    hgtest.raises(CryptoError, c.encrypt, bytes(6), b"x")
    hgtest.raises(CryptoError, c.encrypt, bytes(14), b"x")
    # 7-byte nonce (L = 8), empty message, aad across block boundaries, long aad (> 0xFF00 takes 6-byte prefix)
    cases = [(13, 0, 0), (13, 1, 14), (7, 33, 15), (12, 16, 16), (13, 64, 17), (13, 3, 300)]
    if not hgtest.IS_MICROPYTHON:  # > 0xFF00 bytes of aad (6-byte length prefix) does not fit the VM heap
        cases.append((13, 5, 70000))
    for nlen, plen, alen in cases:
        n = rng.bytes(nlen)
        p = rng.bytes(plen)
        a = bytes(alen) if alen > 1000 else rng.bytes(alen)
        ct = c.encrypt(n, p, a)
        assert len(ct) == plen + 8
        assert c.decrypt(n, ct, a) == p
        assert ccm.AesCcm(key, 8, pure=True).decrypt(n, ct, a) == p
    # L = 2 limits the message to 65535 bytes
    hgtest.raises(CryptoError, c.encrypt, bytes(13), _Huge(65536))
    hgtest.raises(CryptoError, c.encrypt, bytes(12), _Huge(1 << 24))


def test_key_wrap_rfc3394():
    kek_all = unhex(RFC3394_KEK)
    data_all = unhex(RFC3394_DATA)
    for klen, dlen, wrapped in RFC3394:
        kek = kek_all[:klen]
        data = data_all[:dlen]
        assert kw.aes_key_wrap(kek, data).hex() == wrapped
        assert kw.aes_key_wrap(kek, data, pure=True).hex() == wrapped
        assert kw.aes_key_unwrap(kek, unhex(wrapped)) == data
        assert kw.aes_key_unwrap(kek, unhex(wrapped), pure=True) == data


def test_key_wrap_negative():
    kek = unhex(RFC3394_KEK)[:16]
    wrapped = unhex(RFC3394[0][2])
    for bit in range(0, len(wrapped) * 8, 11):
        hgtest.raises(InvalidTag, kw.aes_key_unwrap, kek, _flip(wrapped, bit))
    hgtest.raises(InvalidTag, kw.aes_key_unwrap, _flip(kek, 3), wrapped)
    hgtest.raises(CryptoError, kw.aes_key_unwrap, kek, wrapped[:-8])
    hgtest.raises(CryptoError, kw.aes_key_unwrap, kek, wrapped[:-1])
    hgtest.raises(CryptoError, kw.aes_key_wrap, kek, bytes(8))
    hgtest.raises(CryptoError, kw.aes_key_wrap, kek, bytes(17))


def test_random_bytes_without_urandom_is_a_clear_error():
    # A port without os.urandom (simulated by shadowing `os` in sys.modules) must refuse, never fall back.
    import sys
    from crypto import util

    class PortWithoutUrandom:
        pass

    saved = sys.modules.get("os")
    sys.modules["os"] = PortWithoutUrandom()
    try:
        e = hgtest.raises(CryptoError, util.random_bytes, 16)
        assert "urandom" in str(e)
    finally:
        if saved is not None:
            sys.modules["os"] = saved
        else:
            del sys.modules["os"]
    assert len(util.random_bytes(16)) == 16
    hgtest.raises(CryptoError, util.random_bytes, -1)
