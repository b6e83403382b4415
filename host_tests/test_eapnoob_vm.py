"""Our EAP-NOOB peer on the MicroPython VM (-X heapsize=128k) against our server core on CPython: each EAP packet
crosses the process boundary as a hex line, and the VM is restarted (a reboot, the state read back from its
FileStore) between exchanges."""
from __future__ import annotations

import os
import subprocess

import pytest
from test_eapnoob_server import SERVER_INFO, _flip_mac, run

from hourglass import mpvm
from hourglass import noob_server as ns

DRIVER = """
import sys, gc, binascii
from eapnoob.peer import Peer
from store import FileStore
peer = Peer(FileStore(sys.argv[1]), b'{"Type":"sensor","Make":"Acme","Serial":"HG-1"}',
            suites=tuple(int(c) for c in sys.argv[3]), dirs=int(sys.argv[2]))
while True:
    line = sys.stdin.readline()
    if not line:
        break
    words = line.strip().split(" ", 2)
    cmd = words[0]
    if cmd == "R":
        r = peer.receive(binascii.unhexlify(words[2] if len(words) > 2 else ""), int(words[1]))
        out = binascii.hexlify(r).decode() if r else "-"
    elif cmd == "O":
        out = peer.oob_message(int(words[1])) or "-"
    elif cmd == "E":
        out = "1" if peer.accept_oob(words[1]) else "0"
    elif cmd == "S":
        out = "%d %s" % (peer.state, peer.peer_id)
    elif cmd == "K":
        out = binascii.hexlify(peer.keys[0]).decode() if peer.keys else "-"
    elif cmd == "X":
        peer.rekey()
        out = "ok"
    elif cmd == "H":
        gc.collect()
        out = "%d" % gc.mem_alloc()
    elif cmd == "U":
        peer.unload()
        out = "ok"
    elif cmd == "M":
        out = " ".join(sorted(m for m in sys.modules if m.startswith(("eapnoob", "crypto.x25519", "crypto.p256"))))
    print(out)
"""


