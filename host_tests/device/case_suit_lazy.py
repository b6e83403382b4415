# What a plain update loads (lib/suit, both runtimes): a download into the bundle route's spool (suit.spool) loads
# no storage driver; a file then fetched, digested, written and committed on a new device runs in suit.processor
# and suit.bundle (with suit.envelope); the modules of the rarer paths (the other commands, directory and binary
# components, a failed install's clean-up, encryption, the error texts) load only when a manifest needs them.
# A case file of its own: the VM runs it in a process that has imported none of them (CPython runs every case in
# one process: what other cases imported is forgotten first).
import os
import sys
from hashlib import sha256

import cbor
import hgtest
from cose import mac0
from cose.key import CoseKey

MP_HEAP = "128k"

RARE = ("suit.commands", "suit.bundle_more", "suit.bundle_dir", "suit.encryption", "suit.fs", "suit._text",
        "suit.reasons", "suit.envelope_file")


def test_a_download_then_a_plain_install_on_a_new_device_load_no_module_they_do_not_need():
    import suit
    for name in RARE + ("suit.bundle", "suit.spool"):
        if name in sys.modules:
            del sys.modules[name]
            delattr(suit, name[5:])
    root = "build/test-suit-lazy-" + hgtest.RUNTIME
    hgtest.rmtree(root)
    os.mkdir(root)  # a new device: no .suit, no lib/ yet
    payload = bytes(range(256)) * 16
    from suit.spool import FileSpool
    spool = FileSpool(root)
    w = spool.writer(0, 0)
    w.write(payload)
    w.close()
    assert [name for name in RARE + ("suit.bundle",) if name in sys.modules] == []
    from suit.bundle import BundleDriver
    from suit.processor import Processor
    key = CoseKey.from_raw(5, bytes(range(32)))
    image = cbor.dumps([-16, sha256(payload).digest()])
    common = {2: [[b"lib", b"app.py"]], 4: cbor.dumps([20, {3: image, 14: len(payload)}])}
    m = cbor.dumps({1: 1, 2: 1, 3: cbor.dumps(common), 20: cbor.dumps([20, {21: "file:p"}, 21, 2, 3, 15])},
                   canonical=True)
    d = cbor.dumps([-16, sha256(cbor.dumps(m)).digest()])
    env = cbor.dumps(cbor.Tag(107, {2: cbor.dumps([d, mac0.create(key, d, detached=True)]), 3: m}))
    res = Processor(BundleDriver(root, {}, sources={"file:p": root + "/.suit/dl/0"}), [key]).update(env)
    assert res.ok, res
    # the installed file compared in 256-byte pieces: a whole read() needs a 4,352 B hole in what the install left
    # (the test's own allocation, not the install's: with it the case passed or failed by where the holes fell)
    with open(root + "/lib/app.py", "rb") as f:
        for i in range(0, len(payload), 256):
            assert f.read(256) == payload[i:i + 256], i
        assert f.read(1) == b""
    assert [name for name in RARE if name in sys.modules] == []
