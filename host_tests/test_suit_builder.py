"""`hourglass suit`: envelopes from our builder are accepted by lib/suit and agree with a second implementation
(cbor2 decodes them identically to lib/cbor, pycose/cryptography verify their authentication blocks), for every
algorithm, several components, encrypted payloads, severed members and try-each trees.

The device cases (case_suit_built.py, case_suit_powercut.py) run on envelopes this module made once and that
live in host_tests/vectors/suit/built/ (the VM has no cryptography). Regenerate them with
`.venv/bin/python host_tests/test_suit_builder.py`; test_committed_vectors_verify checks the committed files.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import cbor2
import pytest

from hourglass import cli, cose_tool
from hourglass.common import UserError
from hourglass.suit import build_envelope, load_description
from hourglass import keys as hk
from hourglass.keys import algs
from suit_ota_common import payload

HERE = Path(__file__).resolve().parent
BUILT = HERE / "vectors" / "suit" / "built"
VENDOR = "fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe"
CLASS = "1492af14-2569-5e48-bf42-9b2d51f2ab45"
ALGS = {"es256": algs.ES256, "esp256": algs.ESP256, "eddsa": algs.EDDSA, "ed25519": algs.ED25519, "hss": algs.HSS_LMS,
        "hmac": algs.HMAC_256_256}


def _write_key(d: Path, name: str, alg: int, reuse: bool = False) -> Path:
    if reuse and (d / f"{name}.key").exists():
        return d / f"{name}.key"
    if alg == algs.HSS_LMS:
        key = hk.generate(alg, name.encode(), levels=1, height=5)
    else:
        key = hk.generate(alg, name.encode())
    (d / f"{name}.key").write_bytes(cbor2.dumps(key, canonical=True))
    if key[1] != algs.KTY_SYMMETRIC:
        (d / f"{name}.pub").write_bytes(cbor2.dumps(hk.public_of(key), canonical=True))
    return d / f"{name}.key"


def _build(desc: dict, d: Path, name: str, keys: list[str], kek: str | None = None) -> bytes:
    (d / f"{name}.json").write_text(json.dumps(desc, indent=1))
    args = ["suit", "build", str(d / f"{name}.json"), "-o", str(d / f"{name}.suit")]
    for k in keys:
        args += ["-k", str(d / f"{k}.key")]
    if kek:
        args += ["--kek", str(d / f"{kek}.key")]
    assert cli.main(args) == 0
    return (d / f"{name}.suit").read_bytes()


def regenerate(d: Path = BUILT) -> dict:
    """Keys, payloads and envelopes for the device cases, and expected.json describing them."""
    d.mkdir(parents=True, exist_ok=True)
    for name, alg in ALGS.items():
        _write_key(d, name, alg, reuse=True)
    _write_key(d, "kek", algs.A128KW, reuse=True)
    _write_key(d, "other", algs.ES256, reuse=True)  # a key the device does not trust
    expected: dict = {}
    base = {"vendor-id": VENDOR, "class-id": CLASS}
    small = payload(300, 1)
    (d / "small.bin").write_bytes(small)
    for name in ALGS:
        desc = dict(base, **{"sequence-number": 1, "component": [
            {"id": ["app.py"], "file": "small.bin", "integrated": True}]})
        _build(desc, d, f"alg_{name}", [name])
    # several components: an integrated one, a fetched AES-GCM one, a fetched AES-CTR one; install and text
    # severed; several authentication blocks (an untrusted key first)
    files = {"lib/app.py": payload(1000, 2), "data/blob.bin": payload(5000, 3), "data/ctr.bin": payload(777, 4)}
    for rel, data in files.items():
        (d / rel.replace("/", "_")).write_bytes(data)
    desc = dict(base, **{"sequence-number": 7, "reference-uri": "coap://updates.example/multi",
                         "text": "three components", "sever": ["install", "text"], "component": [
        {"id": ["lib", "app.py"], "file": "lib_app.py", "integrated": True, "invoke": True},
        {"id": ["data", "blob.bin"], "file": "data_blob.bin", "uri": "file:blob", "encrypt": "A128GCM"},
        {"id": ["data", "ctr.bin"], "file": "data_ctr.bin", "uri": "file:ctr", "encrypt": "A128CTR"}]})
    _build(desc, d, "multi", ["other", "es256", "hmac"], kek="kek")
    expected["multi"] = {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}
    # the power-cut pair: v1 installs three files, v2 replaces two and adds one
    v1 = {"a.py": payload(3000, 10), "b.py": payload(200, 11), "c.txt": payload(9000, 12)}
    v2 = {"a.py": payload(2500, 20), "b.py": payload(4100, 21), "d.bin": payload(6000, 22)}
    for tag, content, seq in (("v1", v1, 1), ("v2", v2, 2)):
        comps = []
        for rel, data in content.items():
            (d / f"{tag}_{rel}").write_bytes(data)
            comps.append({"id": [rel], "file": f"{tag}_{rel}", "uri": f"file:{tag}_{rel}"})
        _build(dict(base, **{"sequence-number": seq, "component": comps}), d, f"pc_{tag}", ["hmac"])
        expected[f"pc_{tag}"] = {k: hashlib.sha256(v).hexdigest() for k, v in content.items()}
    # A/B slots: try-each over component-slot picks the free slot
    ab = payload(4096 + 100, 30)
    (d / "ab.bin").write_bytes(ab)
    for seq in (1, 2):
        _build(dict(base, **{"sequence-number": seq, "component": [
            {"id": ["fw"], "file": "ab.bin", "uri": "file:ab", "slots": [0, 1], "invoke": True}]}),
            d, f"ab_{seq}", ["ed25519", "hmac"])
    for p in sorted(d.glob("*.json")):
        if p.name != "expected.json":
            p.unlink()
    (d / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    return expected


# --- tests -----------------------------------------------------------------------------------------------

def _device_modules():
    import cbor  # noqa: F401  (conftest puts lib/* on sys.path)
    from cose.key import CoseKey
    from store import FileStore
    from suit.bundle import BundleDriver
    from suit.processor import Processor
    return CoseKey, FileStore, BundleDriver, Processor


def _cose_key(path: Path):
    CoseKey = _device_modules()[0]
    return CoseKey.decode(path.read_bytes())


def _lib_decode(data: bytes):
    import cbor
    return cbor.loads(data)


def _norm(x):
    """lib/cbor and cbor2 objects in one comparable form."""
    import cbor
    if isinstance(x, (cbor2.CBORTag, cbor.Tag)):
        return ("tag", x.tag, _norm(x.value))
    if isinstance(x, (list, tuple)):
        return [_norm(v) for v in x]
    if hasattr(x, "items"):
        return {(tuple(_norm(k)) if isinstance(k, (list, tuple)) else k): _norm(v) for k, v in x.items()}
    return x


def _walk_bstrs(x):
    """Every bstr inside x that is itself CBOR, decoded by both libraries, for a deep comparison."""
    yield x
    if isinstance(x, (list, tuple)):
        for v in x:
            yield from _walk_bstrs(v)
    elif hasattr(x, "items"):
        for v in x.values():
            yield from _walk_bstrs(v)
    elif isinstance(x, cbor2.CBORTag):
        yield from _walk_bstrs(x.value)


def test_committed_vectors_verify():
    """The committed envelopes decode identically with cbor2 and lib/cbor, and their blocks verify with
    cryptography/pycose/pyhsslms (through hourglass.keys) using the committed keys."""
    assert (BUILT / "expected.json").is_file(), "run host_tests/test_suit_builder.py to make the vectors"
    for env_path in sorted(BUILT.glob("*.suit")):
        data = env_path.read_bytes()
        env = cbor2.loads(data)
        assert _norm(env) == _norm(_lib_decode(data)), env_path.name
        for item in _walk_bstrs(env):
            if isinstance(item, bytes) and item[:1] in (b"\x82", b"\x84", b"\xa1", b"\xa2", b"\xa3", b"\xa5"):
                try:
                    ref = cbor2.loads(item)
                except Exception:
                    continue
                assert _norm(ref) == _norm(_lib_decode(item))
        auth = cbor2.loads(env.value[2])
        digest = cbor2.loads(auth[0])
        assert digest[1] == hashlib.sha256(cbor2.dumps(env.value[3])).digest()
        verified = 0
        for blk in auth[1:]:
            kid = cbor2.loads(blk).value[1][4].decode()
            if kid == "other":
                continue
            key = hk.load_key(BUILT / (f"{kid}.pub" if (BUILT / f"{kid}.pub").exists() else f"{kid}.key"))
            cose_tool.verify1(key, blk, payload=auth[0])
            verified += 1
        assert verified >= 1, env_path.name


def test_pycose_verifies_es256_and_hmac_blocks():
    """A second COSE implementation: pycose's own Sign1/Mac0 verification of our detached blocks."""
    from pycose.keys import CoseKey as PyKey
    from pycose.messages import Mac0Message, Sign1Message
    env = cbor2.loads((BUILT / "multi.suit").read_bytes())
    auth = cbor2.loads(env.value[2])
    seen = set()
    for blk in auth[1:]:
        obj = cbor2.loads(blk)
        kid = obj.value[1][4].decode()
        if kid == "es256":
            msg = Sign1Message.from_cose_obj([obj.value[0], dict(obj.value[1]), auth[0], obj.value[3]], True)
            pub = hk.load_key(BUILT / "es256.pub")
            msg.key = PyKey.from_dict(pub)
            assert msg.verify_signature()
            seen.add(kid)
        elif kid == "hmac":
            msg = Mac0Message.from_cose_obj([obj.value[0], dict(obj.value[1]), auth[0], obj.value[3]], True)
            msg.key = PyKey.from_dict(hk.load_key(BUILT / "hmac.key"))
            assert msg.verify_tag()
            seen.add(kid)
    assert seen == {"es256", "hmac"}


