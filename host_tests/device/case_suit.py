# SUIT processor (lib/suit) on the draft-37 examples, libcsuit's envelopes and hostile variants of them, on
# both runtimes. Every refused envelope must leave the bundle and the stored sequence number untouched.
import os

import cbor
import hgtest
from hgtest import unhex
from suit_common import IETF_PUB, TABLE

from cose import mac0
from cose.key import CoseKey
from store import FileStore
from suit import SuitError
from suit.reasons import REASONS
from suit.bundle import BundleDriver, makedirs
from suit.envelope import parse, read, verify

# lib/ compiled from source (cbor, cose, crypto, store, suit) takes ~70 KiB of the 64-bit VM heap before the
# first test, and the P-256 verify and AES-GCM modules more; as .mpy the processor's own import and run heap are
# in `make bench` (bench_suit.py). 256k on the VM is ~128 KiB on a board, the ESP32's grown heap.
MP_HEAP = "256k"

V = "suit/"
VENDOR = unhex("fa6b4a53d5ad5fdfbe9de663e4d41ffe")
CLASS = unhex("1492af1425695e48bf429b2d51f2ab45")
# The commands each example runs: section:command[/component], up to where its sample image digest (a pattern,
# not the digest of any real image) fails image-match. 4 is the shared sequence.
TRACES = {
    "example0": ("4:20 4:1/0 4:2/0 7:3/0", 7),
    "example1": ("4:20 4:1/0 4:2/0 20:20 20:21/0 20:3/0", 20),
    "example2": ("4:20 4:1/0 4:2/0 20:20 20:21/0 20:3/0", 20),
    "example2-severed": ("4:20 4:1/0 4:2/0 7:3/0", 7),
    "example3": ("4:20 4:15 4:20 4:5/0 4:20 4:1/0 4:2/0 20:15 20:20 20:5/0 20:20 20:21/0 20:3/0", 20),
    "example4": ("4:12 4:20 4:1/0 4:2/0 16:12 16:20 16:21/1 16:3/1", 16),
    "example5": ("4:12 4:20 4:1/0 4:2/0 4:12 4:20 20:12 20:20 20:21/0 20:3/0", 20),
}
URIS = ("http://example.com/file.bin", "http://example.com/file1.bin", "http://example.com/file2.bin",
        "http://example.com/very/long/path/to/file/file.bin")
ROOT = "build/test-suit-" + hgtest.RUNTIME


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _anchors():
    return [CoseKey.from_raw(-7, IETF_PUB), CoseKey.from_raw(5, hgtest.read_vector(V + "hmac256_key.bin"))]


def _kek():
    return [CoseKey.from_raw(-3, hgtest.read_vector(V + "a128kw_kek.bin"), kid=b"kid-1")]


def _device(name, anchors=None, identity=None, **kw):
    from suit.processor import Processor
    root = ROOT + "/" + name
    hgtest.rmtree(root)
    sources = dict((u, hgtest.vector_path(V + "raw_image.bin")) for u in URIS)
    drv = BundleDriver(root, identity or {1: VENDOR, 2: CLASS}, sources=sources, maxsize=kw.pop("max_file", None))
    proc = Processor(drv, anchors or _anchors(), FileStore(root + "/.state"), decryption_keys=_kek(), trace=True,
                     **kw)
    return proc, drv, root


def _files(root):
    """Every file under root except the processor's own state, as {relative path: bytes}."""
    out = {}

    def walk(d, rel):
        for n in os.listdir(d):
            p = d + "/" + n
            if n in (".state", ".suit") and rel == "":
                continue
            try:
                os.listdir(p)
                walk(p, rel + n + "/")
            except OSError:
                out[rel + n] = _read(p)
    walk(root, "")
    return out


def _trace(res):
    return " ".join("%d:%d%s" % (s, c, "" if i is None else "/%d" % i) for s, o, c, i in res.trace)


