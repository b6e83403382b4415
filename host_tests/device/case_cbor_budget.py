# Hostile CBOR that costs far more heap than its size (issue 8), and duplicate map keys. At the default 128k VM
# heap with cose imported, ~1 KB of nested empty arrays used to end in MemoryError before any check.
import gc

import hgtest
import cbor
from cbor import CBORDecodeError
from cose import CoseError, sign1, mac0, encrypt0
from cose.key import CoseKey
MP_HEAP = "128k"  # the amplification cases (cose imported); 112k on the bare VM, fail at 104k and at the ESP32 HIL

N = 1000
EMPTY_ARRAYS = b"\x99" + N.to_bytes(2, "big") + b"\x80" * N  # [[], [], ...]: 1003 bytes
EMPTY_MAPS = b"\x99" + N.to_bytes(2, "big") + b"\xa0" * N
INDEFINITE = b"\x9f" + b"\x80" * N + b"\xff"
# COSE_Sign1 / Mac0 / Encrypt0 with the amplifying array as the value of an unprotected header label (99)
UNPROT = b"\xa1\x18\x63" + EMPTY_ARRAYS
SIGN1 = b"\xd2\x84\x43\xa1\x01\x26" + UNPROT + b"\x40\x58\x40" + bytes(64)
MAC0 = b"\xd1\x84\x43\xa1\x01\x05" + UNPROT + b"\x40\x58\x20" + bytes(32)
ENC0 = b"\xd0\x83\x41\xa0" + UNPROT + b"\x48" + bytes(8)
KEY = b"\xa2\x01\x04\x18\x63" + EMPTY_ARRAYS  # COSE_Key {1: 4, 99: [[], ...]}

HMAC_KEY = CoseKey.symmetric(bytes(32), alg=5)
CCM_KEY = CoseKey.symmetric(bytes(16), alg=10)
P256_PUB = CoseKey.from_raw(-7, hgtest.unhex(
    "04"
    "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
    "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"))


def test_amplifying_arrays_fail_cleanly():
    for data in (EMPTY_ARRAYS, EMPTY_MAPS, INDEFINITE):
        e = hgtest.raises(CBORDecodeError, cbor.loads, data)
        assert "items" in str(e), str(e)
        gc.collect()


def test_amplifying_input_inside_cose_fails_cleanly():
    hgtest.raises(CoseError, sign1.verify, SIGN1, P256_PUB)
    gc.collect()
    hgtest.raises(CoseError, mac0.verify, MAC0, HMAC_KEY)
    gc.collect()
    hgtest.raises(CoseError, encrypt0.decrypt, ENC0, CCM_KEY)
    gc.collect()
    hgtest.raises(CoseError, CoseKey.decode, KEY)


def test_max_items_is_configurable():
    assert cbor.loads(b"\x83\x01\x02\x03", max_items=4) == [1, 2, 3]
    hgtest.raises(CBORDecodeError, cbor.loads, b"\x83\x01\x02\x03", max_items=3)
    hgtest.raises(CBORDecodeError, cbor.loads, b"\x9f\x01\x02\x03\xff", max_items=3)
    assert cbor.loads(b"\xa1\x01\x02", max_items=3) == {1: 2}
    hgtest.raises(CBORDecodeError, cbor.loads, b"\xa1\x01\x02", max_items=2)
    # the budget is per decode() call: one Decoder can read several items of a sequence
    dec = cbor.Decoder(b"\x82\x01\x02\x82\x03\x04", max_items=3)
    assert dec.decode() == [1, 2] and dec.decode() == [3, 4] and dec.at_end()
    hgtest.raises(CBORDecodeError, cbor.Decoder(EMPTY_ARRAYS, max_items=10).decode)
    # a budget big enough for a SUIT manifest or an EAP-NOOB message
    assert cbor.DEFAULT_MAX_ITEMS >= 256
    big = b"\x98\x96" + b"\x82\x01\x02" * 150  # 451 items
    assert len(cbor.loads(big)) == 150


