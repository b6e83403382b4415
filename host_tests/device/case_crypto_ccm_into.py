# AES-CCM without an output copy (crypto.ccm.AesCcm.encrypt_in_place / decrypt_into, which OSCORE uses) on both
# runtimes: the RFC 3610 packet vectors and the NIST SP 800-38C appendix C examples through every AES
# (cryptolib where present, ViperAES / PureAES, bytecode PureAES), agreement with encrypt/decrypt, and the
# refusals: a failed tag zeroes exactly the plaintext it wrote, a short buffer or a bad nonce changes nothing.
import hgtest
from hgtest import unhex

from crypto import CryptoError, InvalidTag
from crypto import aes, ccm
MP_HEAP = "128k"  # three AES objects per key (cryptolib, ViperAES, bytecode PureAES), the viper code and tables

# NIST SP 800-38C appendix C, examples 1-3 (key 40..4f): nonce, aad, plaintext, ciphertext||tag
NIST_KEY = "404142434445464748494a4b4c4d4e4f"
NIST = [
    ("10111213141516", "0001020304050607", "20212223", "7162015b4dac255d"),
    ("1011121314151617", "000102030405060708090a0b0c0d0e0f", "202122232425262728292a2b2c2d2e2f",
     "d2a1f0e051ea5f62081a7792073d593d1fc64fbfaccd"),
    ("101112131415161718191a1b", "000102030405060708090a0b0c0d0e0f10111213",
     "202122232425262728292a2b2c2d2e2f3031323334353637",
     "e3b201a9f5b71a7a9b1ceaeccd97e70b6176aad9a4428aa5484392fbc1b09951"),
]
# example 4: 65536 bytes of aad (00..ff repeated), a 14-byte tag
NIST4 = ("101112131415161718191a1b1c", "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",
         "69915dad1e84c6376a68c2967e4dab615ae0fd1faec44cc484828529463ccf72b4ac6bec93e8598e7f0dadbcea5b")


def _vectors():
    """(key, nonce, aad, plaintext, ciphertext||tag) of RFC 3610 section 8 and NIST SP 800-38C C.1-C.3."""
    out = []
    with open(hgtest.vector_path("crypto/rfc3610_ccm.txt")) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                out.append([unhex(x) for x in line.split()])
    for v in NIST:
        out.append([unhex(NIST_KEY)] + [unhex(x) for x in v])
    return out


_blocks = {}


def _ciphers(key, m):
    """AES-CCM with key and tag length m over each AES: cryptolib's where present (aes.new), the pure one
    (aes.new(key, True): ViperAES or PureAES), bytecode PureAES. The block ciphers are made once per key (the
    vectors share two keys; the pure ones are large for the VM heap)."""
    b = _blocks.get(key)
    if b is None:
        b = _blocks[key] = (aes.new(key), aes.new(key, True), aes.PureAES(key))
    return [ccm.AesCcm(key, m, cipher=x) for x in b]


def test_encrypt_in_place_vectors():
    for key, nonce, aad, pt, ct in _vectors():
        for c in _ciphers(key, len(ct) - len(pt)):
            buf = bytearray(pt)
            assert c.encrypt_in_place(nonce, buf, aad) is buf
            assert buf == ct
            assert c.encrypt(nonce, pt, aad) == ct


def test_decrypt_into_vectors():
    for key, nonce, aad, pt, ct in _vectors():
        n = len(pt)
        for c in _ciphers(key, len(ct) - n):
            for off in (0, 3, 17):
                out = bytearray(b"\xaa" * (off + n + 2))
                for data in (ct, bytearray(ct), memoryview(ct)):
                    assert c.decrypt_into(nonce, data, aad, out, off) == n
                    assert out[off:off + n] == pt
                    assert out[:off] == b"\xaa" * off and out[off + n:] == b"\xaa\xaa"
            exact = bytearray(n)
            assert c.decrypt_into(nonce, ct, aad, exact) == n and exact == pt
            assert c.decrypt(nonce, ct, aad) == pt


