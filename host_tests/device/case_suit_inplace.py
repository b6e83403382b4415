# suit.envelope.authenticate: an envelope authenticated in place, over the one buffer it arrived in (bytes,
# bytearray, memoryview) or over the file that holds it (only the wrapper, manifest and severable members are
# read; integrated payloads stream from the file), with the COSE blocks walked in place (the signature is a
# memoryview into the envelope). Every shared vector and every algorithm of our builder, on both runtimes; then
# hostile files: flipped bytes, truncations and lengths beyond the file give a SuitError, never another
# exception, and both routes agree.
import os

import cbor
import hgtest
from hgtest import unhex
from suit_common import IETF_PUB, TABLE

from cose.key import CoseKey
from suit import SuitError
from suit.reasons import REASONS
from suit.envelope import authenticate

MP_HEAP = "256k"  # lib/ compiled from source with every verifier (P-256, Ed25519, HSS-LMS): see case_suit_built.py

V = "suit/"
B = "suit/built/"
ROOT = "build/test-suit-inplace-" + hgtest.RUNTIME
ALGS = ("es256", "esp256", "eddsa", "ed25519", "hss", "hmac")


def _anchors():
    return [CoseKey.from_raw(-7, IETF_PUB), CoseKey.from_raw(5, hgtest.read_vector(V + "hmac256_key.bin"))]


def _file(name, data):
    try:
        os.mkdir("build")
    except OSError:
        pass
    try:
        os.mkdir(ROOT)
    except OSError:
        pass
    path = ROOT + "/" + name
    with open(path, "wb") as f:
        f.write(data)
    return path


def _routes(data, name="env.suit"):
    """The same envelope as bytes, bytearray, a memoryview of a larger buffer, and a file."""
    big = bytearray(b"\xee" * 3) + bytearray(data) + bytearray(b"\xee" * 5)
    return (bytes(data), bytearray(data), memoryview(big)[3:3 + len(data)], _file(name, data))


def _verdict(data, anchors):
    """(reason name, message) or ("ok", digest); any exception but a SuitError goes through."""
    try:
        m = authenticate(data, anchors, 8192)
    except SuitError as e:
        return REASONS[e.reason], e.args[0]
    return "ok", m.digest


def test_every_shared_vector_authenticates_in_place_by_every_route():
    anchors = _anchors()
    for name in TABLE:
        for src in _routes(hgtest.read_vector(V + name + ".suit")):
            m = authenticate(src, anchors, 4096)
            assert cbor.loads(m.digest) == [-16, unhex(TABLE[name][1])], (name, type(src))
            assert m.sequence_number == TABLE[name][0], (name, type(src))
    # example2: the severable install and text members are read from the file and checked against their digests
    m = authenticate(_routes(hgtest.read_vector(V + "example2.suit"))[3], anchors, 4096)
    assert 20 in m.sequences and 23 in m.sequences
    m = authenticate(_routes(hgtest.read_vector(V + "example2-severed.suit"))[3], anchors, 4096)
    assert 20 not in m.sequences and 23 not in m.sequences  # severed, not supplied: tolerated, not run


def test_every_builder_algorithm_authenticates_in_place_and_no_other_key_does():
    for alg in ALGS:
        try:
            anchor = CoseKey.decode(hgtest.read_vector(B + alg + ".pub"))
        except OSError:
            anchor = CoseKey.decode(hgtest.read_vector(B + alg + ".key"))
        other = CoseKey.decode(hgtest.read_vector(B + ("hmac.key" if alg != "hmac" else "es256.pub")))
        for src in _routes(hgtest.read_vector(B + "alg_%s.suit" % alg), alg + ".suit"):
            m = authenticate(src, [anchor], 8192)
            assert m.sequence_number is not None and len(m.digest) == 36, alg
            e = hgtest.raises(SuitError, authenticate, src, [other], 8192)
            assert REASONS[e.reason] == "unauthorised", (alg, e)


def test_a_flipped_byte_anywhere_is_refused_by_both_routes():
    data = hgtest.read_vector(V + "suit_manifest_expAW.suit")
    anchors = _anchors()
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x5A
        mem = _verdict(memoryview(bad), anchors)
        disk = _verdict(_file("flip.suit", bad), anchors)
        assert mem[0] != "ok" and disk[0] != "ok", i
        assert mem[0] in REASONS and disk[0] in REASONS, (i, mem, disk)


def test_truncated_and_padded_files_are_refused():
    data = hgtest.read_vector(V + "suit_manifest_expI.suit")  # untagged, with an integrated payload
    anchors = _anchors()
    for n in range(len(data)):
        v = _verdict(_file("trunc.suit", data[:n]), anchors)
        assert v[0] in ("cbor-parse", "unauthorised"), (n, v)
    v = _verdict(_file("pad.suit", data + b"\x00"), anchors)
    assert v[0] == "cbor-parse" and "after the envelope" in v[1], v


