# COSE signatures on both runtimes: Sign1 round trips with ES256/ESP256/EdDSA/Ed25519, kid lookup in a key
# set, crit and header rules, truncated and malformed structures. (Split from case_cose.py: the P-256 and
# Ed25519 tables and the COSE modules together need most of the VM heap.)
import cbor
import hgtest
from hgtest import unhex

from crypto import InvalidSignature
from cose import CoseError, CoseUnsupported
from cose import algs, encrypt0, mac0, sign1
from cose.key import CoseKey, KeySet

# cbor + cose + the P-256/Ed25519 tables compiled from source need ~100 KiB of the 64-bit VM heap before
# the first test; 192k on the VM is ~96 KiB on a 32-bit board, inside the ESP32's grown heap (~112 KiB) and
# the nRF52840's (~200 KiB). case_cose.py (no EC) runs at the default 128k.
MP_HEAP = "192k"

P256_PRIV = unhex("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721")  # RFC 6979 A.2.5
ED_SEED = unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")  # RFC 8032 test 1


def _flip(data, bit):
    b = bytearray(data)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def _p256():
    return CoseKey.from_raw(algs.ES256, P256_PRIV, kid=b"p256", private=True)


def _ed():
    return CoseKey.from_raw(algs.EDDSA, ED_SEED, kid=b"ed", private=True)


def test_sign1_round_trips():
    ks = [(_p256(), algs.ES256), (_p256(), algs.ESP256), (_ed(), algs.EDDSA), (_ed(), algs.ED25519)]
    for key, alg in ks:
        pub = key.public_key()
        assert pub.d is None
        m = sign1.sign(key, b"payload", alg=alg)
        assert cbor.loads(m).tag == 18
        assert sign1.verify(m, pub) == b"payload"
        d = sign1.sign(key, b"digest", alg=alg, detached=True, external_aad=b"aad", tagged=False)
        assert isinstance(cbor.loads(d), list)
        assert sign1.verify(d, pub, payload=b"digest", external_aad=b"aad") == b"digest"
        hgtest.raises(InvalidSignature, sign1.verify, d, pub, payload=b"digest", external_aad=b"aaD")
        hgtest.raises(InvalidSignature, sign1.verify, d, pub, payload=b"Digest", external_aad=b"aad")
        sig_bits = len(m) * 8
        hgtest.raises(InvalidSignature, sign1.verify, _flip(m, sig_bits - 3), pub)


def test_sign1_deterministic_es256():
    # RFC 6979 nonces: the same key, headers and payload give the same bytes every time
    assert sign1.sign(_p256(), b"x") == sign1.sign(_p256(), b"x")


def test_kid_lookup_in_key_set():
    a = CoseKey.from_raw(algs.ES256, P256_PRIV, kid=b"a", private=True)
    other = CoseKey.from_raw(algs.ES256, unhex("01" * 32), kid=b"b", private=True)
    ed = _ed()
    ks = KeySet([other.public_key(), ed.public_key(), a.public_key()])
    assert sign1.verify(sign1.sign(a, b"m"), ks) == b"m"
    assert sign1.verify(sign1.sign(ed, b"m"), ks) == b"m"
    # a message naming a kid the set lacks
    stranger = CoseKey.from_raw(algs.ES256, unhex("02" * 32), kid=b"zz", private=True)
    e = hgtest.raises(CoseError, sign1.verify, sign1.sign(stranger, b"m"), ks)
    assert "7a7a" in str(e)
    # the right kid but the wrong key material
    impostor = CoseKey.from_raw(algs.ES256, unhex("03" * 32), kid=b"a", private=True)
    hgtest.raises(InvalidSignature, sign1.verify, sign1.sign(impostor, b"m"), ks)
    # no kid in the message: every key that fits the alg is tried
    assert sign1.verify(sign1.sign(a, b"m", include_kid=False), ks) == b"m"


def test_candidates_from_a_key_a_list_a_tuple_or_a_key_set():
    # cose.key.candidates filters what it is given as it is: the keys with the message's kid first, then the
    # keys without a kid; only keys that fit the algorithm; a list holding anything but a CoseKey is refused
    from cose.key import candidates
    a = CoseKey.from_raw(algs.HMAC_256_256, bytes(32), kid=b"a")
    b = CoseKey.from_raw(algs.HMAC_256_256, bytes(range(32)), kid=b"b")
    any_kid = CoseKey.from_raw(algs.HMAC_256_256, b"\x01" * 32)
    ed = _ed().public_key()
    for keys in ([any_kid, ed, b, a], (any_kid, ed, b, a), KeySet([any_kid, ed, b, a])):
        assert candidates(keys, b"a", algs.HMAC_256_256) == [a, any_kid]
        assert candidates(keys, None, algs.HMAC_256_256) == [b, a, any_kid]
        assert candidates(keys, None, algs.ED25519) == [ed]
        assert "7a7a" not in str(hgtest.raises(CoseError, candidates, keys, None, algs.ES256))
    assert candidates(a, b"a", algs.HMAC_256_256) == [a]
    assert "7a7a" in str(hgtest.raises(CoseError, candidates, a, b"zz", algs.HMAC_256_256))
    assert KeySet([a]).candidates(b"zz", algs.HMAC_256_256) == []
    hgtest.raises(CoseError, candidates, [a, b"not a key"], None, algs.HMAC_256_256)
    hgtest.raises(CoseError, candidates, {"a": a}, None, algs.HMAC_256_256)


