# EAP-NOOB peer (lib/eapnoob): one Initial + OOB + Completion, and one Reconnect per KeyingMode, per
# cryptosuite, replaying the RFC 9140 authors' transcripts against the peer with their keys injected (the
# server side is the transcript, so the figures are the peer's alone). The store is in RAM: flash writes are
# the board's, not the protocol's.
# Every module the runs load is imported first (compiled from source while the heap is empty), so the figures
# are the protocol's, not the compiler's. 192k only to hold that source-compiled code (~60 KB on the VM, less as
# .mpy); the peak heap reported is beyond it, and a full flow runs at 128k in host_tests/test_eapnoob_vm.py.
MP_HEAP = "192k"
from crypto import p256, x25519  # noqa: F401,E402
from eapnoob import bootstrap, reconnect, wire  # noqa: F401,E402
from eapnoob.peer import Peer  # noqa: E402

from case_eapnoob_vectors import PRIV, load  # noqa: E402


class RamStore:
    def __init__(self):
        self.data = {}

    def get(self, name):
        return self.data.get(name)

    def put(self, name, value):
        self.data[name] = bytes(value)

    def delete(self, name):
        self.data.pop(name, None)


class Script:
    def __init__(self, values):
        self.values = values
        self.i = 0

    def __call__(self, n):
        v = self.values[self.i]
        self.i += 1
        return v


def _fixture(name):
    """(conversations, rng values, peer info, Dirp, suites) from a transcript: each conversation is the list of
    EAP packets the server sends, and OOB text between them."""
    t = load(name)
    convs = []
    ident = 0
    msgs = []
    for kind, text in t["steps"]:
        if kind == "identity":
            convs.append([])
            ident += 1
            convs[-1].append(wire.build(wire.REQUEST, ident, wire.TYPE_IDENTITY))
        elif kind == "request":
            ident += 1
            convs[-1].append(wire.build(wire.REQUEST, ident, wire.TYPE_NOOB, text.encode()))
        elif kind == "oob":
            convs[-1].append(text)
        if kind == "response":
            msgs.append(wire.Message(text.encode()))
    cs = [m.int(b"Cryptosuitep", 1, 2) for m in msgs if m.has(b"Cryptosuitep")]
    type8 = [m for m in msgs if m.has(b"Np2")][0]
    rng = [PRIV[cs[0]][1], [m for m in msgs if m.has(b"Np")][0].b64(b"Np", 32)]
    if type8.has(b"PKp2") and type8.raw(b"PKp2") != b'""':
        rng.append(PRIV[cs[1]][1])
    rng.append(type8.b64(b"Np2", 32))
    return convs, rng, [m for m in msgs if m.has(b"PeerInfo")][0].raw(b"PeerInfo"), cs


def _talk(peer, packets):
    for p in packets:
        if isinstance(p, str):
            # the OOB step follows this conversation's Failure
            peer.receive(wire.build(wire.FAILURE, 0))
            if not peer.accept_oob(p):
                raise AssertionError("OOB refused")
        elif peer.receive(p, 1000) is None:
            raise AssertionError("no response")


def _bootstrap(name):
    convs, rng, info, cs = _fixture(name)

    def op():
        peer = Peer(RamStore(), info, suites=(cs[0],), dirs=2, nai="noob@eap-noob.arpa", rng=Script(rng),
                    reconnect_mac_nai=False)
        for packets in convs[:3]:
            _talk(peer, packets)
        if peer.state != 4:
            raise AssertionError("not registered")
    return op


def _reconnect(name):
    convs, rng, info, cs = _fixture(name)
    store = RamStore()
    peer = Peer(store, info, suites=(cs[0],), dirs=2, nai="noob@eap-noob.arpa", rng=Script(rng),
                reconnect_mac_nai=False)
    for packets in convs[:3]:
        _talk(peer, packets)
    registered = dict(store.data)

    def op():
        store.data = dict(registered)
        again = Peer(store, info, suites=(cs[1],), dirs=2, nai="noob@eap-noob.arpa", rng=Script(rng[2:]),
                     reconnect_mac_nai=False)
        _talk(again, convs[3])
        if again.keys is None:
            raise AssertionError("no keys")
    return op


def bench_bootstrap_cs1():
    """Initial + Waiting + OOB input + Completion, X25519."""
    return _bootstrap("cs1_1_0")


def bench_bootstrap_cs2():
    """Initial + Waiting + OOB input + Completion, P-256."""
    return _bootstrap("cs2_2_0")


def bench_reconnect_km1_cs1():
    return _reconnect("cs1_1_0")


def bench_reconnect_km2_cs1():
    return _reconnect("cs1_1_1")


def bench_reconnect_km3_cs1_to_cs2():
    return _reconnect("cs1_2_1")


def bench_reconnect_km1_cs2():
    return _reconnect("cs2_2_0")


def bench_reconnect_km2_cs2():
    return _reconnect("cs2_2_1")


def bench_reconnect_km3_cs2_to_cs1():
    return _reconnect("cs2_1_1")
