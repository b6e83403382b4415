# Seeded fuzz of the SUIT envelope decoder and command interpreter on both runtimes: random byte changes,
# insertions and truncations, both of whole envelopes (stopped by parsing or authentication) and of manifests
# that are then MACed again (so the mutation reaches the manifest parser and the commands). Only defined
# results may come out: a suit Result with a reason, never another exception, never "out of memory".
import cbor
import hgtest
from hashlib import sha256

from cose import mac0
from cose.key import CoseKey
from suit.reasons import REASONS
from suit.bundle import BundleDriver
from suit.envelope import read
from suit.processor import Processor

MP_HEAP = "256k"  # lib/ compiled from source; see case_suit_powercut.py
V = "suit/"
ROOT = "build/test-suit-fuzz-" + hgtest.RUNTIME
ROUNDS = 300


def _mutate(rng, data):
    b = bytes(data)
    for _ in range(1 + rng.below(3)):
        op = rng.below(4)
        if not b:
            break
        i = rng.below(len(b))
        if op == 0:
            b = b[:i] + bytes((rng.below(256),)) + b[i + 1:]
        elif op == 1:
            b = b[:i] + bytes((b[i] ^ (1 << rng.below(8)),)) + b[i + 1:]
        elif op == 2:
            b = b[:i] + rng.bytes(1 + rng.below(4)) + b[i:]
        else:
            b = b[:i] + b[i + 1 + rng.below(8):]
    return b


def _processor(name):
    root = ROOT + "/" + name
    key = CoseKey.from_raw(5, hgtest.read_vector(V + "hmac256_key.bin"))
    drv = BundleDriver(root, {}, maxsize=4096)
    kek = [CoseKey.from_raw(-3, hgtest.read_vector(V + "a128kw_kek.bin"), kid=b"kid-1")]
    return Processor(drv, [key], None, decryption_keys=kek, maxsize=8192), key


def _check(res):
    assert res.reason < len(REASONS) and (res.ok or res.reason > 0), res
    assert res.message != "out of memory", res
    cbor.loads(res.report)


def test_mutated_envelopes_give_defined_errors():
    data = hgtest.read_vector(V + "suit_manifest_expAW.suit")
    proc, key = _processor("env")
    rng = hgtest.Rng(11)
    for _ in range(ROUNDS):
        res = proc.update(_mutate(rng, data))
        _check(res)


def test_mutated_manifests_reach_the_interpreter_and_give_defined_results():
    env = read(hgtest.read_vector(V + "suit_manifest_expAW.suit"), 4096)
    manifest = bytes(env.manifest)
    m = cbor.loads(manifest)
    m[20] = cbor.dumps([20, {18: b"content", 14: 7}, 15, [cbor.dumps([14, 15]), cbor.dumps([18, 15, 3, 15])],
                        32, cbor.dumps([12, 0, 20, {13: True}, 6, 15]), 18, 15])
    manifest = cbor.dumps(m)
    proc, key = _processor("man")
    rng = hgtest.Rng(12)
    seen = {}
    for _ in range(ROUNDS):
        mb = _mutate(rng, manifest)
        digest = cbor.dumps([-16, sha256(cbor.dumps(mb)).digest()])
        blk = mac0.create(key, digest, alg=5, detached=True, include_kid=False)
        res = proc.update(cbor.dumps(cbor.Tag(107, {2: cbor.dumps([digest, blk]), 3: mb})))
        _check(res)
        seen[REASONS[res.reason]] = seen.get(REASONS[res.reason], 0) + 1
    assert seen.get("cbor-parse", 0) > 20 and len(seen) >= 3, seen


def test_hostile_lengths_and_nesting_are_bounded():
    proc, key = _processor("deep")
    deep = b"\x81" * 200 + b"\x00"
    digest = cbor.dumps([-16, sha256(cbor.dumps(deep)).digest()])
    blk = mac0.create(key, digest, alg=5, detached=True, include_kid=False)
    for body in (deep, b"\xa1\x14\x5b\xff\xff\xff\xff\xff\xff\xff\xff", b"\xbf" * 50):
        d = cbor.dumps([-16, sha256(cbor.dumps(body)).digest()])
        b = mac0.create(key, d, alg=5, detached=True, include_kid=False)
        _check(proc.update(cbor.dumps(cbor.Tag(107, {2: cbor.dumps([d, b]), 3: body}))))
    # an array header claiming 2^32 authentication blocks
    _check(proc.update(b"\xd8\x6b\xa2\x02\x45\x9a\xff\xff\xff\xff\x03\x40"))
    # nested run-sequence deeper than the interpreter allows
    seq = cbor.dumps([14, 15])
    for _ in range(10):
        seq = cbor.dumps([32, seq])
    m = cbor.loads(bytes(read(hgtest.read_vector(V + "suit_manifest_expAW.suit"), 4096).manifest))
    m[20] = seq
    mb = cbor.dumps(m)
    digest = cbor.dumps([-16, sha256(cbor.dumps(mb)).digest()])
    blk = mac0.create(key, digest, alg=5, detached=True, include_kid=False)
    res = proc.update(cbor.dumps(cbor.Tag(107, {2: cbor.dumps([digest, blk]), 3: mb})))
    assert REASONS[res.reason] == "cbor-parse" and "nested deeper" in res.message, res
