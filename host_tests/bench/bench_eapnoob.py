# EAP-NOOB peer (lib/eapnoob): one Initial + OOB + Completion, and one Reconnect per KeyingMode, per
# cryptosuite, replaying the RFC 9140 authors' transcripts against the peer with their keys injected (the
# server side is the transcript, so the figures are the peer's alone). The store is in RAM: flash writes are
# the board's, not the protocol's.
# bench_coapeap_*: the same bootstrap and Reconnect carried over CoAP-EAP (lib/coapeap) on a real Endpoint and
# real OSCORE: the device announces itself, each EAP request arrives as a CoAP POST to the resource the device
# named, and EAP-Success comes through the OSCORE context both sides derive from the MSK. The controller's side
# is a stand-in here (CON POSTs with a 2-byte token and Content-Format 269, as aiocoap sends them, and
# lib/oscore's client role for EAP-Success), so its share of the figures is the protect/unprotect of one
# request; host_coapeap.py reports the wire bytes per exchange of the same replay.
# Every module the runs load is imported first (compiled from source while the heap is empty), so the figures
# are the protocol's, not the compiler's. 384k only to hold that source-compiled code (~110 KB on the VM, less as
# .mpy); the peak heap reported is beyond it, and a full flow runs at 128k in host_tests/test_eapnoob_vm.py.
MP_HEAP = "384k"
import cbor  # noqa: E402
from coap.endpoint import Endpoint  # noqa: E402
from coap.msg import Message, decode  # noqa: E402
from coap.transport import Params  # noqa: E402
from coapeap import oscore_secrets, split  # noqa: E402
from coapeap.device import Device  # noqa: E402
from crypto import p256, x25519  # noqa: F401,E402
from eapnoob import bootstrap, conversation, keys, reconnect, wire  # noqa: F401,E402
from eapnoob.peer import Peer  # noqa: E402
import coapeap.exchange  # noqa: F401,E402
from oscore import transform  # noqa: F401,E402
from oscore.client import protect_request, unprotect_response  # noqa: E402
from oscore import Context  # noqa: E402

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


# ---- the same over CoAP-EAP --------------------------------------------------------------------------------

CTRL = ("192.0.2.1", 5683)
SUITES = [0]  # the cipher suites the stand-in controller offers (lib/oscore has suite 0)
LIFETIME = 3600


class Wire:
    """The device's transport: keeps what the endpoint sends (the stand-in controller reads it)."""

    def __init__(self):
        self.params = Params()
        self.max_message_size = 1280
        self.sent = []

    def send(self, data, remote):
        self.sent.append(bytes(data))

    def close(self):
        pass


class Controller:
    """Drives a Device as the CoAP-EAP controller does, from the EAP packets of one transcript conversation.
    count(exchange, n): called with the size of every datagram either way."""

    def __init__(self, count=None):
        self.mid = 0
        self.count = count or (lambda exchange, n: None)
        self.exchange = ""

    def _send(self, ep, data):
        self.count(self.exchange, len(data))
        ep.t.sent = []
        ep.receive(data, CTRL)
        out = ep.t.sent[-1]
        self.count(self.exchange, len(out))
        return decode(out)

    def post(self, ep, path, payload):
        self.mid += 1
        m = Message(0, 2, self.mid, self.mid.to_bytes(2, "big"), payload).set_path(path)
        m.add(12, b"\x01\x0d")  # Content-Format 269, application/coap-eap
        return self._send(ep, m.encode())

    def converse(self, ep, dev, packets, exchange, success=False):
        """One conversation: the trigger, the EAP requests, then EAP-Failure (or -Success through OSCORE)."""
        self.exchange = exchange
        dev.announce()
        trigger = ep.t.sent[-1]
        self.count(exchange, len(trigger))
        path = bytes(decode(trigger).payload).decode()
        rid_c = b"\x07"
        first = True
        oob = None
        for p in packets:
            if isinstance(p, str):
                oob = p
                continue
            payload = p + cbor.dumps({1: SUITES, 2: rid_c}) if first else p
            r = self.post(ep, path, payload)
            if r.code != 65:
                raise AssertionError("the device answered %d" % r.code)
            eap, info = split(bytes(r.payload))
            if first:
                rid_i = info[3]
                cs = cbor.dumps(SUITES) + cbor.dumps(info[1])
                first = False
            path = "/" + "/".join(bytes(v).decode() for v in r.all(8))
        if not success:
            if self.post(ep, path, wire.build(wire.FAILURE, 0)).code != 68:
                raise AssertionError("EAP-Failure refused")
            if oob is not None and not dev.peer.accept_oob(oob):  # the user's OOB step, on the console
                raise AssertionError("OOB refused")
            return
        secret, salt = oscore_secrets(dev.peer.keys[0], cs)
        ctrl = Context(secret, salt, rid_i, rid_c)
        inner = Message(0, 2, 0, b"", wire.build(wire.SUCCESS, 0) + cbor.dumps({4: LIFETIME})).set_path(path)
        outer, binding = protect_request(ctrl, inner)
        self.mid += 1
        outer.type, outer.mid, outer.token = 0, self.mid, self.mid.to_bytes(2, "big")
        resp = unprotect_response(binding, self._send(ep, outer.encode()))
        if resp.code != 68 or not dev.registered:
            raise AssertionError("EAP-Success not taken")


