# Elliptic-curve benchmarks: ours against textbook implementations (textbook_ec.py: affine, double-and-add,
# pow inversions; for X25519 the literal RFC 7748 ladder) on the same VM, plus cryptography on CPython for scale.
from crypto import ed25519, p256, sha512, x25519

import textbook_ec

COMPARE = [
    ("Ed25519 verify vs textbook", ("bench_ed25519_verify", "micropython"),
     ("bench_ed25519_verify_textbook", "micropython"), 5.0),
    ("P-256 verify vs textbook", ("bench_p256_verify", "micropython"),
     ("bench_p256_verify_textbook", "micropython"), 3.0),
    ("X25519 vs plain RFC 7748 ladder", ("bench_x25519", "micropython"),
     ("bench_x25519_textbook", "micropython"), 1.0),
    ("Ed25519 verify: ours on the VM vs cryptography (OpenSSL) on CPython", ("bench_ed25519_verify", "micropython"),
     ("bench_ed25519_verify_cryptography", "cpython"), None),
    ("P-256 verify: ours on the VM vs cryptography (OpenSSL) on CPython", ("bench_p256_verify", "micropython"),
     ("bench_p256_verify_cryptography", "cpython"), None),
]
CPYTHON_ONLY = ("bench_ed25519_verify_cryptography", "bench_p256_verify_cryptography")
# The textbook references take ~0.5-1 s per operation on the VM: no peak-heap bisection for them.
NO_PEAK = ("bench_ed25519_verify_textbook", "bench_p256_verify_textbook", "bench_x25519_textbook")

# A typical signed object: a 100-byte COSE Sig_structure-sized message.
MESSAGE = bytes(range(100))
ED_SEED = bytes(range(32))
P256_PRIV = bytes(range(1, 33))
X_PRIV = bytes(range(32, 64))
X_PEER = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")


def _ed_fixture():
    return ed25519.public_key(ED_SEED), ed25519.sign(ED_SEED, MESSAGE)


def _p256_fixture():
    return p256.public_key(P256_PRIV), p256.sign(P256_PRIV, MESSAGE)


def bench_ed25519_verify():
    pub, sig = _ed_fixture()

    def op():
        if not ed25519.verify(pub, MESSAGE, sig):
            raise AssertionError("verify failed")
    return op


def bench_ed25519_verify_textbook():
    pub, sig = _ed_fixture()

    def op():
        if not textbook_ec.ed25519_verify(pub, MESSAGE, sig):
            raise AssertionError("verify failed")
    return op


def bench_ed25519_sign():
    return lambda: ed25519.sign(ED_SEED, MESSAGE)


def bench_sha512_pure_1_block():
    data = MESSAGE  # 100 bytes: one padded block
    return lambda: sha512.Sha512(data).digest()


def bench_sha512_1_block():
    # what Ed25519 uses: viper on the VM and the boards, hashlib on CPython
    data = MESSAGE
    return lambda: sha512.digest(data)


def bench_p256_verify():
    pub, sig = _p256_fixture()

    def op():
        if not p256.verify(pub, MESSAGE, sig):
            raise AssertionError("verify failed")
    return op


def bench_p256_verify_textbook():
    pub, sig = _p256_fixture()

    def op():
        if not textbook_ec.p256_verify(pub, MESSAGE, sig):
            raise AssertionError("verify failed")
    return op


def bench_p256_sign():
    return lambda: p256.sign(P256_PRIV, MESSAGE)


def bench_p256_ecdh():
    peer = p256.public_key(bytes(range(2, 34)))
    return lambda: p256.ecdh(P256_PRIV, peer)


def bench_x25519():
    return lambda: x25519.x25519(X_PRIV, X_PEER)


def bench_x25519_textbook():
    if textbook_ec.x25519(X_PRIV, X_PEER) != x25519.x25519(X_PRIV, X_PEER):
        raise AssertionError("textbook ladder disagrees")
    return lambda: textbook_ec.x25519(X_PRIV, X_PEER)


def bench_ed25519_verify_cryptography():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    pub, sig = _ed_fixture()
    key = Ed25519PublicKey.from_public_bytes(pub)
    return lambda: key.verify(sig, MESSAGE)


def bench_p256_verify_cryptography():
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils
    pub, sig = _p256_fixture()
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), pub)
    der = utils.encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    algo = ec.ECDSA(hashes.SHA256())
    return lambda: key.verify(der, MESSAGE, algo)
