# COSE MAC and encryption on both runtimes: Mac0, Encrypt0, Encrypt with A128KW; unknown algorithms; COSE_Key
# encoding and secrecy. Published examples are in case_cose_examples.py, signatures in case_cose_sign.py.
import cbor
import hgtest
from hgtest import unhex

from crypto import InvalidTag
from cose import CoseError, CoseUnsupported
from cose import algs, encrypt, encrypt0, headers, mac0, sign1
from cose.key import CoseKey
MP_HEAP = "112k"  # the ESP32 budget (2 x 56 KiB); fails at 104k on the VM

P256_PRIV = unhex("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721")  # RFC 6979 A.2.5


def _flip(data, bit):
    b = bytearray(data)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def _p256():
    return CoseKey.from_raw(algs.ES256, P256_PRIV, kid=b"p256", private=True)


def test_mac0_round_trips_and_negatives():
    for alg, n in ((algs.HMAC_256_64, 8), (algs.HMAC_256_256, 32)):
        key = CoseKey.from_raw(alg, bytes(range(32)), kid=b"h")
        m = mac0.create(key, b"hello", external_aad=b"e")
        assert len(cbor.loads(m).value[3]) == n
        assert mac0.verify(m, key, external_aad=b"e") == b"hello"
        hgtest.raises(InvalidTag, mac0.verify, m, key)
        hgtest.raises(InvalidTag, mac0.verify, _flip(m, len(m) * 8 - 1), key, external_aad=b"e")
        wrong = CoseKey.from_raw(alg, bytes(32), kid=b"h")
        hgtest.raises(InvalidTag, mac0.verify, m, wrong, external_aad=b"e")
        d = mac0.create(key, b"digest", detached=True)
        assert mac0.verify(d, key, payload=b"digest") == b"digest"
        hgtest.raises(InvalidTag, mac0.verify, d, key, payload=b"digesT")


def test_encrypt0_round_trips_and_negatives():
    key = CoseKey.from_raw(algs.AES_CCM_16_64_128, bytes(range(16)), kid=b"c")
    iv = bytes(range(13))
    m = encrypt0.encrypt(key, b"secret text", iv=iv, external_aad=b"x")
    assert encrypt0.decrypt(m, key, external_aad=b"x") == b"secret text"
    hgtest.raises(InvalidTag, encrypt0.decrypt, m, key)
    for bit in (len(m) * 8 - 1, len(m) * 8 - 70):
        hgtest.raises(InvalidTag, encrypt0.decrypt, _flip(m, bit), key, external_aad=b"x")
    wrong = CoseKey.from_raw(algs.AES_CCM_16_64_128, bytes(16), kid=b"c")
    hgtest.raises(InvalidTag, encrypt0.decrypt, m, wrong, external_aad=b"x")
    # random IVs differ
    assert encrypt0.encrypt(key, b"a") != encrypt0.encrypt(key, b"a")
    # Partial IV with the key's Base IV
    kb = CoseKey.symmetric(bytes(range(16)), algs.AES_CCM_16_64_128, kid=b"c", base_iv=bytes(13))
    m2 = encrypt0.encrypt(kb, b"piv", unprotected={headers.PARTIAL_IV: b"\x05"})
    assert encrypt0.decrypt(m2, kb) == b"piv"
    hgtest.raises(CoseError, encrypt0.decrypt, m2, key)  # no Base IV on this key
    # a detached ciphertext
    out, ct = encrypt0.encrypt(key, b"detached", iv=iv, detached=True)
    assert encrypt0.decrypt(out, key, ciphertext=ct) == b"detached"
    hgtest.raises(CoseError, encrypt0.decrypt, out, key)


def test_encrypt_a128kw_round_trip():
    kek = CoseKey.from_raw(algs.A128KW, bytes(range(16)), kid=b"kek")
    m = encrypt.encrypt(kek, b"firmware key material", external_aad=b"s")
    assert encrypt.decrypt(m, kek, external_aad=b"s") == b"firmware key material"
    hgtest.raises(InvalidTag, encrypt.decrypt, m, kek)
    hgtest.raises(InvalidTag, encrypt.decrypt, m, CoseKey.from_raw(algs.A128KW, bytes(16), kid=b"kek"))
    hgtest.raises(CoseError, encrypt.decrypt, m, CoseKey.from_raw(algs.A128KW, bytes(16), kid=b"other"))


def test_unknown_algorithms_rejected():
    key = CoseKey.symmetric(bytes(32))
    hgtest.raises(CoseUnsupported, mac0.create, key, b"m", alg=6)  # HMAC 384
    hgtest.raises(CoseUnsupported, sign1.sign, _p256(), b"m", alg=-35)  # ES384
    hgtest.raises(CoseUnsupported, encrypt0.encrypt, CoseKey.symmetric(bytes(16)), b"m", alg=1)  # A128GCM
    hgtest.raises(CoseError, CoseKey.from_raw, -35, bytes(32))


def test_cose_key_encoding_and_secrecy():
    k = _p256()
    enc_priv = k.encode(private=True)
    enc_pub = k.encode()
    back = CoseKey.decode(enc_priv)
    assert back.d == P256_PRIV and back.kid == b"p256" and back.alg == -7
    pub = CoseKey.decode(enc_pub)
    assert pub.d is None and pub.public_bytes() == k.public_bytes()
    assert "c9afa9" not in repr(k) and "hidden" in repr(k)
    sym = CoseKey.symmetric(unhex("849b57219dae48de646d07dbb533566e"), algs.AES_CCM_16_64_128, kid=b"s")
    assert "849b" not in repr(sym)
    hgtest.raises(CoseError, sym.encode)  # a symmetric key is all secret
    assert CoseKey.decode(sym.encode(private=True)).k == sym.k
    hss = CoseKey.from_raw(algs.HSS_LMS, bytes(4) + b"\x00\x00\x00\x05" + bytes(52))
    assert CoseKey.decode(hss.encode()).pub == hss.pub
    # malformed keys
    for m in ({1: 2, -1: 1, -2: bytes(31), -3: bytes(32)}, {1: 2, -1: 2, -2: bytes(32), -3: bytes(32)},
              {1: 2, -1: 1, -2: bytes(32), -3: True}, {1: 1, -1: 6, -2: bytes(33)}, {1: 4}, {1: 9},
              {1: "EC2"}, {}, [1]):
        hgtest.raises(CoseError, CoseKey.from_map, m)
    hgtest.raises(CoseError, CoseKey.decode, b"\xa1\x01")
    hgtest.raises(CoseError, CoseKey.from_raw, algs.ES256, b"\x04" + bytes(64))  # not on the curve
    hgtest.raises(CoseError, CoseKey.from_raw, algs.AES_CCM_16_64_128, bytes(32))