def test_every_vector_authenticates_with_its_digest_and_sequence_number():
    anchors = _anchors()
    for name in TABLE:
        env = read(hgtest.read_vector(V + name + ".suit"), 4096)
        digest = verify(env, anchors)
        assert cbor.loads(digest) == [-16, unhex(TABLE[name][1])], name
        assert parse(env, 8).sequence_number == TABLE[name][0], name


def test_ietf_examples_run_the_expected_commands_and_install_nothing():
    for name in TRACES:
        proc, drv, root = _device(name)
        res = proc.update(hgtest.read_vector(V + name + ".suit"))
        want, section = TRACES[name]
        assert _trace(res) == want, (name, _trace(res))
        assert not res.ok and REASONS[res.reason] == "condition-failed" and res.record[1] == section, (name, res)
        assert _files(root) == {} and proc.stored_sequence_number() is None, name
        report = cbor.loads(res.report)
        assert report[4][7] == 10 and report[4][6] == res.record and report[99][1][0] == -16


def test_example2_severable_members_are_checked_when_present():
    whole = hgtest.read_vector(V + "example2.suit")
    m = parse(read(whole, 4096), 8)
    assert 20 in m.sequences and 23 in m.sequences  # the envelope carried both, and their digests matched
    m = parse(read(hgtest.read_vector(V + "example2-severed.suit"), 4096), 8)
    assert 20 not in m.sequences and 23 not in m.sequences  # severed, not supplied: tolerated, not run
    # a changed byte in the severed install member: refused although the signature covers only the digest
    i = bytes(whole).find(b"very/long")
    bad = bytearray(whole)
    bad[i] ^= 0x20
    proc, drv, root = _device("ex2bad")
    res = proc.update(bytes(bad))
    assert REASONS[res.reason] == "unauthorised" and "severable member 20" in res.message, res


def test_libcsuit_esp256_same_manifest_as_example0():
    proc, drv, root = _device("exp0")
    res = proc.update(hgtest.read_vector(V + "suit_manifest_exp0.suit"))
    assert _trace(res) == TRACES["example0"][0]
    e = read(hgtest.read_vector(V + "suit_manifest_exp0.suit"), 4096)
    assert bytes(e.auth).find(b"\xa1\x01\x28") > 0  # protected {1: -9}


def test_libcsuit_encrypted_payload_decrypts_to_raw_image():
    proc, drv, root = _device("expAW")
    res = proc.update(hgtest.read_vector(V + "suit_manifest_expAW.suit"))
    assert res.ok and res.installed, res
    assert _files(root) == {"plaintext-firmware": hgtest.read_vector(V + "raw_image.bin")}
    assert proc.stored_sequence_number() == 1
    res = proc.update(hgtest.read_vector(V + "suit_manifest_expAW.suit"))
    assert REASONS[res.reason] == "unauthorised" and "not newer" in res.message
    # without the KEK the content key does not unwrap: refused, nothing written
    proc, drv, root = _device("expAW-nokek")
    proc.decryption_keys = [CoseKey.from_raw(-3, bytes(16), kid=b"kid-1")]
    res = proc.update(hgtest.read_vector(V + "suit_manifest_expAW.suit"))
    assert REASONS[res.reason] == "unauthorised" and _files(root) == {}, res


def test_libcsuit_integrated_payload_untagged_envelope():
    ident = {1: unhex("c0ddd5f15243566087db4f5b0aa26c2f"), 2: unhex("db42f7093d8c55baa8c5265fc5820f4e")}
    proc, drv, root = _device("expI", identity=ident)
    res = proc.update(hgtest.read_vector(V + "suit_manifest_expI.suit"))
    assert res.ok, res
    assert _files(root) == {"TEEP-Device/SecureFS/x8d82573a926d4754935332dc29997f74/ta": b"Hello, Secure World!"}
    assert _trace(res) == "4:20 4:1/0 4:2/0 20:20 20:21/0 20:3/0"  # no validate section