def test_nist_example4_long_aad():
    if hgtest.IS_MICROPYTHON:  # 64 KiB of aad, copied once with its prefix: beyond this case's VM heap
        hgtest.skip("65536 bytes of aad")
    nonce, pt, ct = [unhex(x) for x in NIST4]
    aad = bytes(i & 0xFF for i in range(65536))
    c = ccm.AesCcm(unhex(NIST_KEY), 14)
    buf = bytearray(pt)
    assert c.encrypt_in_place(nonce, buf, aad) == ct
    out = bytearray(len(pt))
    assert c.decrypt_into(nonce, ct, aad, out) == len(pt) and out == pt


def _flip(data, bit):
    b = bytearray(data)
    b[bit >> 3] ^= 1 << (bit & 7)
    return bytes(b)


def test_decrypt_into_refusals():
    key, nonce, aad, pt, ct = _vectors()[6]  # RFC 3610 packet 7, M = 10
    n = len(pt)
    for c in _ciphers(key, 10):
        for bad in [(nonce, _flip(ct, b), aad) for b in range(0, len(ct) * 8, 11)] + \
                   [(nonce, ct, _flip(aad, b)) for b in range(0, len(aad) * 8, 13)] + \
                   [(_flip(nonce, b), ct, aad) for b in range(0, len(nonce) * 8, 17)]:
            out = bytearray(b"\xaa" * (n + 6))
            hgtest.raises(InvalidTag, c.decrypt_into, bad[0], bad[1], bad[2], out, 4)
            assert out == b"\xaa" * 4 + bytes(n) + b"\xaa\xaa"  # the plaintext it wrote is gone, nothing else
        for out, off in ((bytearray(n - 1), 0), (bytearray(n + 2), 3), (bytearray(n), -1)):
            before = bytes(out)
            hgtest.raises(CryptoError, c.decrypt_into, nonce, ct, aad, out, off)
            assert out == before
        out = bytearray(n)
        hgtest.raises(InvalidTag, c.decrypt_into, nonce, ct[:9], aad, out)  # shorter than the tag
        hgtest.raises(InvalidTag, c.decrypt_into, nonce, ct[:-1], aad, out)
        hgtest.raises(CryptoError, c.decrypt_into, nonce[:6], ct, aad, out)
        assert out == bytes(n)
    hgtest.raises(InvalidTag, ccm.AesCcm(key, 8).decrypt_into, nonce, ct, aad, bytearray(n + 2))


def test_encrypt_in_place_refusals():
    c = ccm.AesCcm(bytes(16), 8)
    for nonce in (bytes(6), bytes(14)):
        buf = bytearray(b"plaintext")
        hgtest.raises(CryptoError, c.encrypt_in_place, nonce, buf)
        assert buf == b"plaintext"


def test_in_place_matches_copying_api():
    rng = hgtest.Rng(38)
    for key_len in (16, 24, 32):
        key = rng.bytes(key_len)
        for m in (4, 8, 16):
            cs = [ccm.AesCcm(key, m), ccm.AesCcm(key, m, pure=True), ccm.AesCcm(key, m, cipher=aes.PureAES(key))]
            for nlen, plen, alen in ((13, 0, 0), (13, 1, 0), (7, 15, 1), (12, 16, 14), (13, 17, 30), (13, 81, 17)):
                nonce, pt, aad = rng.bytes(nlen), rng.bytes(plen), rng.bytes(alen)
                ct = cs[0].encrypt(nonce, pt, aad)
                for c in cs:
                    buf = bytearray(pt)
                    c.encrypt_in_place(nonce, buf, aad)
                    assert buf == ct
                    out = bytearray(plen + 1)
                    assert c.decrypt_into(nonce, buf, aad, out, 1) == plen and out[1:] == pt
