"""COSE interop with pycose, both ways: pycose-made Sign1/Mac0/Encrypt0/Encrypt(A128KW) verify or decrypt with
our lib/cose on CPython and on the MicroPython VM; ours (made on CPython and on the VM) verify with pycose.

pycose 1.1.0's CoseMessage.decode rejects every tagged message under cbor2 6.x, which decodes arrays and maps
inside tags as tuples and frozendicts; `pycose_decode` thaws them and calls the message class directly."""
from __future__ import annotations

import json
import os
import random

import cbor2
import pytest
from pycose.algorithms import A128KW, AESCCM1664128, EdDSA, Es256, HMAC256, HMAC25664
from pycose.headers import IV, KID, Algorithm
from pycose.keys import EC2Key, OKPKey, SymmetricKey
from pycose.keys.curves import P256, Ed25519
from pycose.messages import Enc0Message, EncMessage, Mac0Message, Sign1Message
from pycose.messages.recipient import KeyWrap

from crypto import InvalidSignature, InvalidTag
from cose import algs, encrypt, encrypt0, mac0, sign1
from cose.key import CoseKey, KeySet
from hourglass import mpvm

PAYLOAD = b"SUIT digest stand-in \x00\xff"
AAD = b"external aad"


def _thaw(x):
    if isinstance(x, (list, tuple)):
        return [_thaw(v) for v in x]
    if isinstance(x, dict) or type(x).__name__ == "frozendict":
        return {k: _thaw(v) for k, v in x.items()}
    return x


def pycose_decode(cls, data: bytes):
    obj = cbor2.loads(data)
    if isinstance(obj, cbor2.CBORTag):
        assert obj.tag == cls.cbor_tag
        obj = obj.value
    return cls.from_cose_obj(_thaw(obj), True)


def _flip_last(data: bytes) -> bytes:
    b = bytearray(data)
    b[-1] ^= 1
    return bytes(b)


@pytest.fixture(scope="module")
def keys():
    rng = random.Random(9052)
    ec = EC2Key.generate_key(crv=P256)
    ed = OKPKey.generate_key(crv=Ed25519)
    return {
        "ec": ec, "ed": ed,
        "hmac": SymmetricKey(k=rng.randbytes(32)),
        "ccm": SymmetricKey(k=rng.randbytes(16)),
        "kek": SymmetricKey(k=rng.randbytes(16)),
    }


def _ours(keys, name, private=False):
    k = keys[name]
    if name == "ec":
        return CoseKey.from_raw(algs.ES256, k.d if private else b"\x04" + k.x + k.y, kid=b"ec", private=private)
    if name == "ed":
        return CoseKey.from_raw(algs.EDDSA, k.d if private else k.x, kid=b"ed", private=private)
    if name == "hmac":  # no alg on the key: it serves both HMAC 256/64 and 256/256
        return CoseKey.symmetric(k.k, kid=b"hmac")
    alg = {"ccm": algs.AES_CCM_16_64_128, "kek": algs.A128KW}[name]
    return CoseKey.from_raw(alg, k.k, kid=name.encode())


def pycose_messages(keys):
    """(kind, our key name, cbor bytes, detached payload or None, external aad) made by pycose."""
    out = []
    for alg, kname in ((Es256, "ec"), (EdDSA, "ed")):
        m = Sign1Message(phdr={Algorithm: alg}, uhdr={KID: kname.encode()}, payload=PAYLOAD, external_aad=AAD)
        m.key = keys[kname]
        out.append(("sign1", kname, m.encode(), None, AAD))
        # detached: pycose signs the payload and we blank it in the encoding
        m = Sign1Message(phdr={Algorithm: alg}, uhdr={KID: kname.encode()}, payload=PAYLOAD)
        m.key = keys[kname]
        arr = _thaw(cbor2.loads(m.encode()).value)
        arr[2] = None
        out.append(("sign1", kname, cbor2.dumps(cbor2.CBORTag(18, arr)), PAYLOAD, b""))
    for alg in (HMAC256, HMAC25664):
        m = Mac0Message(phdr={Algorithm: alg}, uhdr={KID: b"hmac"}, payload=PAYLOAD, external_aad=AAD)
        m.key = keys["hmac"]
        out.append(("mac0", "hmac", m.encode(), None, AAD))
    m = Enc0Message(phdr={Algorithm: AESCCM1664128}, uhdr={IV: os.urandom(13), KID: b"ccm"}, payload=PAYLOAD,
                    external_aad=AAD)
    m.key = keys["ccm"]
    out.append(("encrypt0", "ccm", m.encode(), None, AAD))
    r = KeyWrap(uhdr={Algorithm: A128KW, KID: b"kek"})
    r.key = keys["kek"]
    m = EncMessage(phdr={Algorithm: AESCCM1664128}, uhdr={IV: os.urandom(13)}, payload=PAYLOAD, recipients=[r],
                   external_aad=AAD)
    m.key = SymmetricKey(k=os.urandom(16))
    out.append(("encrypt", "kek", m.encode(), None, AAD))
    return out