def _flip_all(data, proc, root, step):
    for i in range(0, len(data), step):
        bad = bytearray(data)
        bad[i] ^= 0x5A
        res = proc.update(bytes(bad))
        assert not res.ok, "flipped byte %d was accepted" % i
        assert res.message != "out of memory", i
        assert _files(root) == {} and proc.stored_sequence_number() is None, i


def test_a_flipped_byte_anywhere_is_refused_mac0_every_position():
    data = hgtest.read_vector(V + "suit_manifest_expAW.suit")
    proc, drv, root = _device("flip-mac")
    _flip_all(data, proc, root, 1)


def test_a_flipped_byte_is_refused_es256_every_seventh_position():
    data = hgtest.read_vector(V + "example1.suit")
    proc, drv, root = _device("flip-es")
    _flip_all(data, proc, root, 7)


def test_truncated_envelopes_are_parse_errors():
    data = hgtest.read_vector(V + "suit_manifest_expAW.suit")
    proc, drv, root = _device("trunc")
    for n in range(0, len(data), 3):
        res = proc.update(data[:n])
        assert not res.ok and REASONS[res.reason] in ("cbor-parse", "unauthorised"), (n, res)
    res = proc.update(data + b"\x00")
    assert REASONS[res.reason] == "cbor-parse"


def test_wrong_key_and_unsupported_algorithm():
    proc, drv, root = _device("wrongkey", anchors=[CoseKey.from_raw(5, bytes(32))])
    res = proc.update(hgtest.read_vector(V + "suit_manifest_expAW.suit"))
    assert REASONS[res.reason] == "unauthorised", res
    # an ES256 manifest with only an HMAC anchor: no key for its algorithm
    res = proc.update(hgtest.read_vector(V + "example0.suit"))
    assert REASONS[res.reason] == "unauthorised" and "no key" in res.message, res
    assert _files(root) == {}


def test_too_large_envelope_is_refused_before_parsing():
    proc, drv, root = _device("big", maxsize=200)
    res = proc.update(hgtest.read_vector(V + "example0.suit"))
    assert REASONS[res.reason] == "cbor-parse" and "bigger than this device accepts" in res.message


# ------------------------------------------------------------------------- re-MACed variants of expAW

def _mac_key():
    return CoseKey.from_raw(5, hgtest.read_vector(V + "hmac256_key.bin"))


def _envelope(manifest, extra=None, protected=None):
    """An envelope around manifest (a dict, encoded here) MACed with libcsuit's HMAC key."""
    from hashlib import sha256
    mb = cbor.dumps(manifest, canonical=True)
    digest = cbor.dumps([-16, sha256(cbor.dumps(mb)).digest()])
    blk = mac0.create(_mac_key(), digest, alg=5, detached=True, include_kid=False, protected=protected)
    env = {2: cbor.dumps([digest, blk]), 3: mb}
    if extra:
        env.update(extra)
    return cbor.dumps(cbor.Tag(107, env))


def _aw_manifest():
    env = read(hgtest.read_vector(V + "suit_manifest_expAW.suit"), 4096)
    m = cbor.loads(env.manifest)
    return m


def _with(m, key, value):
    m[key] = value
    return m


def _install(commands, seq=5, common=None):
    m = _aw_manifest()
    m[2] = seq
    m[20] = cbor.dumps(commands)
    if common is not None:
        m[3] = cbor.dumps(common)
    return m


def test_remac_helper_builds_what_the_processor_accepts():
    proc, drv, root = _device("remac")
    res = proc.update(_envelope(_install([20, {18: b"plain content"}, 18, 15])))
    assert res.ok, res
    assert _files(root) == {"plaintext-firmware": b"plain content"}


