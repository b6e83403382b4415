# HSS/LMS verification (RFC 8554) on both runtimes: Appendix F test cases 1 and 2, signatures made with
# pyhsslms for every LM-OTS parameter set (host_tests/vectors/crypto/lms_*.txt), and hostile inputs.
import hgtest

from crypto import CryptoError
from crypto import lms
MP_HEAP = "144k"  # passes at 96k on the bare VM; on the ESP32 (112k) the HIL mount reads 8 KiB vectors


def _load(name):
    d = {}
    for line in hgtest.read_vector("crypto/" + name).decode().split("\n"):
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            d[k.strip()] = hgtest.unhex(v.strip())
    return d


def _flip(data, bit):
    b = bytearray(data)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def test_rfc8554_test_case_1():
    v = _load("rfc8554_tc1.txt")
    assert lms.hss_verify(v["public_key"], v["message"], v["signature"]) is True


def test_rfc8554_test_case_2():
    v = _load("rfc8554_tc2.txt")
    assert lms.hss_verify(v["public_key"], v["message"], v["signature"]) is True


def test_rfc8554_wrong_message_and_flipped_bits():
    v = _load("rfc8554_tc1.txt")
    pub, msg, sig = v["public_key"], v["message"], v["signature"]
    assert not lms.hss_verify(pub, msg + b"x", sig)
    assert not lms.hss_verify(pub, _flip(msg, 3), sig)
    rng = hgtest.Rng(8554)
    for _ in range(12):
        assert not lms.hss_verify(pub, msg, _flip(sig, rng.below(len(sig) * 8)))
    # the public key's root and identifier are covered too
    assert not lms.hss_verify(_flip(pub, 8 * 30), msg, sig)
    assert not lms.hss_verify(_flip(pub, 8 * 59), msg, sig)


def test_rfc8554_truncated_and_extended():
    v = _load("rfc8554_tc2.txt")
    pub, msg, sig = v["public_key"], v["message"], v["signature"]
    for cut in (0, 3, 4, 8, 40, 1000, len(sig) - 32, len(sig) - 1):
        assert not lms.hss_verify(pub, msg, sig[:cut])
    assert not lms.hss_verify(pub, msg, sig + b"\x00")


def test_hostile_type_fields():
    v = _load("rfc8554_tc1.txt")
    pub, msg, sig = v["public_key"], v["message"], bytearray(v["signature"])
    # Nspk must be levels - 1
    bad = bytearray(sig)
    bad[3] = 7
    assert not lms.hss_verify(pub, msg, bad)
    # unknown LM-OTS type in the first LMS signature, and a type that names a longer signature
    for t in (0, 5, 0xFF, 1):
        bad = bytearray(sig)
        bad[11] = t
        assert not lms.hss_verify(pub, msg, bad)
    # a huge Nspk is refused before anything is allocated
    bad = bytearray(sig)
    bad[0] = 0xFF
    assert not lms.hss_verify(pub, msg, bad)


def test_public_key_checks():
    v = _load("rfc8554_tc1.txt")
    pub, msg, sig = v["public_key"], v["message"], v["signature"]
    hgtest.raises(CryptoError, lms.hss_verify, pub[:-1], msg, sig)
    hgtest.raises(CryptoError, lms.hss_verify, b"\x00\x00\x00\x00" + pub[4:], msg, sig)
    hgtest.raises(CryptoError, lms.hss_verify, b"\x00\x00\x00\x09" + pub[4:], msg, sig)
    hgtest.raises(CryptoError, lms.hss_verify, pub[:7] + b"\x04" + pub[8:], msg, sig)  # LMS type 4 unknown
    # level count that disagrees with the signature
    assert not lms.hss_verify(b"\x00\x00\x00\x01" + pub[4:], msg, sig)


def test_single_level_lms_verify():
    # The top-level LMS signature in test case 1 signs the second-level public key.
    v = _load("rfc8554_tc1.txt")
    sig = v["signature"]
    n = lms.lms_signature_length(sig, 4)
    child = sig[4 + n:4 + n + 56]
    assert lms.lms_verify(v["public_key"][4:], child, sig[4:4 + n])
    assert not lms.lms_verify(v["public_key"][4:], _flip(child, 1), sig[4:4 + n])


