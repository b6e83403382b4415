# Symmetric primitives and HSS/LMS verify. LMS verify is compared with the bare SHA-256 calls it needs: the
# same number of hashlib calls over inputs of the same lengths, recorded from one real verification.
import hashlib

from crypto import aes, ccm, kdf, kw, lms

# ratio = ops/s(verify) / ops/s(bare); the target 0.667 is "verify takes at most 1.5x the bare SHA-256 time"
COMPARE = [
    ("LMS verify W8/H5 vs its bare SHA-256 calls (target: <= 1.5x the time)",
     ("bench_lms_verify_w8_h5", "micropython"), ("bench_lms_sha256_bare_w8_h5", "micropython"), 0.667),
    ("LMS verify W4/H5 vs its bare SHA-256 calls", ("bench_lms_verify_w4_h5", "micropython"),
     ("bench_lms_sha256_bare_w4_h5", "micropython"), 0.667),
    ("LMS verify W1/H10 vs its bare SHA-256 calls", ("bench_lms_verify_w1_h10", "micropython"),
     ("bench_lms_sha256_bare_w1_h10", "micropython"), 0.667),
    ("RFC 8554 test case 2 (HSS L=2) vs its bare SHA-256 calls", ("bench_hss_verify_rfc8554_tc2", "micropython"),
     ("bench_hss_sha256_bare_rfc8554_tc2", "micropython"), 0.667),
    ("AES-128 block: bytecode PureAES vs cryptolib on the VM", ("bench_aes128_block_pure", "micropython"),
     ("bench_aes128_block_cryptolib", "micropython"), None),
    ("AES-128 block: viper vs cryptolib on the VM", ("bench_aes128_block_viper", "micropython"),
     ("bench_aes128_block_cryptolib", "micropython"), None),
    ("AES-128 block: viper vs bytecode PureAES on the VM", ("bench_aes128_block_viper", "micropython"),
     ("bench_aes128_block_pure", "micropython"), None),
    ("AES-CCM 64 B: ours on the VM vs cryptography on CPython", ("bench_ccm_encrypt_64", "micropython"),
     ("bench_ccm_encrypt_64_cryptography", "cpython"), None),
]
MP_HEAP = "192k"  # the RFC 8554 vector arrives as 7.7 KB of hex
MICROPYTHON_ONLY = ("bench_aes128_block_cryptolib", "bench_aes128_block_viper", "bench_ccm_encrypt_64_viper")
CPYTHON_ONLY = ("bench_ccm_encrypt_64_cryptography",)

KEY16 = bytes(range(16))
KEY32 = bytes(range(32))
NONCE = bytes(range(13))
MSG64 = bytes(range(64))
AAD = bytes(range(10))
VEC = "host_tests/vectors/crypto/"


def bench_hmac_sha256_64():
    return lambda: kdf.hmac_sha256(KEY32, MSG64)


def bench_hkdf_sha256_oscore():
    # OSCORE sender key: 16-byte master secret, 8-byte salt, CBOR info, 16 bytes out
    info = bytes.fromhex("8540f60a634b657910")
    return lambda: kdf.hkdf_sha256(KEY16[:8], KEY16, info, 16)


def bench_concat_kdf_320():
    # EAP-NOOB: Z (32 bytes) and ~100 bytes of OtherInfo to 320 bytes of keying material
    other = bytes(100)
    return lambda: kdf.concat_kdf_sha256(KEY32, 320, other)


def bench_aes128_block_pure():
    a = aes.PureAES(KEY16)
    out = bytearray(16)
    return lambda: a.encrypt_into(MSG64[:16], out)


def bench_aes128_block_cryptolib():
    a = aes.CryptolibAES(KEY16)
    out = bytearray(16)
    return lambda: a.encrypt_into(MSG64[:16], out)


def bench_aes128_block_viper():
    a = aes.ViperAES(KEY16)
    out = bytearray(16)
    return lambda: a.encrypt_into(MSG64[:16], out)


def bench_aes256_block_pure():
    a = aes.PureAES(KEY32)
    out = bytearray(16)
    return lambda: a.encrypt_into(MSG64[:16], out)


def bench_ccm_encrypt_64():
    c = ccm.AesCcm(KEY16, 8)
    return lambda: c.encrypt(NONCE, MSG64, AAD)