def test_cose_sign_and_cose_mac_blocks_are_refused_by_name():
    """Several signers go in several COSE_Sign1 blocks (any one may verify); COSE_Sign/COSE_Mac are refused."""
    from hashlib import sha256
    m = _install([20, {18: b"x"}, 18, 15])
    mb = cbor.dumps(m, canonical=True)
    digest = cbor.dumps([-16, sha256(cbor.dumps(mb)).digest()])
    for tag, name in ((98, "COSE_Sign is not supported"), (97, "COSE_Mac is not supported")):
        blk = cbor.dumps(cbor.Tag(tag, [cbor.dumps({1: -7}), {}, None, [[cbor.dumps({1: -7}), {4: b"k"}, b"s" * 64]]]))
        proc, drv, root = _device("cose-sign")
        res = proc.update(cbor.dumps(cbor.Tag(107, {2: cbor.dumps([digest, blk]), 3: mb})))
        assert REASONS[res.reason] == "cose-unsupported" and name in res.message, res
        assert _files(root) == {} and proc.stored_sequence_number() is None


def test_ecdh_es_content_key_distribution_is_refused_by_name():
    """draft-ietf-suit-firmware-encryption also has ECDH-ES recipients; this device takes A128KW only."""
    m = _aw_manifest()
    install = cbor.loads(m[20])
    info = cbor.loads(install[1][19])
    recipient = info.value[3][0]
    for alg in (-29, -25):  # ECDH-ES + A128KW, ECDH-ES + HKDF-256
        recipient[0] = cbor.dumps({1: alg})
        recipient[1] = {-1: {1: 2, -1: 1, -2: bytes(32), -3: bytes(32)}, 4: b"kid-1"}
        install[1][19] = cbor.dumps(info)
        m[20] = cbor.dumps(install)
        proc, drv, root = _device("ecdh")
        res = proc.update(_envelope(m))
        assert REASONS[res.reason] == "alg-unsupported" and "ECDH-ES (alg %d)" % alg in res.message, res
        assert _files(root) == {} and proc.stored_sequence_number() is None


def test_unknown_command_parameter_member_and_critical_header_fail_cleanly():
    cases = (
        (_envelope(_install([99, 15])), "command-unsupported", "command 99"),
        (_envelope(_install([20, {77: 1}, 18, 15])), "parameter-unsupported", "parameter 77"),
        (_envelope(_with(_aw_manifest(), 42, b"x")), "cbor-parse", "manifest member 42"),
        (_envelope(_aw_manifest(), extra={99: b"x"}), "cbor-parse", "envelope member 99"),
        (_envelope(_aw_manifest(), protected={2: [99], 99: 1}), "alg-unsupported", "critical"),
        (_envelope(_install([20, {18: b"x"}, 18, 15], common={2: [[b"a"]], 1: []})), "component-unsupported",
         "dependency"),
        (_envelope(_install([12, 3, 18, 15])), "component-unsupported", "component index 3"),
    )
    for data, reason, words in cases:
        proc, drv, root = _device("unk")
        res = proc.update(data)
        assert REASONS[res.reason] == reason and words in res.message, (reason, res)
        assert _files(root) == {} and proc.stored_sequence_number() is None


def test_duplicate_map_keys_are_refused():
    body = cbor.dumps([20, {18: b"x"}, 18, 15])
    dup = body.replace(b"\xa1\x12\x41x", b"\xa2\x12\x41x\x12\x41y")
    m = _install([])
    m[20] = dup
    proc, drv, root = _device("dup")
    res = proc.update(_envelope(m))
    assert REASONS[res.reason] == "cbor-parse" and "twice" in res.message, res


def test_wrong_vendor_and_class_id():
    for key in (1, 2):
        common = {2: [[b"plaintext-firmware"]], 4: cbor.dumps([20, {key: b"\x01" * 16}, key, 15])}
        proc, drv, root = _device("vendor")
        res = proc.update(_envelope(_install([20, {18: b"x"}, 18, 15], common=common)))
        assert REASONS[res.reason] == "condition-failed" and ("vendor-id", "class-id")[key - 1] in res.message
        assert _files(root) == {}


