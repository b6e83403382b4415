"""`hourglass oscore`: a context pair made by the tool works at once: our OSCORE server on the MicroPython VM,
keyed from the device half (config.json's "oscore" member through oscore.config), answers `aiocoap-client
--credentials` keyed from the host half. Also: other config and credentials entries survive, nothing is
overwritten without --force, bad input is one line on stderr with exit 1, the secret file is private."""
from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hourglass import cli, mpvm

pytest.importorskip("aiocoap")
from hourglass.common import free_udp_port  # noqa: E402
from test_oscore_interop import stop, vm_env, wait_line  # noqa: E402

VM_SERVER = r'''
import sys, json, asyncio
from coap.udp import UDPTransport
from coap.transport import Params
from coap.server import Server
from oscore.config import context
from oscore.transform import Oscore, context_of
from store import FileStore

with open(sys.argv[2]) as f:
    cfg = json.load(f)
ctx = context(cfg["oscore"], store=FileStore(sys.argv[3]))
srv = Server(UDPTransport(("127.0.0.1", int(sys.argv[1])), Params()))
srv.transform = Oscore([ctx], require=("/",))
srv.route("/whoami", get=lambda r: "hello %s, wifi %s" % (context_of(r).recipient_id.hex(), cfg["wifi"]["ssid"]))
srv.start()


async def main():
    print("READY")
    await asyncio.sleep(120)

asyncio.run(main())
'''


def run(*argv) -> int:
    return cli.main([str(a) for a in argv])


def test_pair_talks_to_the_vm_server_at_once(tmp_path):
    config = tmp_path / "fs" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"wifi": {"ssid": "lab"}, "coap": {"port": 5683}}))
    port = free_udp_port()
    uri = f"coap://127.0.0.1:{port}"
    assert run("oscore", "--device-config", config, "--host-dir", tmp_path / "hosts" / "board1", "--uri", uri,
               "--random-id-context") == 0
    cfg = json.loads(config.read_text())
    assert cfg["wifi"] == {"ssid": "lab"} and cfg["coap"] == {"port": 5683}, "other members are kept"
    dev = cfg["oscore"]
    assert len(bytes.fromhex(dev["secret"])) == 16 and len(bytes.fromhex(dev["id_context"])) == 8
    creds = tmp_path / "hosts" / "credentials.json"
    assert json.loads(creds.read_text()) == {f"{uri}/*": {"oscore": {"basedir": str(tmp_path / "hosts" / "board1")
                                                                     + "/"}}}
    assert stat.S_IMODE((tmp_path / "hosts" / "board1" / "secret.json").stat().st_mode) == 0o600

    script = tmp_path / "server.py"
    script.write_text(VM_SERVER)
    proc = subprocess.Popen([mpvm.micropython_binary(), "-X", "heapsize=128k", str(script), str(port), str(config),
                             str(tmp_path / "state")], cwd=mpvm.REPO, env=vm_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        wait_line(proc, b"READY")
        client = Path(sys.executable).parent / "aiocoap-client"
        p = subprocess.run([str(client), "--credentials", str(creds), f"{uri}/whoami"], capture_output=True,
                           timeout=60)
        assert p.stdout.strip() == b"hello 02, wifi lab", p.stdout + p.stderr
        # The same request without the credentials is refused: the keys, not the address, open the board.
        p = subprocess.run([str(client), f"{uri}/whoami"], capture_output=True, timeout=60)
        assert b"hello" not in p.stdout and b"OSCORE required" in p.stdout + p.stderr, p.stdout + p.stderr
    finally:
        out = stop(proc)
    assert "Traceback" not in out, out


def test_refuses_to_overwrite_and_merges_credentials(tmp_path, capsys):
    config = tmp_path / "config.json"
    creds = tmp_path / "creds.json"
    creds.write_text(json.dumps({"coap://other/*": {"oscore": {"basedir": "/x/"}}}))
    assert run("oscore", "--device-config", config, "--host-dir", tmp_path / "a", "--uri", "coap://10.0.0.5",
               "--credentials", creds, "--device-id", "", "--host-id", "0a0b") == 0
    first = json.loads(config.read_text())["oscore"]
    assert first["sender_id"] == "" and first["recipient_id"] == "0a0b" and "id_context" not in first
    settings = json.loads((tmp_path / "a" / "settings.json").read_text())
    assert settings == {"sender-id_hex": "0a0b", "recipient-id_hex": "", "algorithm": "AES-CCM-16-64-128"}
    assert set(json.loads(creds.read_text())) == {"coap://other/*", "coap://10.0.0.5/*"}
    capsys.readouterr()
    # A second run would strand the board with the old keys: refused, one line, exit 1, nothing changed.
    assert run("oscore", "--device-config", config, "--host-dir", tmp_path / "b") == 1
    err = capsys.readouterr().err
    assert err.startswith("hourglass oscore: ") and "--force" in err and err.count("\n") == 1
    (tmp_path / "a" / "sequence.json").write_text('{"next-to-send": 40, "received": "unknown"}')
    assert run("oscore", "--device-config", tmp_path / "other.json", "--host-dir", tmp_path / "a") == 1
    assert json.loads(config.read_text())["oscore"] == first
    assert run("oscore", "--device-config", config, "--host-dir", tmp_path / "a", "--force") == 0
    assert json.loads(config.read_text())["oscore"]["secret"] != first["secret"]
    assert not (tmp_path / "a" / "sequence.json").exists(), "the old keys' counters go with them"


@pytest.mark.parametrize("argv, message", [
    (["--device-id", "zz"], "--device-id must be hex"),
    (["--host-id", "0102030405060708"], "--host-id is 8 bytes, at most 7"),
    (["--device-id", "05", "--host-id", "05"], "must differ"),
    (["--uri", "http://x"], "must be a coap:// URI"),
    (["--id-context", "01", "--random-id-context"], "not both"),
])
def test_bad_input_is_one_line(tmp_path, capsys, argv, message):
    assert run("oscore", "--device-config", tmp_path / "c.json", "--host-dir", tmp_path / "h", *argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("hourglass oscore: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "c.json").exists() and not (tmp_path / "h").exists()


def test_bad_existing_config_is_a_user_error(tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text("[1, 2")
    assert run("oscore", "--device-config", config, "--host-dir", tmp_path / "h") == 1
    assert "not readable JSON" in capsys.readouterr().err
    assert config.read_text() == "[1, 2"
