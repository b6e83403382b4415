"""Symmetric primitives and HSS/LMS against `cryptography`, `hmac` and `pyhsslms` on random inputs: our device
code on CPython (hypothesis) and on the MicroPython VM (a batch of host-made vectors through mpvm.run)."""
from __future__ import annotations

import hashlib
import hmac
import json
import random

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap
from hypothesis import given, settings, strategies as st
from pyhsslms import pyhsslms as hsslms

from crypto import InvalidTag, aes, ccm, kdf, kw, lms
from hourglass import mpvm

KEYS = st.sampled_from([16, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n))


@given(st.binary(max_size=200), st.binary(max_size=300))
def test_hmac_matches_stdlib(key, data):
    assert kdf.hmac_sha256(key, data) == hmac.new(key, data, hashlib.sha256).digest()


@given(st.binary(max_size=80), st.binary(min_size=1, max_size=80), st.binary(max_size=60),
       st.integers(min_value=1, max_value=600))
def test_hkdf_matches_cryptography(salt, ikm, info, length):
    want = HKDF(hashes.SHA256(), length, salt or None, info).derive(ikm)
    assert kdf.hkdf_sha256(salt, ikm, info, length) == want


@given(st.binary(min_size=1, max_size=64), st.binary(max_size=120), st.integers(min_value=1, max_value=400))
def test_concat_kdf_matches_cryptography(z, other, length):
    assert kdf.concat_kdf_sha256(z, length, other) == ConcatKDFHash(hashes.SHA256(), length, other).derive(z)


@given(st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
       st.binary(min_size=16, max_size=16))
def test_pure_aes_matches_cryptography(key, block):
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor().update(block)
    a = aes.PureAES(key)
    assert a.encrypt_block(block) == enc
    assert a.decrypt_block(enc) == block


@settings(max_examples=150)
@given(KEYS.filter(lambda k: len(k) == 16) | st.binary(min_size=32, max_size=32),
       st.integers(min_value=7, max_value=13).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
       st.binary(max_size=100), st.binary(max_size=70), st.sampled_from([4, 6, 8, 10, 12, 14, 16]))