def test_sequence_number_downgrade_and_equal_are_refused():
    proc, drv, root = _device("seq")
    assert proc.update(_envelope(_install([20, {18: b"v5"}, 18, 15], seq=5))).ok
    for seq in (5, 4, 0):
        res = proc.update(_envelope(_install([20, {18: b"other"}, 18, 15], seq=seq)))
        assert REASONS[res.reason] == "unauthorised", res
    assert _files(root) == {"plaintext-firmware": b"v5"} and proc.stored_sequence_number() == 5
    assert proc.update(_envelope(_install([20, {18: b"v6"}, 18, 15], seq=6))).ok
    assert _files(root) == {"plaintext-firmware": b"v6"} and proc.stored_sequence_number() == 6


def _digest_param(data):
    from hashlib import sha256
    return cbor.dumps([-16, sha256(data).digest()])


def test_digest_mismatch_truncated_payload_and_oversize_leave_the_old_image():
    good = b"0123456789" * 50
    proc, drv, root = _device("dig", max_file=600)
    assert proc.update(_envelope(_install([20, {18: good, 3: _digest_param(good), 14: 500}, 18, 15, 3, 15],
                                          seq=1))).ok
    bad = good[:-1] + b"X"
    cases = (
        ([20, {18: bad, 3: _digest_param(good), 14: 500}, 18, 15, 3, 15], "condition-failed", "digest"),
        ([20, {18: good[:400], 3: _digest_param(good), 14: 500}, 18, 15, 3, 15], "condition-failed", "size"),
        ([20, {18: good, 3: _digest_param(good), 14: 499}, 18, 15, 3, 15], "operation-failed", "image-size"),
        ([20, {18: good + good, 3: _digest_param(good + good)}, 18, 15], "operation-failed", "bigger than the slot"),
        ([20, {18: good, 14: 700}, 18, 15], "operation-failed", "bigger than the slot"),
        ([14, 15], "condition-failed", "abort"),
    )
    for seq, (cmds, reason, words) in enumerate(cases):
        res = proc.update(_envelope(_install(cmds, seq=2 + seq)))
        assert REASONS[res.reason] == reason and words in res.message, (words, res)
        assert _files(root) == {"plaintext-firmware": good} and proc.stored_sequence_number() == 1, words
        assert os.listdir(root + "/.suit/stage") == [], "staging is dropped"


def test_an_install_in_a_heap_with_no_4k_hole_goes_on_in_smaller_chunks():
    # What ran before the install can leave the heap with no hole of chunk_size: the chunk buffer halves until
    # it fits, and the payload streams through in the smaller chunks (a MemoryError out of update() before).
    if not hgtest.IS_MICROPYTHON:
        hgtest.skip("CPython has no heap limit to run into")
    import gc
    from suit.processor import Processor
    root = ROOT + "/fragmented"
    hgtest.rmtree(root)
    makedirs(root)
    payload = bytes(range(251)) * 41  # 10,291 bytes: five 2 KiB chunks and a short one
    with open(root + "/payload", "wb") as f:
        f.write(payload)
    reads = []

    class Reader:  # the source as the processor sees it, noting the size of each buffer it is asked to fill
        def __init__(self, inner):
            self.inner = inner

        def readinto(self, buf):
            reads.append(len(buf))
            return self.inner.readinto(buf)

        def close(self):
            self.inner.close()

    class Driver(BundleDriver):
        def fetch(self, uri):
            return Reader(BundleDriver.fetch(self, uri))

    proc = Processor(Driver(root, {1: VENDOR, 2: CLASS}, sources={URIS[0]: root + "/payload"}), _anchors())
    env = _envelope(_install([20, {21: URIS[0], 3: _digest_param(payload), 14: len(payload)}, 21, 2, 3, 15]))
    # the free heap cut into 3,000-byte holes: every other block of a heap filled with them is freed
    gc.collect()
    blocks = []
    try:
        while True:
            blocks.append(bytearray(3000))
    except MemoryError:
        pass
    for i in range(0, len(blocks), 2):
        blocks[i] = None
    # whatever 4 KiB holes are left (freed blocks next to freed garbage) are filled too, after a collection
    for _ in range(2):
        gc.collect()
        try:
            while True:
                blocks.append(bytearray(4096))
        except MemoryError:
            pass
    try:
        res = proc.update(env)
    finally:
        blocks = None
    assert res.ok, res
    assert reads == [2048] * 7, reads  # five whole chunks, the short sixth, then the end (0 bytes)
    assert _files(root) == {"payload": payload, "plaintext-firmware": payload}