def test_hostile_heads_in_a_file_are_bounded():
    anchors = _anchors()
    cases = (
        (b"\xd8\x6b\xa2\x02\x5b\xff\xff\xff\xff\xff\xff\xff\xff", "within the envelope"),  # 2^64-byte member
        (b"\xa1\x02\x5a\xff\xff\xff\xff", "within the envelope"),
        (b"\xd8\x6b\xbf\x02\x40\xff", "indefinite"),  # an indefinite map
        (b"\xa1\x02\x5f\x40\xff", "indefinite"),  # an indefinite byte string
        (b"\xd8\x6c\xa0", "tag 108"),
        (b"\x82\x01\x02", "not a map"),
        (b"\xa1\x82\x00\x00\x40", "integers or payload names"),
        (b"\xa1\x79\xff\xff" + b"x" * 8, "payload name"),  # a 64 KiB payload name
        (b"\xa1\x62\xff\xfe\x40", "payload name"),  # not UTF-8
        (b"\xa2\x61a\x40\x61a\x40", "given twice"),
        (b"\xa1\x02\x01", "byte strings"),
        (b"", "truncated"),
    )
    for data, words in cases:
        v = _verdict(_file("hostile.suit", data), anchors)
        assert v[0] == "cbor-parse" and words in v[1], (data, v)
    big = _file("big.suit", hgtest.read_vector(V + "example0.suit"))
    e = hgtest.raises(SuitError, authenticate, big, anchors, 200)
    assert "bigger than this device accepts" in e.args[0]


def test_cose_blocks_are_checked_in_place_like_cose_sign1():
    """The in-place COSE walk refuses what cose.sign1/cose.mac0 refuse: a wrong structure, an attached payload
    that is not the digest, a repeated header label, an unknown critical header, an unsupported algorithm."""
    from hashlib import sha256
    from cose import mac0
    key = CoseKey.from_raw(5, hgtest.read_vector(V + "hmac256_key.bin"))
    mb = cbor.dumps({1: 1, 2: 9, 3: cbor.dumps({2: [[b"x"]]})})
    digest = cbor.dumps([-16, sha256(cbor.dumps(mb)).digest()])

    def env(blk):
        return cbor.dumps(cbor.Tag(107, {2: cbor.dumps([digest, blk]), 3: mb}))
    good = mac0.create(key, digest, detached=True, include_kid=False)
    assert authenticate(env(good), [key]).sequence_number == 9
    attached = mac0.create(key, digest, include_kid=False)
    assert authenticate(env(attached), [key]).sequence_number == 9  # an attached payload equal to the digest
    arr = cbor.loads(good).value
    cases = (
        (cbor.Tag(17, arr[:3]), "unauthorised", "array of 4"),
        (cbor.Tag(17, [arr[0], arr[1], b"other", arr[3]]), "unauthorised", "not the manifest digest"),
        (cbor.Tag(17, [arr[0], arr[1], None, arr[3][:-1] + b"\x00"]), "unauthorised", "does not verify"),
        (cbor.Tag(17, [cbor.dumps({1: 5, 2: [99], 99: 1}), {}, None, arr[3]]), "alg-unsupported", "critical"),
        (cbor.Tag(17, [cbor.dumps({1: 77}), {}, None, arr[3]]), "alg-unsupported", "77"),
        (cbor.Tag(17, [arr[0], {1: 5}, None, arr[3]]), "unauthorised", ""),  # alg in both maps
        (cbor.Tag(17, [arr[0], [], None, arr[3]]), "unauthorised", "not a map"),
    )
    for blk, reason, words in cases:
        v = _verdict(env(cbor.dumps(blk)), [key])
        assert v[0] == reason and words in v[1], (blk, v)
    dup = bytearray(cbor.dumps(cbor.Tag(17, [arr[0], {4: b"a", 5: b"b"}, None, arr[3]])))
    dup[dup.index(b"\x05\x41b")] = 4  # the unprotected map repeats label 4
    v = _verdict(env(bytes(dup)), [key])
    assert v[0] == "unauthorised" and "malformed" in v[1], v


def test_the_processor_installs_from_a_file_with_its_integrated_payload_streamed():
    from store import FileStore
    from suit.bundle import BundleDriver
    from suit.processor import Processor
    ident = {1: unhex("c0ddd5f15243566087db4f5b0aa26c2f"), 2: unhex("db42f7093d8c55baa8c5265fc5820f4e")}
    path = _file("expI.suit", hgtest.read_vector(V + "suit_manifest_expI.suit"))
    root = ROOT + "/dev"
    hgtest.rmtree(root)
    proc = Processor(BundleDriver(root, ident), _anchors(), FileStore(root + "/.state"), chunk_size=7)
    res = proc.update(path)
    assert res.ok, res
    with open(root + "/TEEP-Device/SecureFS/x8d82573a926d4754935332dc29997f74/ta", "rb") as f:
        assert f.read() == b"Hello, Secure World!"
    assert proc.stored_sequence_number() == authenticate(path, _anchors()).sequence_number


def test_parse_digest_fast_path_and_the_general_one_agree():
    from suit.envelope import parse_digest
    v = bytes(range(32))
    alg, value = parse_digest(cbor.dumps([-16, v]))  # the preferred encoding: the fast path
    assert alg == -16 and bytes(value) == v
    alg, value = parse_digest(b"\x82\x38\x0f\x58\x20" + v)  # -16 in a longer head: the decoder
    assert alg == -16 and bytes(value) == v
    for bad, reason in ((cbor.dumps([-44, bytes(64)]), "alg-unsupported"), (cbor.dumps([-16, v[:31]]), "cbor-parse"),
                        (cbor.dumps([-16, v + b"x"]), "cbor-parse"), (b"\x82\x2f\x58\x20" + v[:31], "cbor-parse"),
                        (b"\x83\x2f\x58\x20" + v, "cbor-parse"), (cbor.dumps([-16, v]) + b"\x00", "cbor-parse")):
        e = hgtest.raises(SuitError, parse_digest, bad)
        assert REASONS[e.reason] == reason, (bad, e)