def bench_ccm_decrypt_64():
    c = ccm.AesCcm(KEY16, 8)
    ct = c.encrypt(NONCE, MSG64, AAD)
    return lambda: c.decrypt(NONCE, ct, AAD)


def bench_ccm_encrypt_64_pure():
    # the bytecode PureAES underneath (what a port without cryptolib and without viper gets)
    c = ccm.AesCcm(KEY16, 8, cipher=aes.PureAES(KEY16))
    return lambda: c.encrypt(NONCE, MSG64, AAD)


def bench_ccm_encrypt_64_viper():
    # the nRF52840 case: no cryptolib, AES from _aes_viper
    c = ccm.AesCcm(KEY16, 8, cipher=aes.ViperAES(KEY16))
    return lambda: c.encrypt(NONCE, MSG64, AAD)


def bench_ccm_encrypt_64_cryptography():
    from cryptography.hazmat.primitives.ciphers.aead import AESCCM
    c = AESCCM(KEY16, 8)
    return lambda: c.encrypt(NONCE, MSG64, AAD)


def bench_kw_wrap_a128kw():
    return lambda: kw.aes_key_wrap(KEY16, KEY32[:16])


def bench_kw_unwrap_a128kw():
    w = kw.aes_key_wrap(KEY16, KEY32[:16])
    return lambda: kw.aes_key_unwrap(KEY16, w)


def _read(name):
    with open(VEC + name, "rb") as f:
        return f.read()


def _read_hex_vector(name):
    d = {}
    with open(VEC + name) as f:
        for line in f:
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                d[k.strip()] = bytes.fromhex(v.strip())
    return d


def _lms_fixture(name):
    return _read("lms/%s.pub" % name), _read("lms/message.bin"), _read("lms/%s.sig" % name)


def _verify_op(pub, msg, sig):
    def op():
        if not lms.hss_verify(pub, msg, sig):
            raise AssertionError("LMS verify failed")
    return op


class _RecordingSha256:
    """Stands in for hashlib.sha256 inside crypto.lms during one verification, recording the input length of
    every call as runs of [length, count] (a plain list of ~4000 lengths would not fit the VM heap)."""
    runs = []

    def __init__(self, data=b""):
        self.n = len(data)
        self.h = hashlib.sha256(data)

    def update(self, data):
        self.n += len(data)
        self.h.update(data)

    def digest(self):
        runs = _RecordingSha256.runs
        if runs and runs[-1][0] == self.n:
            runs[-1][1] += 1
        else:
            runs.append([self.n, 1])
        return self.h.digest()


def _bare_op(pub, msg, sig):
    """One SHA-256 call per call the verification makes, on preallocated inputs of the same lengths."""
    _RecordingSha256.runs = []
    real = lms._sha256
    lms._sha256 = _RecordingSha256
    try:
        assert lms.hss_verify(pub, msg, sig)
    finally:
        lms._sha256 = real
    inputs = {}
    runs = []
    for n, count in _RecordingSha256.runs:
        if n not in inputs:
            inputs[n] = bytes(n)
        runs.append((inputs[n], count))
    _RecordingSha256.runs = []
    sha = hashlib.sha256

    def op():
        for b, count in runs:
            for _ in range(count):
                sha(b).digest()
    return op


def bench_lms_verify_w8_h5():
    return _verify_op(*_lms_fixture("w8_h5_l1"))


def bench_lms_sha256_bare_w8_h5():
    return _bare_op(*_lms_fixture("w8_h5_l1"))


def bench_lms_verify_w4_h5():
    return _verify_op(*_lms_fixture("w4_h5_l1"))


def bench_lms_sha256_bare_w4_h5():
    return _bare_op(*_lms_fixture("w4_h5_l1"))


def bench_lms_verify_w1_h10():
    return _verify_op(*_lms_fixture("w1_h10_l1"))


def bench_lms_sha256_bare_w1_h10():
    return _bare_op(*_lms_fixture("w1_h10_l1"))


def _tc2():
    v = _read_hex_vector("rfc8554_tc2.txt")
    return v["public_key"], v["message"], v["signature"]


def bench_hss_verify_rfc8554_tc2():
    return _verify_op(*_tc2())


def bench_hss_sha256_bare_rfc8554_tc2():
    return _bare_op(*_tc2())
