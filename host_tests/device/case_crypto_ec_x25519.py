# X25519 (RFC 7748) on both runtimes: section 5.2 vectors (including the 1 and 1000 iteration ones; the
# 1,000,000 one would take hours on the VM), section 6.1 Diffie-Hellman, and small-order inputs.
import hgtest
from hgtest import unhex

from crypto import CryptoError
from crypto import x25519

# Below the default 128k (the VM's stand-in for the ESP32): compiling this file and its vectors needs more
# heap than the operations themselves (see host_tests/bench/host_crypto_ec.py for their peaks).
MP_HEAP = "96k"

P = 2**255 - 19


def test_rfc7748_5_2_vector_1():
    k = unhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
    u = unhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
    assert x25519.x25519(k, u) == unhex("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")


def test_rfc7748_5_2_vector_2_masks_the_top_bit_of_u():
    k = unhex("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d")
    u = unhex("e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493")
    out = unhex("95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957")
    assert x25519.x25519(k, u) == out
    # u's last byte is 0x93: bit 255 is set and must be ignored
    cleared = u[:31] + bytes([u[31] & 0x7F])
    assert x25519.x25519(k, cleared) == out


def _iterate(n):
    k = u = (9).to_bytes(32, "little")
    for _ in range(n):
        k, u = x25519.x25519(k, u), k
    return k


def test_rfc7748_5_2_one_iteration():
    assert _iterate(1) == unhex("422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079")


def test_rfc7748_5_2_thousand_iterations():
    assert _iterate(1000) == unhex("684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51")


def test_rfc7748_6_1_diffie_hellman():
    a = unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    a_pub = unhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    b = unhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
    b_pub = unhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
    shared = unhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
    assert x25519.public_key(a) == a_pub
    assert x25519.public_key(b) == b_pub
    assert x25519.x25519(a, b_pub) == shared
    assert x25519.x25519(b, a_pub) == shared


# u-coordinates of small order (the RFC 7748 section 7 / libsodium blocklist): 0, 1, the two points of order 8,
# p - 1, and the non-canonical p and p + 1; each also with bit 255 set, which X25519 masks off.
SMALL_ORDER = (
    (0).to_bytes(32, "little"),
    (1).to_bytes(32, "little"),
    unhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    unhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    (P - 1).to_bytes(32, "little"),
    P.to_bytes(32, "little"),
    (P + 1).to_bytes(32, "little"),
)


def test_small_order_inputs_give_the_all_zero_error():
    k = unhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
    for u in SMALL_ORDER:
        for top in (0, 0x80):
            uu = u[:31] + bytes([u[31] | top])
            e = hgtest.raises(CryptoError, x25519.x25519, k, uu)
            assert "zero" in str(e)


def test_non_canonical_u_is_reduced_mod_p():
    # u = p + 9 must act as u = 9 (RFC 7748 section 5: implementations MUST accept non-canonical values)
    k = unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    assert x25519.x25519(k, (P + 9).to_bytes(32, "little")) == x25519.public_key(k)


def test_clamping_ignores_the_cleared_bits():
    k = bytearray(unhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"))
    u = unhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
    k[0] ^= 7  # the three low bits are cleared by clamping
    k[31] ^= 0x80  # bit 255 is cleared
    assert x25519.x25519(bytes(k), u) == unhex("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")


def test_bad_lengths_are_rejected():
    k = bytes(32)
    hgtest.raises(CryptoError, x25519.x25519, bytes(31), bytes(32))
    hgtest.raises(CryptoError, x25519.x25519, k, bytes(33))
    hgtest.raises(CryptoError, x25519.public_key, b"")


def test_generate_agrees():
    a, a_pub = x25519.generate()
    b, b_pub = x25519.generate()
    assert len(a) == 32 and len(a_pub) == 32 and a != b
    assert x25519.x25519(a, b_pub) == x25519.x25519(b, a_pub)


def test_random_agreement():
    rng = hgtest.Rng(7748)
    for _ in range(4):
        a = rng.bytes(32)
        b = rng.bytes(32)
        assert x25519.x25519(a, x25519.public_key(b)) == x25519.x25519(b, x25519.public_key(a))