def test_memory_error_becomes_decode_error():
    # With the budget lifted, the heap runs out: the caller still gets a CBORDecodeError, and the heap is back.
    if not hgtest.IS_MICROPYTHON:
        hgtest.skip("CPython has no heap limit to run into")
    str(CBORDecodeError(10, 0))  # the error texts load on first use: before the heap is measured
    n = 1000
    data = b"\x99" + n.to_bytes(2, "big") + b"\x81\x80" * n  # [[[]], ...]: ~128 KB on the 64-bit VM
    gc.collect()
    before = gc.mem_free()
    ballast = []  # leave ~32 KB free, whatever the heap size: a quarter of what the decode needs
    try:
        while gc.mem_free() > 32768:
            ballast.append(bytearray(512))
    except MemoryError:
        pass
    e = hgtest.raises(CBORDecodeError, cbor.loads, data, max_items=1 << 30)
    ballast = None
    assert "memory" in str(e), str(e)
    gc.collect()
    assert gc.mem_free() >= before - 1024, (gc.mem_free(), before)
    assert cbor.loads(b"\x82\x01\x02") == [1, 2]


def test_duplicate_keys_rejected_when_asked():
    for data in (b"\xa2\x01\x26\x01\x26", b"\xbf\x01\x26\x01\x26\xff", b"\xa2\x61\x61\x01\x61\x61\x02",
                 b"\xa2\x82\x01\x02\x00\x82\x01\x02\x01"):
        assert len(cbor.loads(data)) == 1  # default: the last one wins, as before
        e = hgtest.raises(CBORDecodeError, cbor.loads, data, unique_keys=True)
        assert "duplicate" in str(e), str(e)
    e = hgtest.raises(CBORDecodeError, cbor.loads, b"\xa2\x01\x26\x01\x26", unique_keys=True)
    assert "1" in str(e)
    # nested maps too, and through the Decoder
    hgtest.raises(CBORDecodeError, cbor.loads, b"\x81\xa2\x04\x41\x01\x04\x41\x02", unique_keys=True)
    hgtest.raises(CBORDecodeError, cbor.Decoder(b"\xa2\x01\x26\x01\x26", unique_keys=True).decode)
    assert cbor.loads(b"\xa2\x01\x26\x02\x26", unique_keys=True) == {1: -7, 2: -7}


def test_cose_duplicate_header_labels_rejected():
    key = HMAC_KEY
    msg = mac0.create(key, b"payload", alg=5, include_kid=False)
    assert mac0.verify(msg, key) == b"payload"
    tag = msg[-32:]
    # protected {1: 5, 1: 5} (RFC 9052 section 3: such a message MUST be rejected)
    for prot in (b"\x45\xa2\x01\x05\x01\x05", b"\x46\xbf\x01\x05\x01\x05\xff"):
        bad = b"\xd1\x84" + prot + b"\xa0\x47payload\x58\x20" + tag
        e = hgtest.raises(CoseError, mac0.verify, bad, key)
        assert "duplicate" in str(e), str(e)
    # unprotected {4: h'01', 4: h'02'}, definite and indefinite
    for unprot in (b"\xa2\x04\x41\x01\x04\x41\x02", b"\xbf\x04\x41\x01\x04\x41\x02\xff"):
        bad = b"\xd1\x84\x43\xa1\x01\x05" + unprot + b"\x47payload\x58\x20" + tag
        e = hgtest.raises(CoseError, mac0.verify, bad, key)
        assert "duplicate" in str(e), str(e)
        bad = b"\xd2\x84\x43\xa1\x01\x26" + unprot + b"\x40\x58\x40" + bytes(64)
        hgtest.raises(CoseError, sign1.verify, bad, P256_PUB)
        bad = b"\xd0\x83\x41\xa0" + unprot + b"\x48" + bytes(8)
        hgtest.raises(CoseError, encrypt0.decrypt, bad, CCM_KEY)
    # COSE_Key with kty twice
    e = hgtest.raises(CoseError, CoseKey.decode, b"\xa3\x01\x04\x01\x04\x20\x50" + bytes(16))
    assert "duplicate" in str(e), str(e)