PYHSSLMS_SETS = ("w1_h5_l1", "w2_h5_l1", "w4_h5_l1", "w8_h5_l1", "w4_h5_l3", "w1_h10_l1")


def test_pyhsslms_parameter_sets():
    # Signatures from pyhsslms for each LM-OTS W, two tree heights and 1 or 3 levels (vectors/crypto/lms/).
    msg = hgtest.read_vector("crypto/lms/message.bin")
    for name in PYHSSLMS_SETS:
        pub = hgtest.read_vector("crypto/lms/%s.pub" % name)
        sig = hgtest.read_vector("crypto/lms/%s.sig" % name)
        assert lms.hss_verify(pub, msg, sig), name
        assert not lms.hss_verify(pub, msg, _flip(sig, 8 * (len(sig) // 2) + 1)), name
        assert not lms.hss_verify(pub, msg[:-1], sig), name


def test_python_chain_walk_matches():
    # On the VM lms uses the viper chain walk; the Python walk (the fallback) must verify the same vectors.
    lms._pick_walkers(bytearray(1024))  # the choice is made on the first verification: make it now, then override it
    from crypto import _lms_py
    saved = lms._ots_walk, lms._merkle
    lms._ots_walk, lms._merkle = _lms_py.ots_walk, _lms_py.merkle
    try:
        for name in ("w1_h5_l1", "w2_h5_l1", "w4_h5_l3", "w8_h5_l1"):
            pub = hgtest.read_vector("crypto/lms/%s.pub" % name)
            sig = hgtest.read_vector("crypto/lms/%s.sig" % name)
            msg = hgtest.read_vector("crypto/lms/message.bin")
            assert lms.hss_verify(pub, msg, sig)
            assert not lms.hss_verify(pub, msg, _flip(sig, 8 * 300))
    finally:
        lms._ots_walk, lms._merkle = saved
    if hgtest.IS_MICROPYTHON:  # the emitter is there and passed the self-test
        from crypto import _lms_viper
        assert lms._ots_walk is _lms_viper.ots_walk and lms._merkle is _lms_viper.merkle
        import crypto
        crypto.release("crypto._lms_py")



def test_self_test_answers_are_the_python_walks():
    # crypto._lms_selftest checks the viper walk against constants instead of loading the Python walk beside it:
    # the constants must be what the Python walk gives, and on the VM the viper walk must give them too
    import sys
    from crypto import _lms_py, _lms_selftest
    for chains in (32, 16, 20, 1):  # crypto.lms's block and others: the answers do not depend on it
        block = bytearray(chains * 32)
        assert _lms_selftest.run(_lms_py.ots_walk, _lms_py.merkle, block) == _lms_selftest.ANSWER, chains
        if hgtest.IS_MICROPYTHON:
            from crypto import _lms_viper
            assert _lms_selftest.passes(_lms_viper.ots_walk, _lms_viper.merkle, block), chains
    if hgtest.IS_MICROPYTHON:
        import crypto
        crypto.release("crypto._lms_py", "crypto._lms_selftest")
        lms._ots_walk = None
        msg = hgtest.read_vector("crypto/lms/message.bin")
        assert lms.hss_verify(hgtest.read_vector("crypto/lms/w8_h5_l1.pub"), msg,
                              hgtest.read_vector("crypto/lms/w8_h5_l1.sig"))
        assert lms._ots_walk is _lms_viper.ots_walk  # the viper walk passed the known answers
        assert "crypto._lms_py" not in sys.modules and "crypto._lms_selftest" not in sys.modules

def test_unaligned_signature_buffer():
    # The viper walk copies words when the y values are word-aligned and bytes otherwise: both must agree.
    msg = hgtest.read_vector("crypto/lms/message.bin")
    for name in ("w1_h5_l1", "w4_h5_l3"):
        pub = hgtest.read_vector("crypto/lms/%s.pub" % name)
        sig = hgtest.read_vector("crypto/lms/%s.sig" % name)
        for shift in (1, 2, 3):
            padded = bytearray(shift) + sig
            view = memoryview(padded)[shift:]
            assert lms.hss_verify(pub, msg, view), (name, shift)
            padded[shift + 700] ^= 4
            assert not lms.hss_verify(pub, msg, view), (name, shift)
