# Modules only one phase needs are released after it (issue 8): bootstrap's X25519/P-256 ECDH and the update's
# COSE signature verification. After crypto.release(...) and gc.collect() the heap they took must come back,
# so nothing else (a package attribute, a cache in another module) may keep them alive.
import gc
import sys

import hgtest
import crypto
from crypto import kdf, util  # steady state: loaded before the phases and kept  # noqa: F401

# The cases compile the modules from source, which needs more heap than the .mpy a board loads: the update
# phase (COSE, P-256, Ed25519, SHA-512, HSS-LMS, with signing beforehand) does not fit 128k that way.
MP_HEAP = "256k"

BOOTSTRAP = ("crypto.x25519", "crypto.p256", "crypto._ec", "crypto._concat_kdf")
UPDATE = ("cose.sign1", "cose.mac0", "cose.key", "cose.algs", "cose.headers", "crypto._lms_py",
          "crypto.p256", "crypto._ec", "crypto.ed25519", "crypto._ed25519_math", "crypto.sha512",
          "crypto._sha512_once", "crypto._sha512_viper", "crypto.lms", "crypto._lms_viper",
          "crypto._lms_selftest", "_cbor_stream")
# What stays after a release on the VM: the interned names (the qstr pool never shrinks; hgtest.open_qstr_pool
# opens the next pool before the phase, so a pool it would open is not counted) and heap-block rounding.
LEFT_OVER = 0.2


def _vm_only():
    # On CPython the cases share pytest's process: releasing cose.key there would give the other case files'
    # CoseKey objects a class the re-imported modules no longer know.
    if not hgtest.IS_MICROPYTHON:
        hgtest.skip("heap release is measured on the MicroPython VM")


def _heap():
    gc.collect()
    return gc.mem_alloc()


def _bootstrap_phase():
    from crypto import x25519, p256
    a, a_pub = x25519.generate()
    b, b_pub = x25519.generate()
    assert x25519.x25519(a, b_pub) == x25519.x25519(b, a_pub)
    c, c_pub = p256.generate()
    d, d_pub = p256.generate()
    z = p256.ecdh(c, d_pub)
    assert z == p256.ecdh(d, c_pub)
    return kdf.concat_kdf_sha256(z, 64, b"EAP-NOOB")


def _signed_messages():
    from cose import sign1
    from cose.key import CoseKey
    es = CoseKey.from_raw(-7, bytes(range(1, 33)), kid=b"p", private=True)
    ed = CoseKey.from_raw(-8, bytes(range(32)), kid=b"e", private=True)
    msgs = (sign1.sign(es, b"manifest digest"), sign1.sign(ed, b"manifest digest"))
    return msgs, (es.encode(), ed.encode())  # public keys only, as the device stores them


def _update_phase(msgs, keys):
    from cose import sign1
    from cose.key import CoseKey, KeySet
    from crypto import lms
    trust = KeySet([CoseKey.decode(k) for k in keys])
    for m in msgs:
        assert sign1.verify(m, trust) == b"manifest digest"
    pub = hgtest.read_vector("crypto/lms/w8_h5_l1.pub")
    sig = hgtest.read_vector("crypto/lms/w8_h5_l1.sig")
    assert lms.hss_verify(pub, hgtest.read_vector("crypto/lms/message.bin"), sig)
    import cbor
    dec = cbor.Decoder(msgs[0])  # SUIT walks envelopes with the incremental decoder
    assert dec.read_tag() == 18


def _check_released(names, before, loaded):
    for name in names:
        assert name not in sys.modules, name
    after = _heap()
    grew = loaded - before
    assert grew > 4096, "the phase loaded only %d bytes: nothing to release?" % grew
    assert after - before <= grew * LEFT_OVER, \
        "%d of the %d bytes the phase took are still in use after the release" % (after - before, grew)


def test_bootstrap_modules_release():
    _vm_only()
    crypto.release(*BOOTSTRAP)
    hgtest.open_qstr_pool()
    before = _heap()
    okm = _bootstrap_phase()
    loaded = _heap()
    crypto.release(*BOOTSTRAP)
    _check_released(BOOTSTRAP, before, loaded)
    assert len(okm) == 64
    assert "p256" not in crypto.__dict__ and "x25519" not in crypto.__dict__
    assert len(_bootstrap_phase()) == 64  # and they import again when needed


def test_update_modules_release():
    _vm_only()
    msgs, keys = _signed_messages()
    crypto.release(*UPDATE)
    crypto.release("crypto._p256_sign", "crypto._ed25519_sign", "cose._sign")
    hgtest.open_qstr_pool()
    before = _heap()
    _update_phase(msgs, keys)
    loaded = _heap()
    crypto.release(*UPDATE)
    _check_released(UPDATE, before, loaded)
    _update_phase(msgs, keys)
    crypto.release(*UPDATE)


def test_release_ignores_what_is_not_loaded():
    _vm_only()
    crypto.release("crypto.nothing_here", "not_a_module", "cose.nothing")
    assert "cose.nothing" not in sys.modules
