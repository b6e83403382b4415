# COSE operations as SUIT, OSCORE-style and attestation code run them: detached COSE_Sign1 over a bstr-wrapped
# SUIT digest (ES256, EdDSA, HSS-LMS), COSE_Mac0 (HMAC 256/256), COSE_Encrypt0 (AES-CCM-16-64-128), and the
# COSE overhead itself (ES256 Sign1 verify next to the bare p256.verify over the same Sig_structure).
import json

from cose import algs, encrypt0, mac0, sign1
from cose.key import CoseKey

from bench_cbor import out_of_heap_as_memory_error

COMPARE = [
    ("COSE_Sign1 ES256 verify vs bare p256.verify of its Sig_structure", ("bench_sign1_verify_es256", "micropython"),
     ("bench_p256_verify_bare", "micropython"), None),
    ("COSE_Sign1 HSS-LMS verify (W4/H5) vs ES256 verify", ("bench_sign1_verify_hss_lms", "micropython"),
     ("bench_sign1_verify_es256", "micropython"), None),
]
MP_HEAP = "192k"

# SUIT: the payload is the bstr-wrapped SUIT_Digest of example0 (draft-ietf-suit-manifest-37)
DIGEST = bytes.fromhex("822f58206658ea560262696dd1f13b782239a064da7c6c5cbaf52fded428a6fc83c7e5af")
P256_PRIV = bytes(range(1, 33))
ED_SEED = bytes(range(32))
VEC = "host_tests/vectors/cose/"


def _es256():
    return CoseKey.from_raw(algs.ES256, P256_PRIV, kid=b"es", private=True)


def bench_sign1_verify_es256():
    key = _es256()
    msg = sign1.sign(key, DIGEST, detached=True)
    pub = key.public_key()
    return out_of_heap_as_memory_error(lambda: sign1.verify(msg, pub, payload=DIGEST))


def bench_p256_verify_bare():
    from crypto import p256
    import cbor
    key = _es256()
    pub = key.public_bytes()
    tbs = cbor.dumps(["Signature1", b"\xa1\x01\x26", b"", DIGEST])
    sig = p256.sign(P256_PRIV, tbs)

    def op():
        if not p256.verify(pub, tbs, sig):
            raise AssertionError("verify failed")
    return op


def bench_sign1_sign_es256():
    key = _es256()
    op = lambda: sign1.sign(key, DIGEST, detached=True)  # noqa: E731
    op()  # signing code loads on first use: not part of one operation's allocation
    return op


def bench_sign1_verify_eddsa():
    key = CoseKey.from_raw(algs.EDDSA, ED_SEED, kid=b"ed", private=True)
    msg = sign1.sign(key, DIGEST, detached=True)
    pub = key.public_key()
    return out_of_heap_as_memory_error(lambda: sign1.verify(msg, pub, payload=DIGEST))


def bench_sign1_verify_hss_lms():
    with open(VEC + "hss_sign1.json") as f:
        v = json.loads(f.read())
    key = CoseKey.from_raw(algs.HSS_LMS, bytes.fromhex(v["pub"]), kid=bytes.fromhex(v["kid"]))
    msg = bytes.fromhex(v["cbor"])
    payload = bytes.fromhex(v["detached"])
    return out_of_heap_as_memory_error(lambda: sign1.verify(msg, key, payload=payload))


def bench_mac0_verify_hmac256():
    key = CoseKey.from_raw(algs.HMAC_256_256, bytes(range(32)), kid=b"m")
    msg = mac0.create(key, DIGEST, detached=True)
    return out_of_heap_as_memory_error(lambda: mac0.verify(msg, key, payload=DIGEST))


def bench_encrypt0_decrypt_64():
    key = CoseKey.from_raw(algs.AES_CCM_16_64_128, bytes(range(16)), kid=b"c")
    msg = encrypt0.encrypt(key, bytes(64), iv=bytes(13))
    return out_of_heap_as_memory_error(lambda: encrypt0.decrypt(msg, key))


def bench_cose_key_decode_p256():
    data = _es256().encode()
    return out_of_heap_as_memory_error(lambda: CoseKey.decode(data))