def test_try_each_soft_failure_and_run_sequence():
    a = b"alternative A"
    proc, drv, root = _device("try")
    first = cbor.dumps([20, {18: b"nope", 3: _digest_param(b"nope")}, 14, 15])  # abort: a condition fails
    second = cbor.dumps([20, {18: a}, 18, 15])
    res = proc.update(_envelope(_install([15, [first, second]], seq=1)))
    assert res.ok and _files(root) == {"plaintext-firmware": a}, res
    # all alternatives fail: the try-each fails; a trailing nil makes it succeed doing nothing
    res = proc.update(_envelope(_install([15, [first, first]], seq=2)))
    assert REASONS[res.reason] == "condition-failed" and "try-each" in res.message
    res = proc.update(_envelope(_install([15, [first, None]], seq=3)))
    assert res.ok, res
    # run-sequence: a failing condition is fatal unless soft-failure is set
    res = proc.update(_envelope(_install([32, cbor.dumps([14, 15])], seq=4)))
    assert REASONS[res.reason] == "condition-failed"
    res = proc.update(_envelope(_install([20, {13: True}, 32, cbor.dumps([14, 15]), 20, {18: b"after"}, 18, 15],
                                         seq=5)))
    assert res.ok and _files(root) == {"plaintext-firmware": b"after"}, res


def test_several_components_copy_check_content_and_set_index_true():
    common = {2: [[b"one"], [b"two"], [b"three"]]}
    proc, drv, root = _device("multi")
    cmds = [12, True, 20, {18: b"same"}, 18, 15, 6, 15,
            12, 2, 20, {22: 0}, 22, 15, 6, 15]  # copied from component 0, so its content is "same" too
    res = proc.update(_envelope(_install(cmds, seq=1, common=common)))
    assert res.ok, res
    assert _files(root) == {"one": b"same", "two": b"same", "three": b"same"}
    res = proc.update(_envelope(_install([12, 1, 20, {18: b"nope"}, 6, 15], seq=2, common=common)))
    assert REASONS[res.reason] == "condition-failed" and "content differs" in res.message


def test_hostile_component_paths_are_refused():
    # an empty element is a path only as the last one (a directory component, with a part before it)
    for cid in ([b".."], [b"."], [b"a", b"."], [b".suit", b"journal"], [b""], [b"", b"a"], [b"a", b"", b"b"]):
        proc, drv, root = _device("path")
        res = proc.update(_envelope(_install([20, {18: b"x"}, 18, 15], common={2: [cid]})))
        assert REASONS[res.reason] == "component-unsupported", (cid, res)
        assert _files(root) == {}


def test_report_is_cbor_with_reference_records_and_result():
    proc, drv, root = _device("report")
    res = proc.update(hgtest.read_vector(V + "suit_manifest_expAW.suit"))
    rep = cbor.loads(drv.reports[-1])
    assert rep[4] is True and rep[99][1][0] == -16 and len(drv.reports[-1]) < 512
    assert rep[3][-1][1] == 20  # the write in install asked for a record (policy 15)
    res = proc.update(b"\xd8\x6b\xa0")
    rep = cbor.loads(res.report)
    assert rep[4][7] == 1 and rep[99][1] is None


def _archive(files):
    """A directory component's image (suit.bundle_dir): path text, content bytes, in byte order of the paths."""
    out = b""
    for rel in sorted(files):
        out += cbor.dumps(rel) + cbor.dumps(files[rel])
    return out