@pytest.mark.parametrize("alg", sorted(ALGS))
def test_fresh_envelopes_for_every_algorithm_install(tmp_path, alg):
    """Freshly built (new keys, new random IVs/signatures) and processed by lib/suit on CPython."""
    CoseKey, FileStore, BundleDriver, Processor = _device_modules()
    key_path = _write_key(tmp_path, alg, ALGS[alg])
    kek_path = _write_key(tmp_path, "kek", algs.A128KW)
    payload = os.urandom(5000)
    (tmp_path / "p.bin").write_bytes(payload)
    desc = {"vendor-id": VENDOR, "class-id": CLASS, "sequence-number": 3, "sever": ["install"], "component": [
        {"id": ["x.bin"], "file": "p.bin", "integrated": True, "encrypt": "A128GCM"}]}
    data = _build(desc, tmp_path, "e", [alg], kek="kek")
    anchor = _cose_key(key_path if ALGS[alg] == algs.HMAC_256_256 else key_path.with_suffix(".pub"))
    drv = BundleDriver(str(tmp_path / "dev"), {1: bytes.fromhex(VENDOR.replace("-", "")),
                                               2: bytes.fromhex(CLASS.replace("-", ""))})
    proc = Processor(drv, [anchor], FileStore(str(tmp_path / "dev" / "state")), decryption_keys=[_cose_key(kek_path)])
    res = proc.update(data)
    assert res.ok, res
    assert (tmp_path / "dev" / "x.bin").read_bytes() == payload
    assert proc.stored_sequence_number() == 3
    # the wrong trust anchor refuses it and changes nothing
    other = _cose_key(_write_key(tmp_path, "o", algs.HMAC_256_256 if ALGS[alg] == algs.HMAC_256_256 else algs.ES256)
                      .with_suffix(".key" if ALGS[alg] == algs.HMAC_256_256 else ".pub"))
    drv2 = BundleDriver(str(tmp_path / "dev2"), {k: drv.identity(k) for k in (1, 2)})
    res = Processor(drv2, [other], FileStore(str(tmp_path / "dev2" / "state"))).update(data)
    assert not res.ok and res.reason == 4, res  # unauthorised
    assert not (tmp_path / "dev2" / "x.bin").exists()


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_directory_component_is_packed_as_the_device_unpacks_it(tmp_path):
    """A directory component: cbor2 reads its image as a CBOR sequence of (path, content) in path order; lib/suit
    installs the same tree, replaces it whole with the next version, and the manifest's digest is the image's."""
    CoseKey, FileStore, BundleDriver, Processor = _device_modules()
    _write_key(tmp_path, "hmac", algs.HMAC_256_256)
    trees = {1: {"__init__.py": b"v = 1\n", "sub/a.py": os.urandom(3000), "sub/x/e.txt": b"", "a.py.bak": b"q"},
             2: {"__init__.py": b"v = 2\n", "new.py": os.urandom(900)}}
    drv = BundleDriver(str(tmp_path / "dev"), {})
    proc = Processor(drv, [_cose_key(tmp_path / "hmac.key")], FileStore(str(tmp_path / "dev" / "state")))
    for v, files in trees.items():
        src = tmp_path / f"tree{v}"
        for rel, data in files.items():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).write_bytes(data)
        desc = {"sequence-number": v, "component": [
            {"id": ["lib", "pkg"], "directory": f"tree{v}", "integrated": True},
            {"id": ["main.py"], "file": f"tree{v}/__init__.py", "uri": "file:m"}]}
        data = _build(desc, tmp_path, f"dir{v}", ["hmac"])
        env = cbor2.loads(data).value
        image = env["#0"]
        items = []
        stream = io.BytesIO(image)
        while stream.tell() < len(image):
            items.append(cbor2.load(stream))
        assert items[0::2] == sorted(files) and dict(zip(items[0::2], items[1::2])) == files
        assert all(cbor2.dumps(x) in image for x in items)  # preferred serialization throughout
        common = cbor2.loads(cbor2.loads(env[3])[3])
        assert common[2][0] == [b"lib", b"pkg", b""]
        shared = cbor2.loads(common[4])
        assert shared[3][3] == cbor2.dumps([-16, hashlib.sha256(image).digest()]) and shared[3][14] == len(image)
        drv.sources = {"file:m": str(src / "__init__.py")}
        res = proc.update(data)
        assert res.ok, res
        assert _tree(tmp_path / "dev" / "lib" / "pkg") == files
        assert proc.boot(data).ok  # validate: image-match on the tree as installed