def test_key_type_must_fit_alg():
    hk = CoseKey.from_raw(algs.HMAC_256_256, bytes(32))
    m = sign1.sign(_p256(), b"m")
    hgtest.raises(CoseError, sign1.verify, m, hk)
    hgtest.raises(CoseError, sign1.verify, m, _ed().public_key())
    hgtest.raises(CoseError, mac0.create, _p256(), b"m", alg=algs.HMAC_256_64)
    hgtest.raises(CoseError, sign1.sign, _p256().public_key(), b"m")  # no private part
    hgtest.raises(CoseError, encrypt0.encrypt, CoseKey.symmetric(bytes(32)), b"m", alg=algs.AES_CCM_16_64_128)


def _sign1_with(prot_map, unprot, payload=b"p"):
    # a correctly signed message with arbitrary headers, to reach the header checks
    key = _p256()
    pb = cbor.dumps(prot_map) if prot_map else b""
    tbs = cbor.dumps(["Signature1", pb, b"", payload])
    from crypto import p256
    return cbor.dumps(cbor.Tag(18, [pb, unprot, payload, p256.sign(key.d, tbs)])), key.public_key()


def test_crit_and_header_rules():
    ok, pub = _sign1_with({1: -7, 2: [4], 4: b"p256"}, {})
    assert sign1.verify(ok, pub) == b"p"
    m, pub = _sign1_with({1: -7, 2: [99], 99: 1}, {})
    e = hgtest.raises(CoseUnsupported, sign1.verify, m, pub)
    assert "99" in str(e)
    m, pub = _sign1_with({1: -7, 2: [3]}, {})  # crit names a label that is not protected
    hgtest.raises(CoseError, sign1.verify, m, pub)
    m, pub = _sign1_with({1: -7, 2: []}, {})
    hgtest.raises(CoseError, sign1.verify, m, pub)
    m, pub = _sign1_with({1: -7}, {2: [4]})  # crit in the unprotected map
    hgtest.raises(CoseError, sign1.verify, m, pub)
    m, pub = _sign1_with({1: -7}, {1: -7})  # a label in both maps
    hgtest.raises(CoseError, sign1.verify, m, pub)
    m, pub = _sign1_with({}, {})
    hgtest.raises(CoseError, sign1.verify, m, pub)  # no alg at all
    m, pub = _sign1_with({1: -7}, {4: "text kid"})
    hgtest.raises(CoseError, sign1.verify, m, pub)


def test_truncated_and_malformed_structures():
    m = sign1.sign(_p256(), b"payload")
    pub = _p256().public_key()
    for cut in range(0, len(m) - 1, 5):
        hgtest.raises(CoseError, sign1.verify, m[:cut], pub)
    bad = [
        cbor.dumps(cbor.Tag(18, [b"", {}, b"p"])),  # 3 items
        cbor.dumps(cbor.Tag(17, [b"", {}, b"p", b"s"])),  # Mac0 tag on a Sign1
        cbor.dumps(cbor.Tag(18, ["text", {}, b"p", b"s"])),  # protected not a bstr
        cbor.dumps(cbor.Tag(18, [b"\x81\x01", {}, b"p", b"s"])),  # protected not a map
        cbor.dumps(cbor.Tag(18, [b"\xa1\x01", {}, b"p", b"s"])),  # protected not CBOR
        cbor.dumps(cbor.Tag(18, [b"\xa1\x01\x26", [], b"p", b"s"])),  # unprotected not a map
        cbor.dumps(cbor.Tag(18, [b"\xa1\x01\x26", {}, 5, b"s"])),  # payload not a bstr
        cbor.dumps(cbor.Tag(18, [b"\xa1\x01\x26", {}, b"p", None])),  # signature not a bstr
        cbor.dumps({1: 2}),
    ]
    for b in bad:
        hgtest.raises(CoseError, sign1.verify, b, pub)
    hgtest.raises(CoseError, mac0.verify, b"\xd1\x84", CoseKey.symmetric(bytes(32)))
    hgtest.raises(CoseError, encrypt0.decrypt, b"\xd0\x83\x40\xa0", CoseKey.symmetric(bytes(16)))
    # wrong signature lengths are a failed verification, not a crash
    m2 = cbor.loads(m)
    m2.value[3] = m2.value[3][:63]
    hgtest.raises(InvalidSignature, sign1.verify, cbor.dumps(m2), pub)




def test_okp_key_encoding():
    ed = _ed()
    back = CoseKey.decode(ed.encode())
    assert back.d is None and back.public_bytes() == ed.public_bytes()
    assert CoseKey.decode(ed.encode(private=True)).d == ED_SEED
    assert "9d61" not in repr(ed)