def _dir_install(files, seq, image=None):
    from hashlib import sha256
    image = _archive(files) if image is None else image
    digest = cbor.dumps([-16, sha256(image).digest()])
    m = _install([20, {18: image, 3: digest, 14: len(image)}, 18, 15, 3, 15], seq=seq,
                 common={2: [[b"lib", b"pkg", b""]]})
    m[7] = cbor.dumps([20, {3: digest, 14: len(image)}, 3, 15])  # validate: image-match, read back from the tree
    return _envelope(m)


def test_directory_component_installs_the_tree_and_replaces_it_whole():
    proc, drv, root = _device("dir")
    v1 = {"__init__.py": b"v = 1\n", "sub/b.py": b"b" * 1500, "sub/deeper/c.txt": b"", "z.bin": bytes(range(256))}
    res = proc.update(_dir_install(v1, 6))
    assert res.ok, res
    assert _files(root) == dict(("lib/pkg/" + k, v) for k, v in v1.items())
    assert proc.boot(_dir_install(v1, 6)).ok  # validate rebuilds the image from the files: the same digest
    # v2 drops sub/ and adds a file: the directory is replaced whole, nothing of v1 is left
    v2 = {"__init__.py": b"v = 2\n", "new.py": b"n" * 300}
    res = proc.update(_dir_install(v2, 7))
    assert res.ok, res
    assert _files(root) == dict(("lib/pkg/" + k, v) for k, v in v2.items())
    assert os.listdir(root + "/.suit/stage") == [] and os.listdir(root + "/.suit/old") == []
    with open(root + "/lib/pkg/new.py", "wb") as f:  # a changed tree no longer matches its manifest
        f.write(b"tampered")
    res = proc.boot(_dir_install(v2, 7))
    assert REASONS[res.reason] == "condition-failed", res


def test_hostile_directory_images_leave_the_installed_tree():
    proc, drv, root = _device("dir-bad")
    v1 = {"a.py": b"1", "b.py": b"2"}
    assert proc.update(_dir_install(v1, 6)).ok
    before = _files(root)
    good = _archive({"a.py": b"x", "c.py": b"y"})
    bad = {
        "out of order": cbor.dumps("c.py") + cbor.dumps(b"y") + cbor.dumps("a.py") + cbor.dumps(b"x"),
        "repeated path": cbor.dumps("a.py") + cbor.dumps(b"x") + cbor.dumps("a.py") + cbor.dumps(b"y"),
        "parent path": cbor.dumps("../x.py") + cbor.dumps(b"x"),
        "absolute path": cbor.dumps("/x.py") + cbor.dumps(b"x"),
        "empty part": cbor.dumps("a//x.py") + cbor.dumps(b"x"),
        "bad character": cbor.dumps("a x.py") + cbor.dumps(b"x"),
        "long head": b"\x78\x04a.py" + cbor.dumps(b"x"),  # a 1-byte length for 4: not preferred serialization
        "bytes for a path": cbor.dumps(b"a.py") + cbor.dumps(b"x"),
        "text for content": cbor.dumps("a.py") + cbor.dumps("x"),
        "truncated": good[:-1],
        "a path without content": good + cbor.dumps("d.py"),
        "too many files": b"".join(cbor.dumps("f%03d" % i) + cbor.dumps(b"") for i in range(65)),
    }
    for why, image in bad.items():
        res = proc.update(_dir_install(None, 7, image=image))
        assert not res.ok and REASONS[res.reason] in ("cbor-parse", "component-unsupported"), (why, res)
        assert _files(root) == before, why
        assert proc.stored_sequence_number() == 6, why
        assert os.listdir(root + "/.suit/stage") == [], why
    assert proc.update(_dir_install(None, 7, image=good)).ok
    assert _files(root) == {"lib/pkg/a.py": b"x", "lib/pkg/c.py": b"y"}


def test_directory_file_bigger_than_the_slot_is_refused():
    proc, drv, root = _device("dir-big", max_file=100)
    res = proc.update(_dir_install({"a.py": b"a" * 50, "b.py": b"b" * 101}, 6))
    assert REASONS[res.reason] == "operation-failed" and "bigger than the slot" in res.message, res
    assert _files(root) == {}
    assert proc.update(_dir_install({"a.py": b"a" * 50, "b.py": b"b" * 100}, 6)).ok


