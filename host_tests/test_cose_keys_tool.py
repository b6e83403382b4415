"""`hourglass keys` / `hourglass cose`: keys and COSE objects made by the host tool open with our device code
(on CPython, and on the VM for a P-256 and an HSS-LMS signature); secrets stay out of output; HSS state advances."""
from __future__ import annotations

import json
import stat
from pathlib import Path

import cbor2
import pytest

from cose import encrypt0, mac0, sign1
from cose.key import CoseKey
from crypto import InvalidSignature
from hourglass import cli, mpvm
from hourglass import cose_tool
from hourglass import keys as tool

PAYLOAD = bytes.fromhex("822f58206658ea560262696dd1f13b782239a064da7c6c5cbaf52fded428a6fc83c7e5af")


def run(*argv) -> int:
    return cli.main([str(a) for a in argv])


@pytest.fixture(scope="module")
def keydir(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    for alg, name, extra in (("ES256", "es", ["--kid", "dev-es"]), ("EdDSA", "ed", []),
                             ("HSS-LMS", "hss", ["--kid", "suit", "--levels", "2", "--height", "5", "--w", "4"]),
                             ("HMAC256/64", "hm", ["--kid", "m"]), ("AES-CCM-16-64-128", "cc", []),
                             ("ESP256", "esp", [])):
        assert run("keys", "generate", alg, "-o", d / name, *extra) == 0
    (d / "payload.bin").write_bytes(PAYLOAD)
    return d


def _device_key(path):
    return CoseKey.decode(path.read_bytes())


def test_private_files_are_0600_and_info_hides_secrets(keydir, capsys):
    for name in ("es", "ed", "hss", "hm", "cc"):
        mode = stat.S_IMODE((keydir / f"{name}.key").stat().st_mode)
        assert mode == 0o600, name
    assert not (keydir / "hm.pub").exists()  # symmetric keys have no public file
    capsys.readouterr()
    for name in ("es", "ed", "hm", "hss"):
        key = cbor2.loads((keydir / f"{name}.key").read_bytes())
        assert run("keys", "info", keydir / f"{name}.key") == 0
        out = capsys.readouterr()
        secret = key.get(-4) or key.get(tool.HSS_PRIVATE_STATE) or key.get(-1)
        assert secret.hex() not in out.out + out.err
        assert "private" in out.out
    pub = cbor2.loads((keydir / "es.pub").read_bytes())
    assert -4 not in pub and pub[2] == b"dev-es"


def test_sign1_from_tool_verifies_on_device_code(keydir):
    for name, alg in (("es", None), ("esp", None), ("ed", None), ("ed", "Ed25519")):
        out = keydir / f"{name}-{alg}.cose"
        args = ["cose", "sign1", "-k", keydir / f"{name}.key", keydir / "payload.bin", "-o", out, "--detached",
                "--aad", "00ff"]
        if alg:
            args += ["--alg", alg]
        assert run(*args) == 0
        key = _device_key(keydir / f"{name}.pub")
        assert sign1.verify(out.read_bytes(), key, payload=PAYLOAD, external_aad=b"\x00\xff") == PAYLOAD
        with pytest.raises(InvalidSignature):
            sign1.verify(out.read_bytes(), key, payload=PAYLOAD)
        assert run("cose", "verify", "-k", keydir / f"{name}.pub", out, "--payload", keydir / "payload.bin",
                   "--aad", "00ff") == 0
        assert run("cose", "verify", "-k", keydir / f"{name}.pub", out, "--payload", keydir / "payload.bin") == 1


def test_hss_signing_advances_state(keydir):
    key_file = keydir / "hss.key"
    left = tool.hss_private(cbor2.loads(key_file.read_bytes())).remaining()
    sigs = []
    for i in range(2):
        out = keydir / f"hss{i}.cose"
        assert run("cose", "sign1", "-k", key_file, keydir / "payload.bin", "--detached", "-o", out) == 0
        sigs.append(out.read_bytes())
        arr = cbor2.loads(sigs[-1]).value
        assert cbor2.loads(arr[0]) == {1: -46} and arr[1] == {4: b"suit"}
    assert tool.hss_private(cbor2.loads(key_file.read_bytes())).remaining() == left - 2
    assert sigs[0] != sigs[1]  # a different one-time key each time
    pub = _device_key(keydir / "hss.pub")
    for s in sigs:
        assert sign1.verify(s, pub, payload=PAYLOAD) == PAYLOAD
    with pytest.raises(InvalidSignature):
        sign1.verify(sigs[0], pub, payload=PAYLOAD[:-1] + b"\0")


def test_mac0_and_encrypt0_from_tool(keydir, tmp_path):
    assert run("cose", "mac0", "-k", keydir / "hm.key", keydir / "payload.bin", "-o", tmp_path / "m.cose") == 0
    assert mac0.verify((tmp_path / "m.cose").read_bytes(), _device_key(keydir / "hm.key")) == PAYLOAD
    assert run("cose", "verify", "-k", keydir / "hm.key", tmp_path / "m.cose") == 0
    assert run("cose", "encrypt0", "-k", keydir / "cc.key", keydir / "payload.bin", "-o", tmp_path / "e.cose",
               "--aad", "01") == 0
    assert encrypt0.decrypt((tmp_path / "e.cose").read_bytes(), _device_key(keydir / "cc.key"),
                            external_aad=b"\x01") == PAYLOAD


def test_public_exports(keydir, tmp_path):
    assert run("keys", "public", keydir / "es.key", "--format", "raw", "-o", tmp_path / "es.raw") == 0
    raw = (tmp_path / "es.raw").read_bytes()
    assert len(raw) == 65 and raw == _device_key(keydir / "es.pub").public_bytes()
    assert run("keys", "public", keydir / "ed.key", "--format", "pem", "-o", tmp_path / "ed.pem") == 0
    assert b"BEGIN PUBLIC KEY" in (tmp_path / "ed.pem").read_bytes()
    assert run("keys", "public", keydir / "hm.key") == 1  # symmetric: a clear error, exit code 1


def test_bad_input_exit_codes(keydir, tmp_path):
    (tmp_path / "junk").write_bytes(b"\xff\x00")
    assert run("keys", "info", tmp_path / "junk") == 1
    assert run("cose", "sign1", "-k", keydir / "es.pub", keydir / "payload.bin") == 1  # public key cannot sign
    with pytest.raises(SystemExit):  # a usage error (argparse), exit status 2
        run("keys", "generate", "ES384", "-o", tmp_path / "x")


@pytest.mark.parametrize("argv,message", [
    (["keys", "info", "{tmp}/missing.key"], "hourglass keys: cannot read COSE_Key {tmp}/missing.key"),
    (["keys", "info", "{tmp}/junk"], "hourglass keys: cannot read COSE_Key {tmp}/junk"),
    (["keys", "info", "{tmp}/number"], "hourglass keys: {tmp}/number is not a COSE_Key map"),
    (["keys", "public", "{keys}/hm.key"], "hourglass keys: a symmetric key has no public part"),
    (["cose", "sign1", "-k", "{keys}/es.pub", "{keys}/payload.bin"], "hourglass cose: signing needs a private key"),
    (["cose", "sign1", "-k", "{keys}/es.key", "{tmp}/missing.bin"], "hourglass cose: cannot read {tmp}/missing.bin"),
    (["cose", "verify", "-k", "{keys}/es.pub", "{tmp}/junk"], "hourglass cose: not a COSE message"),
    (["cose", "verify", "-k", "{keys}/es.pub", "{tmp}/tampered.cose"], "hourglass cose: signature does not verify"),
])
def test_cli_user_errors_are_one_line_and_exit_1(keydir, tmp_path, argv, message):
    import subprocess
    import sys

    (tmp_path / "junk").write_bytes(b"\x1c")  # a reserved CBOR initial byte
    (tmp_path / "number").write_bytes(b"\x01")  # CBOR, but not a map
    assert run("cose", "sign1", "-k", keydir / "es.key", keydir / "payload.bin", "-o", tmp_path / "ok.cose") == 0
    signed = bytearray((tmp_path / "ok.cose").read_bytes())
    signed[-1] ^= 1
    (tmp_path / "tampered.cose").write_bytes(bytes(signed))
    argv = [a.format(tmp=tmp_path, keys=keydir) for a in argv]
    proc = subprocess.run([sys.executable, "-m", "hourglass.cli", *argv], capture_output=True, text=True,
                          cwd=mpvm.REPO)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith(message.format(tmp=tmp_path, keys=keydir)), proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr


def test_algorithm_numbers_are_the_device_codes():
    """keys and cose take COSE algorithm numbers from lib/cose/cose/algs.py instead of declaring them again."""
    import ast

    assert Path(tool.algs.__file__).resolve() == mpvm.LIB / "cose" / "cose" / "algs.py"
    assert cose_tool.algs is tool.algs
    assert tool.ALG_NAMES["ESP256"] == -9 and tool.ALG_NAMES["HSS-LMS"] == -46 and tool.ALG_NAMES["A128KW"] == -3
    for module in (tool, cose_tool):
        tree = ast.parse(Path(module.__file__).read_text())
        assigned = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
                    if isinstance(t, ast.Name)}
        assert not assigned & {"ES256", "ESP256", "EDDSA", "ED25519", "HSS_LMS", "HMAC_256_64", "KTY_EC2"}


