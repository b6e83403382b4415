# Envelopes from our builder (`hourglass suit build`, made by host_tests/test_suit_builder.py into
# vectors/suit/built/) on both runtimes: every authentication algorithm, several authentication blocks,
# several components with AES-GCM and AES-CTR payloads and severed install/text, A/B slots via try-each.
import json
import os
from hashlib import sha256

import hgtest

from cose.key import CoseKey
from store import FileStore
from suit.reasons import REASONS
from suit.bundle import BundleDriver
from suit.processor import Processor
from suit.slots import SlotDriver

# This batch compiles every verifier (P-256, Ed25519, SHA-512, HSS-LMS) and AES-GCM from source into one VM, and
# keeps them all: that, not the processor, needs the heap. At 256k the multi-component test ran out after the
# algorithm test had loaded all of them; the processor's own heap at the board budget is in `make bench`.
MP_HEAP = "320k"

B = "suit/built/"
VENDOR = hgtest.unhex("fa6b4a53d5ad5fdfbe9de663e4d41ffe")
CLASS = hgtest.unhex("1492af1425695e48bf429b2d51f2ab45")
ROOT = "build/test-suit-built-" + hgtest.RUNTIME
ALGS = ("es256", "esp256", "eddsa", "ed25519", "hss", "hmac")


def _key(name):
    return CoseKey.decode(hgtest.read_vector(B + name))


def _anchor(name):
    try:
        return _key(name + ".pub")
    except OSError:
        return _key(name + ".key")


def _sha(path):
    h = sha256()
    buf = bytearray(512)
    with open(path, "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(memoryview(buf)[0:n])
    return h.digest().hex()


def _device(name, anchors, **kw):
    root = ROOT + "/" + name
    hgtest.rmtree(root)
    sources = {"file:blob": hgtest.vector_path(B + "multi.suit.1.enc"),
               "file:ctr": hgtest.vector_path(B + "multi.suit.2.enc"),
               "file:ab": hgtest.vector_path(B + "ab.bin")}
    invoked = []
    drv = BundleDriver(root, {1: VENDOR, 2: CLASS}, sources=sources, on_invoke=lambda c, a: invoked.append(c))
    proc = Processor(drv, anchors, FileStore(root + "/.state"), decryption_keys=[_key("kek.key")], **kw)
    return proc, drv, root, invoked


def test_every_algorithm_installs_and_no_other_key_does():
    small = hgtest.read_vector(B + "small.bin")
    for alg in ALGS:
        data = hgtest.read_vector(B + "alg_%s.suit" % alg)
        proc, drv, root, inv = _device(alg, [_anchor(alg)])
        res = proc.update(data)
        assert res.ok, (alg, res)
        assert _sha(root + "/app.py") == sha256(small).digest().hex(), alg
        other = "hmac" if alg != "hmac" else "es256"
        proc, drv, root, inv = _device(alg + "-other", [_anchor(other)])
        res = proc.update(data)
        assert REASONS[res.reason] == "unauthorised" and sorted(os.listdir(root)) == [".state"], (alg, res)
        assert proc.stored_sequence_number() is None


def test_several_components_encrypted_gcm_and_ctr_severed_install_several_blocks():
    expected = json.loads(hgtest.read_vector(B + "expected.json"))["multi"]
    data = hgtest.read_vector(B + "multi.suit")
    # three authentication blocks (an untrusted ES256 key, a trusted ES256 key, an HMAC key): any one will do
    for anchors in ([_anchor("hmac")], [_anchor("es256")], [_anchor("eddsa"), _anchor("es256")]):
        proc, drv, root, inv = _device("multi", anchors)
        res = proc.update(data, invoke=True)
        assert res.ok, res
        for rel, digest in expected.items():
            assert _sha(root + "/" + rel) == digest, rel
        assert inv == [(b"lib", b"app.py")] and proc.stored_sequence_number() == 7
    # the next boot validates the installed images against the same manifest and invokes (equal sequence
    # number allowed); a changed image fails validation and nothing is invoked
    res = proc.boot(data)
    assert res.ok and not res.installed and inv == [(b"lib", b"app.py")] * 2, res
    with open(root + "/data/ctr.bin", "ab") as f:
        f.write(b"!")
    res = proc.boot(data)
    assert REASONS[res.reason] == "condition-failed" and res.record[1] == 7 and len(inv) == 2, res
    proc, drv, root, inv = _device("multi-none", [_anchor("eddsa")])
    assert REASONS[proc.update(data).reason] == "unauthorised"
    # the wrong KEK: nothing of the three components is installed
    proc, drv, root, inv = _device("multi-kek", [_anchor("hmac")])
    proc.decryption_keys = [CoseKey.from_raw(-3, bytes(16), kid=b"kek")]
    res = proc.update(data)
    assert REASONS[res.reason] == "unauthorised" and sorted(os.listdir(root)) == [".state", ".suit"], res


def test_ab_slots_try_each_writes_the_free_slot():
    ab = sha256(hgtest.read_vector(B + "ab.bin")).digest().hex()
    root = ROOT + "/ab"
    hgtest.rmtree(root)

    def device(cap=8192):
        drv = SlotDriver(root, {1: VENDOR, 2: CLASS}, {"fw": cap},
                         sources={"file:ab": hgtest.vector_path(B + "ab.bin")})
        return Processor(drv, [_anchor("ed25519")], FileStore(root + "/.state")), drv

    proc, drv = device()
    res = proc.update(hgtest.read_vector(B + "ab_1.suit"))
    assert res.ok and drv.active_slot("fw") == 0 and _sha(root + "/fw.0") == ab, res
    proc, drv = device()  # a reboot reads the active record back
    assert drv.active_slot("fw") == 0
    res = proc.update(hgtest.read_vector(B + "ab_2.suit"), invoke=True)
    assert res.ok and drv.active_slot("fw") == 1 and _sha(root + "/fw.1") == ab, res
    assert REASONS[proc.update(hgtest.read_vector(B + "ab_2.suit")).reason] == "unauthorised"
    # a slot smaller than the image: refused while streaming, the active slot stays
    hgtest.rmtree(root)
    proc, drv = device(cap=4096)
    res = proc.update(hgtest.read_vector(B + "ab_1.suit"))
    assert REASONS[res.reason] == "operation-failed" and "bigger than the slot" in res.message, res
    assert drv.active_slot("fw") is None and proc.stored_sequence_number() is None