def _open(kind, key, data, detached, aad):
    if kind == "sign1":
        return sign1.verify(data, key, payload=detached, external_aad=aad)
    if kind == "mac0":
        return mac0.verify(data, key, payload=detached, external_aad=aad)
    if kind == "encrypt0":
        return encrypt0.decrypt(data, key, external_aad=aad)
    return encrypt.decrypt(data, key, external_aad=aad)


def test_pycose_made_messages_open_with_ours_on_cpython(keys):
    msgs = pycose_messages(keys)
    assert len(msgs) == 8
    for kind, kname, data, detached, aad in msgs:
        key = _ours(keys, kname)
        assert _open(kind, key, data, detached, aad) == PAYLOAD, (kind, kname)
        err = InvalidSignature if kind == "sign1" else InvalidTag
        with pytest.raises(err):
            _open(kind, key, _flip_last(data), detached, aad)
        with pytest.raises(err):
            _open(kind, key, data, detached, aad + b"!")


def test_kid_selects_key_from_set(keys):
    msgs = pycose_messages(keys)
    ks = KeySet([_ours(keys, n) for n in ("ec", "ed", "hmac", "ccm", "kek")])
    for kind, kname, data, detached, aad in msgs:
        assert _open(kind, ks, data, detached, aad) == PAYLOAD


VM_OPEN = r"""
import sys, json
from cose import sign1, mac0, encrypt0, encrypt
from cose.key import CoseKey
from crypto import CryptoError
while True:
    line = sys.stdin.readline()
    if not line:
        break
    v = json.loads(line)
    h = bytes.fromhex
    key = CoseKey.decode(h(v["key"]))
    data, aad = h(v["data"]), h(v["aad"])
    det = h(v["detached"]) if v["detached"] is not None else None
    kind = v["kind"]
    def run(d):
        if kind == "sign1":
            return sign1.verify(d, key, payload=det, external_aad=aad)
        if kind == "mac0":
            return mac0.verify(d, key, payload=det, external_aad=aad)
        if kind == "encrypt0":
            return encrypt0.decrypt(d, key, external_aad=aad)
        return encrypt.decrypt(d, key, external_aad=aad)
    ok = run(data).hex()
    bad = bytearray(data)
    bad[-1] ^= 1
    try:
        run(bytes(bad))
        rejected = False
    except CryptoError:
        rejected = True
    print(json.dumps([ok, rejected]))
"""


def test_pycose_made_messages_open_with_ours_on_vm(keys):
    items = []
    for kind, kname, data, detached, aad in pycose_messages(keys):
        private = kname in ("hmac", "ccm", "kek")
        items.append({"kind": kind, "key": _ours(keys, kname).encode(private=private).hex(), "data": data.hex(),
                      "detached": detached.hex() if detached is not None else None, "aad": aad.hex()})
    payload = "".join(json.dumps(i) + "\n" for i in items).encode()
    # 256k: at 192k the run sat at the margin (a MemoryError importing crypto.aes once lib/ grew a package)
    proc = mpvm.run(["-c", VM_OPEN], heap="256k", input=payload)
    assert proc.returncode == 0, proc.stdout.decode()[-3000:] + proc.stderr.decode()
    got = [json.loads(line) for line in proc.stdout.decode().splitlines() if line.strip()]
    assert got == [[PAYLOAD.hex(), True]] * len(items)