def test_directory_components_refuse_what_the_device_cannot_hold(tmp_path):
    _write_key(tmp_path, "hmac", algs.HMAC_256_256)
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "bad name.py").write_text("x")
    (tmp_path / "f.bin").write_bytes(b"x")
    for comp, message in (({"id": ["p"], "directory": "t", "uri": "x"}, "characters the device refuses"),
                          ({"id": ["p"], "directory": "f.bin", "uri": "x"}, "is not a directory"),
                          ({"id": ["p"], "directory": "t", "file": "f.bin", "uri": "x"}, "a file or a directory"),
                          ({"id": ["p", ""], "file": "f.bin", "uri": "x"}, "names a directory")):
        (tmp_path / "d.json").write_text(json.dumps({"sequence-number": 1, "component": [comp]}))
        with pytest.raises(UserError) as e:
            build_envelope(load_description(tmp_path / "d.json"), [(hk.load_key(tmp_path / "hmac.key"), None)],
                           tmp_path)
        assert message in str(e.value), (comp, e.value)


def test_inspect_names_every_member_and_checks_the_key(capsys):
    assert cli.main(["suit", "inspect", str(BUILT / "multi.suit"), "-k", str(BUILT / "hmac.key")]) == 0
    out = capsys.readouterr().out
    for words in ("authentication-wrapper", "COSE_Mac0 HMAC 256/256", "verifies with the key", "matches the "
                  "authenticated digest", "manifest-sequence-number / 7", "directive-set-component-index",
                  "encryption-info", "96(", "install / severed", "integrated payload"):
        assert words in out, words
    assert cli.main(["suit", "inspect", str(BUILT / "multi.suit"), "-k", str(BUILT / "eddsa.pub")]) == 1
    assert "no authentication block verifies" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(p.name for p in (HERE / "vectors" / "suit").glob("*.suit")))