def test_ccm_matches_cryptography(key, nonce, pt, aad, tag_len):
    want = AESCCM(key, tag_len).encrypt(nonce, pt, aad)
    c = ccm.AesCcm(key, tag_len)
    assert c.encrypt(nonce, pt, aad) == want
    assert c.decrypt(nonce, want, aad) == pt
    bad = bytearray(want)
    bad[len(bad) // 2] ^= 0x40
    with pytest.raises(InvalidTag):
        c.decrypt(nonce, bytes(bad), aad)


@given(st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
       st.integers(min_value=2, max_value=8).flatmap(lambda n: st.binary(min_size=8 * n, max_size=8 * n)))
def test_key_wrap_matches_cryptography(kek, key):
    wrapped = aes_key_wrap(kek, key)
    assert kw.aes_key_wrap(kek, key) == wrapped
    assert kw.aes_key_unwrap(kek, wrapped) == key
    assert aes_key_unwrap(kek, kw.aes_key_wrap(kek, key, pure=True)) == key


# --- the same checks on the MicroPython VM, which has cryptolib: both AES paths are exercised there ---

VM_SYM = r"""
import sys, json
from crypto import aes, ccm, kdf, kw
while True:
    line = sys.stdin.readline()
    if not line:
        break
    v = json.loads(line)
    h = bytes.fromhex
    key, nonce, pt, aad, tl = h(v["key"]), h(v["nonce"]), h(v["pt"]), h(v["aad"]), v["tag_len"]
    r = {}
    r["ccm"] = ccm.AesCcm(key, tl).encrypt(nonce, pt, aad).hex()
    r["ccm_pure"] = ccm.AesCcm(key, tl, pure=True).encrypt(nonce, pt, aad).hex()
    r["ccm_dec"] = ccm.AesCcm(key, tl).decrypt(nonce, h(v["ccm_want"]), aad) == pt
    r["ecb"] = aes.new(key).encrypt_block(pt[:16]).hex() if len(pt) >= 16 else ""
    r["ecb_pure"] = aes.PureAES(key).encrypt_block(pt[:16]).hex() if len(pt) >= 16 else ""
    r["hkdf"] = kdf.hkdf_sha256(aad, key, nonce, 77).hex()
    r["hmac"] = kdf.hmac_sha256(key, pt).hex()
    r["concat"] = kdf.concat_kdf_sha256(key, 70, aad).hex()
    r["kw"] = kw.aes_key_wrap(key, key + nonce[:8]).hex()
    r["kw_pure"] = kw.aes_key_wrap(key, key + nonce[:8], pure=True).hex()
    print(json.dumps(r))
"""


def _vm_json(code, items, heap="128k"):
    """Feed items one JSON line each to code on the VM; it prints one JSON result line per item."""
    data = "".join(json.dumps(i) + "\n" for i in items).encode()
    proc = mpvm.run(["-c", code], heap=heap, input=data)
    assert proc.returncode == 0, proc.stderr.decode() + proc.stdout.decode()[-2000:]
    return [json.loads(line) for line in proc.stdout.decode().splitlines() if line.strip()]


def test_symmetric_on_vm_matches_cryptography():
    rng = random.Random(2024)
    vectors = []
    for i in range(40):
        key = rng.randbytes(rng.choice([16, 32]))
        nonce = rng.randbytes(rng.randint(8, 13))
        pt = rng.randbytes(rng.randint(0, 90))
        aad = rng.randbytes(rng.randint(0, 40))
        tag_len = rng.choice([4, 8, 16])
        vectors.append({"key": key.hex(), "nonce": nonce.hex(), "pt": pt.hex(), "aad": aad.hex(),
                        "tag_len": tag_len, "ccm_want": AESCCM(key, tag_len).encrypt(nonce, pt, aad).hex()})
    got = _vm_json(VM_SYM, vectors)
    assert len(got) == len(vectors)
    for v, r in zip(vectors, got):
        h = bytes.fromhex
        key, nonce, pt, aad = h(v["key"]), h(v["nonce"]), h(v["pt"]), h(v["aad"])
        assert r["ccm"] == r["ccm_pure"] == v["ccm_want"]
        assert r["ccm_dec"] is True
        if len(pt) >= 16:
            ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor().update(pt[:16]).hex()
            assert r["ecb"] == r["ecb_pure"] == ecb
        assert r["hkdf"] == HKDF(hashes.SHA256(), 77, aad or None, nonce).derive(key).hex()
        assert r["hmac"] == hmac.new(key, pt, hashlib.sha256).hexdigest()
        assert r["concat"] == ConcatKDFHash(hashes.SHA256(), 70, aad).derive(key).hex()
        assert r["kw"] == r["kw_pure"] == aes_key_wrap(key, key + nonce[:8]).hex()


# --- HSS/LMS: fresh pyhsslms keys and signatures, verified by our code on CPython and on the VM ---

LMS_SETS = [
    (1, hsslms.lms_sha256_m32_h5, hsslms.lmots_sha256_n32_w1),
    (1, hsslms.lms_sha256_m32_h5, hsslms.lmots_sha256_n32_w2),
    (2, hsslms.lms_sha256_m32_h5, hsslms.lmots_sha256_n32_w4),
    (1, hsslms.lms_sha256_m32_h5, hsslms.lmots_sha256_n32_w8),
    (1, hsslms.lms_sha256_m32_h10, hsslms.lmots_sha256_n32_w2),
]


@pytest.fixture(scope="module")
def lms_signatures():
    rng = random.Random(8554)
    out = []
    for levels, lms_type, ots_type in LMS_SETS:
        key = hsslms.HssPrivateKey(levels=levels, lms_type=lms_type, lmots_type=ots_type)
        pub = key.publicKey().serialize()
        for _ in range(2):
            msg = rng.randbytes(rng.randint(0, 200))
            sig = key.sign(msg)
            assert key.publicKey().verify(msg, sig)
            flipped = bytearray(sig)
            flipped[rng.randrange(len(sig))] ^= 1 << rng.randrange(8)
            out.append({"pub": pub.hex(), "msg": msg.hex(), "sig": sig.hex(), "bad": bytes(flipped).hex()})
    return out


def test_pyhsslms_signatures_verify_on_cpython(lms_signatures):
    for v in lms_signatures:
        pub, msg = bytes.fromhex(v["pub"]), bytes.fromhex(v["msg"])
        assert lms.hss_verify(pub, msg, bytes.fromhex(v["sig"]))
        assert not lms.hss_verify(pub, msg, bytes.fromhex(v["bad"]))
        assert not lms.hss_verify(pub, msg + b"\0", bytes.fromhex(v["sig"]))


VM_LMS = r"""
import sys, json
from crypto import lms
while True:
    line = sys.stdin.readline()
    if not line:
        break
    v = json.loads(line)
    line = None
    pub, msg = bytes.fromhex(v["pub"]), bytes.fromhex(v["msg"])
    print(json.dumps([lms.hss_verify(pub, msg, bytes.fromhex(v["sig"])),
                      lms.hss_verify(pub, msg, bytes.fromhex(v["bad"]))]))
"""


def test_pyhsslms_signatures_verify_on_vm(lms_signatures):
    # 256k: a W=1 signature arrives as two 17 KB hex strings in one JSON line; verify itself needs far less
    got = _vm_json(VM_LMS, lms_signatures, heap="256k")
    assert got == [[True, False]] * len(lms_signatures)