def _mac0_block(key, digest, protected, unprotected, head=None):
    """A detached COSE_Mac0 over digest with the given header maps, built by hand (head: the tag's bstr head)."""
    from crypto.kdf import hmac_sha256
    tag = hmac_sha256(key.k, cbor.dumps(["MAC0", protected, b"", digest]))
    body = bytearray(b"\xd1\x84") + cbor.dumps(protected) + cbor.dumps(unprotected) + b"\xf6"
    body += (head or cbor.dumps(tag)[:2]) + tag
    return bytes(body)


def test_inline_readers_and_general_readers_agree():
    # suit.envelope reads the usual encodings inline and leaves the rest to suit.envelope_file's readers: the
    # same manifest in encodings of both kinds authenticates to the same digest, sequence number, components
    # and sequences, and installs the same file; a flipped tag byte is refused on either route
    from hashlib import sha256
    key = _mac_key()
    m = _install([20, {18: b"plain content"}, 18, 15], seq=7)
    mb = cbor.dumps(m, canonical=True)
    digest = cbor.dumps([-16, sha256(cbor.dumps(mb)).digest()])
    uri = dict(m)
    uri[4] = "coap://example.com/m"  # a reference-uri: the manifest goes the general way
    ub = cbor.dumps(uri, canonical=True)
    udigest = cbor.dumps([-16, sha256(cbor.dumps(ub)).digest()])
    a5 = cbor.dumps({1: 5})
    variants = {
        "usual": (mb, digest, _mac0_block(key, digest, a5, {})),
        "unprotected kid": (mb, digest, _mac0_block(key, digest, a5, {4: b"kid-1"})),
        "protected kid": (mb, digest, _mac0_block(key, digest, cbor.dumps({1: 5, 4: b"kid-1"}), {})),
        "alg in a two-byte head": (mb, digest, _mac0_block(key, digest, b"\xa1\x01\x18\x05", {})),
        "tag in a two-byte head": (mb, digest, _mac0_block(key, digest, a5, {}, b"\x59\x00\x20")),
        "reference-uri": (ub, udigest, _mac0_block(key, udigest, a5, {})),
    }
    seen = {}
    for name, (manifest, dg, blk) in variants.items():
        auth = cbor.dumps([dg, blk])
        for how, env in (("tagged", cbor.dumps(cbor.Tag(107, {2: auth, 3: manifest}))),
                         # the envelope's map in a two-byte head, the wrapper in a three-byte bstr head (the
                         # manifest's is what its digest covers)
                         ("long heads", b"\xd8\x6b\xb8\x02\x02\x59" + len(auth).to_bytes(2, "big") + auth
                          + b"\x03" + cbor.dumps(manifest))):
            got = read(env, 8192)
            assert bytes(verify(got, [key])) == dg, (name, how)
            parse(got, 8)
            seen[(name, how)] = (got.sequence_number, got.components, sorted(got.sequences),
                                 bytes(got.sequences[20]), got.reference_uri)
            assert got.reference_uri == ("coap://example.com/m" if name == "reference-uri" else None), name
            bad = bytearray(env)
            bad[len(bad) - len(cbor.dumps(manifest)) - 2] ^= 1  # the tag's last byte: before key 3 and the manifest
            try:
                verify(read(bytes(bad), 8192), [key])
                raise AssertionError("flipped tag accepted: %s %s" % (name, how))
            except SuitError as e:
                assert REASONS[e.reason] == "unauthorised", (name, how, e)
            proc, drv, root = _device("inline-" + str(len(seen)), anchors=[key])
            res = proc.update(env)
            assert res.ok, (name, how, res)
            assert _files(root) == {"plaintext-firmware": b"plain content"}, (name, how)
    first = seen[("usual", "tagged")]
    for k, v in seen.items():
        assert v[:4] == first[:4], k
