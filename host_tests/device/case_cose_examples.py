# The COSE WG examples and the SUIT envelopes' COSE objects we carry (vectors/cose/examples.json) and a
# host-made HSS-LMS COSE_Sign1 (vectors/cose/hss_sign1.json), on both runtimes.
import json

import cbor
import hgtest
from hgtest import unhex

from crypto import InvalidSignature, InvalidTag
from cose import CoseError, CoseUnsupported
from cose import algs, encrypt, encrypt0, mac0, sign1
from cose.key import CoseKey

# cbor + cose + the P-256/Ed25519 tables compiled from source need ~100 KiB of the 64-bit VM heap before
# the first test; 192k on the VM is ~96 KiB on a 32-bit board, inside the ESP32's grown heap (~112 KiB) and
# the nRF52840's (~200 KiB). case_cose.py (no EC) runs at the default 128k. This file also holds the
# example vectors as JSON with hex strings (an HSS-LMS signature is ~5 KB of hex), and at 192k the last test's
# 3 KB allocations failed on fragmentation depending on what ran before: 224k leaves room for the vectors;
# the operations' own peak heap is in `make bench` (HSS-LMS Sign1 verify ≈ 12.8 KB on the VM).
MP_HEAP = "224k"


def _flip(data, bit):
    b = bytearray(data)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def _vectors():
    return json.loads(hgtest.read_vector("cose/examples.json"))


def _key(name, vectors):
    k = vectors["keys"][name]
    kid = unhex(k["kid"]) if "kid" in k else None
    if "d" in k:
        return CoseKey(algs.KTY_EC2, k["alg"], kid, algs.CRV_P256, x=unhex(k["x"]), y=unhex(k["y"]),
                       d=unhex(k["d"]))
    if "base_iv" in k:
        return CoseKey.symmetric(unhex(k["k"]), k["alg"], kid, unhex(k["base_iv"]))
    if "pub" in k:
        return CoseKey.from_raw(k["alg"], unhex(k["pub"]), kid)
    return CoseKey.from_raw(k["alg"], unhex(k["k"]), kid)


def _flip(data, bit):
    b = bytearray(data)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def test_cose_wg_and_suit_examples():
    verify = {"sign1": sign1.verify, "mac0": mac0.verify, "encrypt0": encrypt0.decrypt}
    checked = 0
    v = _vectors()
    for m in v["messages"]:
        key = _key(m["key"], v)
        data = unhex(m["cbor"])
        ext = unhex(m.get("external", ""))
        name, expect, kind = m["name"], m["expect"], m["kind"]
        if kind == "encrypt-kw":
            arr = cbor.loads(data)
            assert len(encrypt.unwrap_cek(arr[3], key)) == 16, name
            wrong = CoseKey.from_raw(algs.A128KW, bytes(16), kid=key.kid)
            hgtest.raises(InvalidTag, encrypt.unwrap_cek, arr[3], wrong)
            # the content is A128GCM, which is not ours to decrypt: a clear error, not a crash
            hgtest.raises(CoseUnsupported, encrypt.decrypt, cbor.Tag(96, arr), key)
            checked += 1
            continue
        fn = verify[kind]
        kw = {"external_aad": ext}
        if "detached" in m:
            kw["payload" if kind != "encrypt0" else "ciphertext"] = unhex(m["detached"])
        if expect == "pass":
            out = fn(data, key, **kw)
            if "payload" in m:
                assert out == unhex(m["payload"]), name
        elif expect == "fail":
            hgtest.raises(InvalidSignature if kind == "sign1" else InvalidTag, fn, data, key, **kw)
        elif expect == "unsupported":
            hgtest.raises(CoseUnsupported, fn, data, key, **kw)
        else:
            hgtest.raises(CoseError, fn, data, key, **kw)
        checked += 1
    assert checked == 17


def test_cose_wg_external_aad_is_bound():
    v = _vectors()
    m = v["messages"][1]
    assert m["name"] == "sign-pass-02"
    hgtest.raises(InvalidSignature, sign1.verify, unhex(m["cbor"]), _key(m["key"], v))


def test_suit_detached_needs_the_right_digest():
    v = _vectors()
    for m in v["messages"]:
        if m["name"].startswith("SUIT example0"):
            digest = unhex(m["detached"])
            hgtest.raises(CoseError, sign1.verify, unhex(m["cbor"]), _key(m["key"], v))
            hgtest.raises(InvalidSignature, sign1.verify, unhex(m["cbor"]), _key(m["key"], v),
                          payload=_flip(digest, 100))


def test_hss_lms_sign1_from_host():
    v = json.loads(hgtest.read_vector("cose/hss_sign1.json"))
    key = CoseKey.from_raw(algs.HSS_LMS, unhex(v["pub"]), kid=unhex(v["kid"]))
    payload = unhex(v["detached"])
    assert sign1.verify(unhex(v["cbor"]), key, payload=payload) == payload
    hgtest.raises(InvalidSignature, sign1.verify, unhex(v["cbor"]), key, payload=_flip(payload, 5))
    data = unhex(v["cbor"])
    hgtest.raises(InvalidSignature, sign1.verify, _flip(data, 8 * (len(data) - 100)), key, payload=payload)
    # signing with HSS-LMS stays on the host
    hgtest.raises(CoseError, sign1.sign, key, b"x")