def test_ours_open_with_pycose(keys):
    ec, ed = _ours(keys, "ec", True), _ours(keys, "ed", True)
    for key, alg in ((ec, algs.ES256), (ed, algs.EDDSA)):
        data = sign1.sign(key, PAYLOAD, alg=alg, external_aad=AAD)
        m = pycose_decode(Sign1Message, data)
        m.key = keys["ec" if key is ec else "ed"]
        m.external_aad = AAD
        assert m.verify_signature()
        m.external_aad = b""
        assert not m.verify_signature()
        det = sign1.sign(key, PAYLOAD, alg=alg, detached=True)
        m = pycose_decode(Sign1Message, det)
        m.key = keys["ec" if key is ec else "ed"]
        assert m.verify_signature(detached_payload=PAYLOAD)
    for alg in (algs.HMAC_256_64, algs.HMAC_256_256):
        data = mac0.create(_ours(keys, "hmac"), PAYLOAD, alg=alg, external_aad=AAD)
        m = pycose_decode(Mac0Message, data)
        m.key = keys["hmac"]
        m.external_aad = AAD
        assert m.verify_tag()
    data = encrypt0.encrypt(_ours(keys, "ccm"), PAYLOAD, external_aad=AAD)
    m = pycose_decode(Enc0Message, data)
    m.key = keys["ccm"]
    m.external_aad = AAD
    assert m.decrypt() == PAYLOAD
    data = encrypt.encrypt(_ours(keys, "kek"), PAYLOAD, external_aad=AAD)
    m = pycose_decode(EncMessage, data)
    m.external_aad = AAD
    m.recipients[0].key = keys["kek"]
    assert m.decrypt(m.recipients[0]) == PAYLOAD


VM_MAKE = r"""
import sys, json
from cose import sign1, mac0, encrypt0, encrypt, algs
from cose.key import CoseKey
v = json.loads(sys.stdin.readline())
h = bytes.fromhex
aad = h(v["aad"])
payload = h(v["payload"])
out = {}
out["es256"] = sign1.sign(CoseKey.from_raw(algs.ES256, h(v["ec"]), private=True), payload, external_aad=aad).hex()
out["eddsa"] = sign1.sign(CoseKey.from_raw(algs.EDDSA, h(v["ed"]), private=True), payload, external_aad=aad).hex()
out["mac0"] = mac0.create(CoseKey.from_raw(algs.HMAC_256_64, h(v["hmac"])), payload, external_aad=aad).hex()
out["enc0"] = encrypt0.encrypt(CoseKey.from_raw(algs.AES_CCM_16_64_128, h(v["ccm"])), payload, external_aad=aad).hex()
out["enc"] = encrypt.encrypt(CoseKey.from_raw(algs.A128KW, h(v["kek"])), payload, external_aad=aad).hex()
print(json.dumps(out))
"""


def test_vm_made_messages_open_with_pycose(keys):
    req = {"aad": AAD.hex(), "payload": PAYLOAD.hex(), "ec": keys["ec"].d.hex(), "ed": keys["ed"].d.hex(),
           "hmac": keys["hmac"].k.hex(), "ccm": keys["ccm"].k.hex(), "kek": keys["kek"].k.hex()}
    # 256k: this one process compiles cbor, cose, P-256, Ed25519 (+ SHA-512), AES and CCM from source; the
    # per-operation heap is measured by bench_cose / bench_crypto_sym
    proc = mpvm.run(["-c", VM_MAKE], heap="256k", input=(json.dumps(req) + "\n").encode())
    assert proc.returncode == 0, proc.stdout.decode()[-3000:] + proc.stderr.decode()
    got = {k: bytes.fromhex(v) for k, v in json.loads(proc.stdout.decode().strip().splitlines()[-1]).items()}
    for name, kname in (("es256", "ec"), ("eddsa", "ed")):
        m = pycose_decode(Sign1Message, got[name])
        m.key, m.external_aad = keys[kname], AAD
        assert m.verify_signature(), name
        m = pycose_decode(Sign1Message, _flip_last(got[name]))
        m.key, m.external_aad = keys[kname], AAD
        assert not m.verify_signature(), name
    m = pycose_decode(Mac0Message, got["mac0"])
    m.key, m.external_aad = keys["hmac"], AAD
    assert m.verify_tag()
    m = pycose_decode(Enc0Message, got["enc0"])
    m.key, m.external_aad = keys["ccm"], AAD
    assert m.decrypt() == PAYLOAD
    m = pycose_decode(EncMessage, got["enc"])
    m.external_aad = AAD
    m.recipients[0].key = keys["kek"]
    assert m.decrypt(m.recipients[0]) == PAYLOAD