class KeepLoaded(Peer):
    """The peer without unload(): a registered device drops the conversation's modules, which the next run
    would compile again from source here (on a board they are .mpy), so they stay loaded for the figures."""
    unload = None


class KeepLoadedDevice(Device):
    """The device without unload(), for the same reason (coapeap.exchange)."""

    def unload(self):
        pass


class Bench:
    """One endpoint and one stand-in controller for all runs (a device's endpoint exists before it bootstraps:
    its buffers and dedup cache are not the bootstrap's), and the transcript read once."""

    def __init__(self, name, count=None):
        self.fixture = _fixture(name)
        self.ep = Endpoint(Wire())
        self.ctrl = Controller(count)

    def device(self, peer_store, dev_store, suite, rng):
        peer = KeepLoaded(peer_store, self.fixture[2], suites=(suite,), dirs=2, nai="noob@eap-noob.arpa", rng=rng,
                          reconnect_mac_nai=False)
        return KeepLoadedDevice(self.ep, peer, CTRL, dev_store, require=("/app/",))

    def run_bootstrap(self):
        """Initial + Waiting + OOB input + Completion over CoAP-EAP: (peer store, device store) once registered."""
        convs, rng, info, cs = self.fixture
        stores = (RamStore(), RamStore())
        dev = self.device(stores[0], stores[1], cs[0], Script(rng))
        for i, packets in enumerate(convs[:3]):
            self.ctrl.converse(self.ep, dev, packets, EXCHANGES[i], success=i == 2)
        return stores

    def run_reconnect(self, stores):
        """The Reconnect from the registered stores (the device boots, restores its session, then re-keys)."""
        convs, rng, info, cs = self.fixture
        dev = self.device(stores[0], stores[1], cs[1], Script(rng[2:]))
        if not dev.registered:
            raise AssertionError("no session to re-key")
        self.ctrl.converse(self.ep, dev, convs[3], "Reconnect", success=True)


EXCHANGES = ("Initial", "Waiting", "Completion")


def _bench_coapeap_bootstrap(name):
    b = Bench(name)
    b.run_bootstrap()  # the endpoint's first use (its dedup cache, the server role) outside the figures
    return b.run_bootstrap


def _bench_coapeap_reconnect(name):
    b = Bench(name)
    registered = b.run_bootstrap()
    snapshot = (dict(registered[0].data), dict(registered[1].data))

    def op():
        stores = (RamStore(), RamStore())
        stores[0].data, stores[1].data = dict(snapshot[0]), dict(snapshot[1])
        b.run_reconnect(stores)
    return op


def bench_coapeap_bootstrap_cs1():
    """Initial + Waiting + OOB input + Completion over CoAP-EAP, X25519, ending with the OSCORE EAP-Success."""
    return _bench_coapeap_bootstrap("cs1_1_0")


def bench_coapeap_bootstrap_cs2():
    """Initial + Waiting + OOB input + Completion over CoAP-EAP, P-256, ending with the OSCORE EAP-Success."""
    return _bench_coapeap_bootstrap("cs2_2_0")


def bench_coapeap_reconnect_km1_cs1():
    return _bench_coapeap_reconnect("cs1_1_0")


def bench_coapeap_reconnect_km2_cs2():
    return _bench_coapeap_reconnect("cs2_2_1")