class VmPeer:
    """The device peer in a MicroPython VM process, driven line by line."""

    def __init__(self, tmp_path, dirs, suites, heap="128k"):
        self.args = (str(tmp_path / "peer-state"),  # not "store": the script's folder is on sys.path
                     str(dirs), "".join(map(str, suites)))
        self.driver = tmp_path / "noob_driver.py"
        self.driver.write_text(DRIVER)
        self.heap = heap
        self.proc = None
        self.boot()

    def boot(self):
        self.close()
        env = dict(os.environ, MICROPYPATH=":".join([".frozen"] + mpvm.device_path()))
        self.proc = subprocess.Popen([mpvm.micropython_binary(), "-X", f"heapsize={self.heap}", str(self.driver),
                                      *self.args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                     cwd=mpvm.REPO, text=True)

    def close(self):
        if self.proc:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
            self.proc = None

    def ask(self, *words):
        self.proc.stdin.write(" ".join(words) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the VM peer died"
        if line.startswith("Traceback"):
            raise AssertionError("the VM peer failed:\n" + line + self.proc.stdout.read())
        return line.strip()

    def receive(self, pkt, now=0):
        out = self.ask("R", str(now), pkt.hex())
        return None if out == "-" else bytes.fromhex(out)

    def oob_message(self, now):
        out = self.ask("O", str(now))
        return None if out == "-" else out

    def accept_oob(self, text):
        return self.ask("E", text) == "1"

    @property
    def state(self):
        return int(self.ask("S").split()[0])

    @property
    def peer_id(self):
        return self.ask("S").split()[1]

    @property
    def msk(self):
        out = self.ask("K")
        return None if out == "-" else bytes.fromhex(out)

    def rekey(self):
        self.ask("X")

    def heap_alloc(self):
        return int(self.ask("H"))

    def unload(self):
        self.ask("U")

    def modules(self):
        return set(self.ask("M").split())


@pytest.mark.parametrize("cs,direction", [(1, 1), (2, 2)])
def test_vm_peer_full_flow(tmp_path, cs, direction):
    server = ns.NoobServer(SERVER_INFO, cryptosuites=(cs,), dirs=direction, keying_mode=1)
    peer = VmPeer(tmp_path, direction, (cs, 3 - cs))
    try:
        assert not run(server, peer).success and peer.state == 1
        peer.boot()
        assert run(server, peer).exchange == "waiting"
        if direction == 1:
            assert server.accept_oob(peer.oob_message(0))
        else:
            good = server.make_oob(peer.peer_id)
            assert not peer.accept_oob(good.replace("&H=", "&H=" + "A" * 21 + "x&y="))  # a wrong Hoob
            assert peer.accept_oob(good)
        peer.boot()
        assert peer.state == (1 if direction == 1 else 2)
        conv = run(server, peer)
        assert conv.success and peer.state == 4 and peer.msk == conv.keys[0]
        for km in (1, 2):
            server.keying_mode = km
            peer.boot()
            peer.rekey()
            conv = run(server, peer)
            assert conv.success and conv.s["km"] == km and peer.msk == conv.keys[0]
        server.cryptosuites = (3 - cs,)
        peer.boot()
        conv = run(server, peer)
        assert conv.success and conv.s["km"] == 3 and peer.msk == conv.keys[0]
        assert server.registry.get(peer.peer_id).cryptosuitep == 3 - cs
    finally:
        peer.close()


def test_vm_peer_refuses_a_tampered_mac_and_hostile_packets(tmp_path):
    server = ns.NoobServer(SERVER_INFO, cryptosuites=(1,), dirs=2)
    peer = VmPeer(tmp_path, 2, (1,))
    try:
        run(server, peer)
        assert peer.accept_oob(server.make_oob(peer.peer_id))
        conv = run(server, peer, tamper=_flip_mac(b"MACs"))
        assert conv.error == (4001, "MACs verification failed", False) and peer.state == 2
        for pkt in (b"", b"\x01\x01\x00\x09\x38{", b"\x01\x02\x00\x0a\x38[[[[[", b"\x01\x03\xff\xff\x38",
                    bytes((1, 4, 0, 7, 56)) + b'{"', bytes((1, 5, 0, 12, 56)) + b'{"Type":1e9}'):
            resp = peer.receive(pkt)
            assert resp is None or resp[0] == 2
        peer.boot()
        assert peer.state == 2
        assert run(server, peer).success and peer.state == 4
    finally:
        peer.close()


# What a registered device holds of EAP-NOOB: the small Peer over its stored record; the exchanges, the field table,
# the error codes, the strict JSON reader, the KDF and the curves load with the first EAP packet and go again with
# unload().
REGISTERED_MODULES = {"eapnoob", "eapnoob.peer"}


def test_vm_registered_peer_loads_no_bootstrap_code_until_it_rekeys(tmp_path):
    server = ns.NoobServer(SERVER_INFO, cryptosuites=(1,), dirs=2, keying_mode=2)
    peer = VmPeer(tmp_path, 2, (1,))
    try:
        run(server, peer)
        assert peer.accept_oob(server.make_oob(peer.peer_id))
        assert run(server, peer).success and peer.state == 4
        peer.boot()
        assert peer.state == 4 and peer.oob_message(0) is None
        assert peer.modules() == REGISTERED_MODULES
        peer.rekey()
        conv = run(server, peer)  # KeyingMode 2: a fresh X25519 key pair, so the curve loads
        assert conv.success and peer.msk == conv.keys[0]
        assert {"eapnoob.conversation", "eapnoob.reconnect", "crypto.x25519"} <= peer.modules()
        peer.unload()
        assert peer.modules() == REGISTERED_MODULES
        assert peer.receive(bytes((3, 9, 0, 4))) is None and peer.modules() == REGISTERED_MODULES, \
            "EAP-Success after the unload (CoAP-EAP sends it last) loads nothing"
        peer.boot()
        assert peer.state == 4 and peer.modules() == REGISTERED_MODULES
    finally:
        peer.close()