VM_VERIFY = r"""
import sys, json
from cose import sign1
from cose.key import CoseKey
v = json.loads(sys.stdin.readline())
h = bytes.fromhex
key = CoseKey.decode(h(v["pub"]))
ok = sign1.verify(h(v["msg"]), key, payload=h(v["payload"])) == h(v["payload"])
try:
    sign1.verify(h(v["msg"]), key, payload=h(v["payload"]) + b"x")
    bad = False
except ValueError:
    bad = True
print(json.dumps([ok, bad]))
"""


@pytest.mark.parametrize("name", ["es", "hss"])
def test_tool_signatures_verify_on_vm(keydir, name):
    out = keydir / f"vm-{name}.cose"
    assert run("cose", "sign1", "-k", keydir / f"{name}.key", keydir / "payload.bin", "--detached", "-o", out) == 0
    req = {"pub": (keydir / f"{name}.pub").read_bytes().hex(), "msg": out.read_bytes().hex(), "payload": PAYLOAD.hex()}
    proc = mpvm.run(["-c", VM_VERIFY], heap="192k", input=(json.dumps(req) + "\n").encode())
    assert proc.returncode == 0, proc.stdout.decode()[-2000:] + proc.stderr.decode()
    assert json.loads(proc.stdout.decode().strip().splitlines()[-1]) == [True, True]