def test_inspect_reads_every_shared_vector_and_verifies_the_ietf_key(name, capsys, tmp_path):
    from cryptography.hazmat.primitives import serialization
    pem = serialization.load_pem_public_key((HERE / "vectors" / "suit" / "ietf_example_pub.pem").read_bytes())
    raw = pem.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    alg = algs.ESP256 if "exp0" in name or "expI" in name else algs.ES256
    key = {1: algs.KTY_EC2, 3: alg, -1: algs.CRV_P256, -2: raw[1:33], -3: raw[33:]}
    if "expAW" in name:
        secret = (HERE / "vectors" / "suit" / "hmac256_key.bin").read_bytes()
        key = {1: algs.KTY_SYMMETRIC, 3: algs.HMAC_256_256, -1: secret}
    (tmp_path / "k.pub").write_bytes(cbor2.dumps(key))
    assert cli.main(["suit", "inspect", str(HERE / "vectors" / "suit" / name), "-k", str(tmp_path / "k.pub")]) == 0
    out = capsys.readouterr().out
    assert "verifies with the key" in out and "matches the authenticated digest" in out


def test_user_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "d.toml").write_text('sequence-number = 1\n[[component]]\nid = ["a"]\nfile = "missing.bin"\n'
                                     'uri = "x"\n')
    assert cli.main(["suit", "build", str(tmp_path / "d.toml"), "-k", str(BUILT / "hmac.key"),
                     "-o", str(tmp_path / "o.suit")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("hourglass suit: component 0:") and "\n" not in err


def test_keys_writes_a_keyset_the_device_reads(tmp_path):
    out = tmp_path / "anchors.cbor"
    assert cli.main(["suit", "keys", str(BUILT / "es256.key"), str(BUILT / "hss.pub"), "-o", str(out)]) == 0
    CoseKey = _device_modules()[0]
    import cbor
    anchors = [CoseKey.from_map(m) for m in cbor.loads(out.read_bytes())]
    assert [a.is_private for a in anchors] == [False, False]


if __name__ == "__main__":
    sys.path[:0] = [str(p) for p in sorted((HERE.parent / "lib").iterdir()) if p.is_dir()]
    print(json.dumps(regenerate(), indent=1))
    subprocess.run([sys.executable, "-m", "pytest", "-q", __file__, "-k", "committed"], check=False)
