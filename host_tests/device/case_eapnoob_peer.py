# The EAP-NOOB peer state machine (lib/eapnoob/eapnoob/peer.py) on both runtimes: the authors' six transcripts
# replayed against it with their keys and nonces injected (a new Peer object, i.e. a reboot, before every
# exchange), then hostile packets, retransmissions, OOB retries and expiry.
import os

# 192k: compiling the peer's modules and P-256 from source (~50 KB of bytecode on the 64-bit VM) next to this
# file's transcripts does not fit 128k. Boards load .mpy; the peer's run-time heap is measured at 128k in
# host_tests/bench/bench_eapnoob.py. The modules are compiled first, before the heap fragments.
MP_HEAP = "256k"
from crypto import p256, x25519  # noqa: F401,E402
from eapnoob import bootstrap, reconnect  # noqa: F401,E402
from eapnoob.peer import Peer  # noqa: E402

import hgtest  # noqa: E402
from case_eapnoob_vectors import PRIV, load  # noqa: E402
from eapnoob import keys, wire  # noqa: E402
from eapnoob.errors import NoobError  # noqa: E402
from store import FileStore  # noqa: E402

ROOT = "build/test-eapnoob-" + hgtest.RUNTIME
PEER_INFO = b'{"Type":"sensor","Make":"Acme","Serial":"HG-1"}'


def fresh_store(sub):
    root = ROOT + "/" + sub
    try:
        for name in os.listdir(root):
            os.remove(root + "/" + name)
    except OSError:
        pass
    return FileStore(root)


class Script:
    """A random source that hands out the given values in order (the transcripts' keys and nonces)."""

    def __init__(self, values):
        self.values = list(values)

    def __call__(self, n):
        v = self.values.pop(0)
        assert len(v) == n, "the peer drew %d bytes where the script has %d" % (n, len(v))
        return v


def request(ident, body, typ=wire.TYPE_NOOB):
    return wire.build(wire.REQUEST, ident, typ, body)


def body_of(resp, typ=wire.TYPE_NOOB):
    code, _, t, data = wire.parse(resp)
    assert code == wire.RESPONSE and t == typ, (code, t)
    return bytes(data)


def run_transcript(name):
    t = load(name)
    steps = t["steps"]
    v = t["values"]
    msgs = [wire.Message(text.encode()) for kind, text in steps if kind != "identity" and kind != "oob"]
    cs = [m.int(b"Cryptosuitep", 1, 2) for m in msgs if m.has(b"Cryptosuitep")]
    np = [m for m in msgs if m.has(b"Np")][0].b64(b"Np", 32)
    type8 = [m for m in msgs if m.has(b"Np2")][0]
    script = [PRIV[cs[0]][1], np]
    if type8.raw(b"PKp2") != b'""' and type8.has(b"PKp2"):
        script.append(PRIV[cs[1]][1])
    script.append(type8.b64(b"Np2", 32))
    rng = Script(script)
    peer_info = [m for m in msgs if m.has(b"PeerInfo")][0].raw(b"PeerInfo")
    store = fresh_store(name)

    def boot(suite):
        # the transcripts' peer uses RFC 9140's original NAI, offers only Dirp 2, and its MACs2 input has ""
        # where the RFC puts the NAI
        return Peer(store, peer_info, suites=(suite,), dirs=2, nai="noob@eap-noob.arpa", rng=rng,
                    reconnect_mac_nai=False)

    peer = None
    ident = 0
    exchange = 0
    for i, (kind, text) in enumerate(steps):
        if kind == "identity":
            if peer is not None:
                assert peer.receive(wire.build(wire.SUCCESS if exchange == 3 else wire.FAILURE, ident)) is None
            exchange += 1
            peer = boot(cs[1] if exchange == 4 else cs[0])  # a reboot before every exchange
            ident += 1
            assert body_of(peer.receive(request(ident, b"", wire.TYPE_IDENTITY)), wire.TYPE_IDENTITY) == \
                text.encode()
        elif kind == "oob":
            assert peer.state == 1
            assert peer.accept_oob("https://device.local/oob?" + text)
            assert peer.state == 2
        elif kind == "request":
            ident += 1
            resp = peer.receive(request(ident, text.encode()), 1000)
            expected = steps[i + 1][1].encode()
            got = body_of(resp)
            if expected.startswith(b'{"Type":5,'):
                # we send RFC 9140's NoobId, H(["NoobId",Noob]); the transcripts the authors' variant
                expected = expected.replace(wire.b64e(keys.noob_ids(b"x3JlolaPciK4Wa6XlMJxtQ")[1]),
                                            wire.b64e(keys.noob_ids(b"x3JlolaPciK4Wa6XlMJxtQ")[0]))
            if expected.startswith(b'{"Type":8,'):
                # KeyingMode 1: RFC 9140 leaves PKp2 out where the authors' generator writes "PKp2":""
                expected = expected.replace(b',"PKp2":""', b"")
            assert got == expected, (got, expected)
            if expected.startswith(b'{"Type":6,'):
                assert peer.state == 4
                assert peer.keys[0] == hgtest.unhex(v["KDF_out[0:64] MSK"])
                assert peer.keys[3] == hgtest.unhex(v["KDF_out[192:224] MethodId"])
            if expected.startswith(b'{"Type":9,'):
                assert peer.state == 4
                assert peer.keys[0] == hgtest.unhex(v["Reconnect MSK"])
                assert peer.keys[1] == hgtest.unhex(v["Reconnect EMSK"])
    assert not rng.values
    again = boot(cs[1])
    assert again.state == 4 and again.peer_id == "07KRU6OgqX0HIeRFldnbSW"
    if v["KeyingMode"] == "3":
        assert again.rec[6] == hgtest.unhex(v["Kz2"]) and again.rec[7] == hgtest.unhex(v["Kz"])
    else:
        assert again.rec[6] == hgtest.unhex(v["Kz"]) and 7 not in again.rec


def test_transcript_cs1_1_0():
    run_transcript("cs1_1_0")


def test_transcript_cs1_1_1():
    run_transcript("cs1_1_1")


def test_transcript_cs1_2_1():
    run_transcript("cs1_2_1")


def test_transcript_cs2_1_1():
    run_transcript("cs2_1_1")


def test_transcript_cs2_2_0():
    run_transcript("cs2_2_0")


def test_transcript_cs2_2_1():
    run_transcript("cs2_2_1")


# ---- hostile input and the error codes (the cs1_1_0 transcript's messages as the valid baseline) ------------

_T = load("cs1_1_0")
_REQ = [text.encode() for kind, text in _T["steps"] if kind == "request"]
TYPE2 = _REQ[1]
TYPE3 = _REQ[2]
PID = b'"07KRU6OgqX0HIeRFldnbSW"'
TPI = [wire.Message(t.encode()) for k, t in _T["steps"] if k == "response"][1].raw(b"PeerInfo")
OOB = _T["values"]["OOB"]
_T = None
NP = wire.b64d("HIvB6g0n2btpxEcU7YXnWB-451ED6L6veQQd6ugiPFU", 32)  # the transcript's Np


def new_peer(sub, **kw):
    kw.setdefault("rng", Script([PRIV[1][1], NP] * 4))
    kw.setdefault("dirs", 2)  # the transcript's Dirp, so its OOB message and MACs fit
    return Peer(fresh_store(sub), TPI, **kw)


def error_code(resp):
    body = body_of(resp)
    m = wire.Message(body)
    assert m.int(b"Type", 0, 9) == 0, body
    return m.int(b"ErrorCode", 0, 9999)


def start(peer, ident=1):
    peer.receive(request(ident, b"", wire.TYPE_IDENTITY))
    return peer.receive(request(ident + 1, b'{"Type":1}'))


def to_waiting(peer):
    start(peer)
    peer.receive(request(3, TYPE2))
    body_of(peer.receive(request(4, TYPE3)))
    assert peer.state == 1


def test_malformed_eap_packets_are_discarded():
    peer = new_peer("eap")
    for pkt in (b"", b"\x01", b"\x01\x01\x00", b"\x01\x01\x00\x03", b"\x01\x01\x00\x09\x01", b"\x09\x01\x00\x04",
                b"\x01\x01\x00\x04", b"\x02\x01\x00\x05\x01", bytes((1, 1, 0x05, 0x10, 56)) + b"{" * 1300):
        assert peer.receive(pkt) is None, pkt
    assert peer.state == 0
    # octets past Length are padding (RFC 3748 section 4)
    resp = peer.receive(b"\x01\x07\x00\x05\x01padding")
    assert body_of(resp, wire.TYPE_IDENTITY) == b"@noob.eap.arpa", "RFC 9965's NAI by default"


def test_other_methods_get_a_nak_and_notifications_an_answer():
    peer = new_peer("nak")
    code, ident, typ, data = wire.parse(peer.receive(request(5, b"\x10" + bytes(16), 4)))  # MD5-Challenge
    assert (code, ident, typ, bytes(data)) == (wire.RESPONSE, 5, wire.TYPE_NAK, b"\x38")
    assert body_of(peer.receive(request(6, b"hello", wire.TYPE_NOTIFICATION)), wire.TYPE_NOTIFICATION) == b""


def _initial_error(sub, type2=TYPE2, type3=None, **kw):
    peer = new_peer(sub, **kw)
    start(peer)
    resp = peer.receive(request(3, type2))
    if type3 is not None:
        assert body_of(resp).startswith(b'{"Type":2,')
        resp = peer.receive(request(4, type3))
    code = error_code(resp)
    assert peer.state == 0 and peer.error[0] == code and peer.error[2]
    return code


def test_error_codes_in_the_initial_exchange():
    cases = [
        (b"{", 1002), (b'{"Type":2}', 1002), (b'{"Type":12}', 1003), (b'{"Type":"2"}', 1003),
        (TYPE2[:-1] + b',"Extra":1}', 1002), (TYPE2.replace(b'"Dirs":3', b'"Dirs":3,"Dirs":3'), 1002),
        (TYPE2.replace(b'"Name":"Example"', b'"Name":' + b"[" * 10 + b"]" * 10), 1002),
        (TYPE2.replace(b'"Name":"Example"', b'"Name":"\x01"'), 1002),
        (TYPE2.replace(b"}}", b"}"), 1002), (TYPE2 + b"x", 1002), (b'{"Type":4,"PeerId":' + PID + b"}", 1004),
        (TYPE2.replace(b'"Vers":[1]', b'"Vers":[2]'), 3001), (TYPE2.replace(b"[1,2]", b"[3]"), 3002),
        (TYPE2.replace(b"[1,2]", b"[1,1]"), 1003), (TYPE2.replace(b'"Dirs":3', b'"Dirs":4'), 1003),
        (TYPE2.replace(b'"Dirs":3', b'"Dirs":-1'), 1003),
        (TYPE2.replace(b'"Name":"Example"', b'"Name":"' + b"x" * 500 + b'"'), 5002),
        (TYPE2.replace(b'"PeerId":' + PID, b'"PeerId":7'), 1003),
        # escaped lone surrogates: once an uncaught UnicodeError on CPython, invalid UTF-8 on MicroPython
        (TYPE2.replace(b'"noob@example.org"', b'"noob@\\udc00.org"'), 1003),
        (TYPE2.replace(b'"Dirs":3', b'"Dirs":3,"\\ud800":1'), 1002),
        (TYPE2.replace(b'"Dirs":3', b'"Dirs":3,"\\u0044irs":3'), 1002),  # the same name spelt twice
    ]
    for i, (body, code) in enumerate(cases):
        assert _initial_error("init%d" % i, body) == code, (body[:60], code)
    assert _initial_error("dirs", TYPE2.replace(b'"Dirs":3', b'"Dirs":1'), dirs=2) == 3003


def test_error_codes_for_the_server_keys():
    pks = b'"x":"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"'
    cases = [
        (TYPE3.replace(PID, b'"07KRU6OgqX0HIeRFldnbSX"'), 2004),
        (TYPE3.replace(pks, b'"x":"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTm"'), 1005),
        (TYPE3.replace(pks, b'"x":"' + wire.b64e(bytes(32)) + b'"'), 1005),  # small order: Z is all zero
        (TYPE3.replace(b'"OKP"', b'"EC"'), 1005), (TYPE3.replace(b'"SleepTime":60', b'"SleepTime":3601'), 1003),
        (TYPE3.replace(b'"Ns":"PYO7', b'"Ns":"PYO'), 1003), (TYPE3.replace(b'"Ns":"PYO7', b'"Ns":"PYO+'), 1003),
    ]
    for i, (body, code) in enumerate(cases):
        assert _initial_error("keys%d" % i, TYPE2, body) == code, (body, code)
    p256_only = TYPE2.replace(b"[1,2]", b"[2]")
    off_curve = (b'{"Type":3,"PeerId":' + PID + b',"PKs":{"kty":"EC","crv":"P-256","x":"' + wire.b64e(bytes(32)) +
                 b'","y":"' + wire.b64e(bytes(31) + b"\x01") +
                 b'"},"Ns":"PYO7NVd9Af3BxEri1MI6hL8Ck49YxwCjSRPqlC1SPbw"}')
    assert _initial_error("offcurve", p256_only, off_curve, rng=Script([PRIV[2][1], NP])) == 1005


def test_unexpected_types_and_peer_ids_leave_the_state_alone():
    peer = new_peer("unexpected")
    to_waiting(peer)
    for body, code in ((b'{"Type":5,"PeerId":' + PID + b"}", 1004), (b'{"Type":3,"PeerId":' + PID + b"}", 1004),
                       (b'{"Type":4,"PeerId":"other"}', 2004), (b'{"Type":9,"PeerId":' + PID + b',"MACs2":""}', 1004)):
        start(peer, 10)
        assert error_code(peer.receive(request(12, body))) == code
        assert peer.state == 1
    assert error_code(peer.receive(request(13, TYPE3))) == 1004, "no conversation open: no Initial to continue"
    start(peer, 20)
    assert body_of(peer.receive(request(22, b'{"Type":4,"PeerId":' + PID + b',"SleepTime":7}'))) == \
        b'{"Type":4,"PeerId":' + PID + b"}"
    assert peer.sleep_time == 7 and peer.state == 1


def test_retransmitted_request_gets_the_same_response_once():
    peer = new_peer("retrans", rng=Script([PRIV[1][1], NP]))
    start(peer)
    peer.receive(request(3, TYPE2))
    first = peer.receive(request(4, TYPE3))
    assert peer.receive(request(4, TYPE3)) == first, "no second key pair drawn, the same answer"
    assert peer.state == 1


def test_memory_error_in_an_exchange_leaves_it_to_the_retransmission():
    # The CoAP edge drops a request whose handler ran out of memory, so its retransmission arrives as new: the
    # peer must still expect it (it used to answer 1004 Unexpected message type) and its state must be unchanged.
    class Flaky:
        def __init__(self):
            self.script = Script([PRIV[1][1], NP])
            self.fail = True

        def __call__(self, n):
            if self.fail:
                self.fail = False
                raise MemoryError
            return self.script(n)

    peer = new_peer("memerr", rng=Flaky())
    start(peer)
    peer.receive(request(3, TYPE2))
    hgtest.raises(MemoryError, peer.receive, request(4, TYPE3))
    assert peer.state == 0
    body = body_of(peer.receive(request(4, TYPE3)))
    assert wire.Message(body).int(b"Type", 0, 9) == 3, body
    assert peer.state == 1


def test_server_errors_move_the_state_as_the_rfc_says():
    peer = new_peer("srverr")
    start(peer)
    peer.receive(request(3, TYPE2))
    assert peer.receive(request(4, b'{"Type":0,"PeerId":' + PID + b',"ErrorCode":1005,"ErrorInfo":"x"}')) is None
    assert peer.state == 0 and peer.error == (1005, "x", False), "an error in the Initial Exchange: back to 0"
    to_waiting(peer)
    oob = OOB
    assert peer.accept_oob(oob) and peer.state == 2
    start(peer, 30)
    assert peer.receive(request(32, b'{"Type":0,"PeerId":' + PID + b',"ErrorCode":2003}')) is None
    assert peer.state == 1, "2003: OOB Reject, back to Waiting for OOB"
    assert Peer(peer.store, TPI).state == 1
    start(peer, 40)
    assert peer.receive(request(42, b'{"Type":0,"ErrorCode":2002}')) is None and peer.state == 1


def test_oob_text_forms():
    peer = new_peer("oobtext", oob_retries=100)
    to_waiting(peer)
    oob = OOB
    for bad in ("", "P=&N=&H=", oob + "&P=x", oob.replace("P=", "Q="), oob.replace("&H=", "&X="),
                oob.replace("H=rV8", "H=rV9"), oob + "x" * 600, oob.replace("N=x3J", "N=%G0x3J"), None):
        assert not peer.accept_oob(bad), bad
    assert peer.state == 1
    assert peer.accept_oob("  https://any.where/path?" + oob.replace("07KRU6OgqX0HIeRFldnbSW",
                                                                     "07KRU6OgqX0HIeRFld%6EbSW") + "\n")
    assert peer.state == 2


def test_peer_to_server_oob_url():
    peer = new_peer("oobout", dirs=1, rng=Script([PRIV[1][1], NP, bytes(range(16)), bytes(range(1, 17))]))
    to_waiting(peer)
    url = peer.oob_message(5000)
    assert url.startswith("https://noob.example.org/sendOOB?P=07KRU6OgqX0HIeRFldnbSW&N=AAECAwQFBgcICQoLDA0ODw&H=")
    assert Peer(peer.store, TPI, dirs=1).oob_message(5100) == url, "kept across a reboot"
    assert peer.oob_message(5000 + 1800) != url, "a new Noob every NoobTimeout / 2"
    assert not peer.accept_oob(url), "Dirp 1: the peer takes no OOB input"


def test_reboot_in_every_state_and_corrupt_storage():
    peer = new_peer("reboot")
    assert Peer(peer.store, TPI).state == 0
    to_waiting(peer)
    assert Peer(peer.store, TPI).state == 1
    assert peer.accept_oob(OOB)
    assert Peer(peer.store, TPI).state == 2
    start(peer, 50)
    assert body_of(peer.receive(request(52, _REQ[6]))).startswith(b'{"Type":5,')
    assert body_of(peer.receive(request(53, _REQ[7]))).startswith(b'{"Type":6,')
    assert Peer(peer.store, TPI).state == 4
    peer.rekey()
    again = Peer(peer.store, TPI)
    assert again.state == 3 and again.peer_id == "07KRU6OgqX0HIeRFldnbSW"
    assert again.identity() == "noob@example.org"
    path = peer.store.root + "/eapnoob"
    with open(path, "rb") as f:
        blob = bytearray(f.read())
    blob[10] ^= 0xFF
    with open(path, "wb") as f:
        f.write(blob)
    assert Peer(peer.store, TPI).state == 0, "unreadable storage is a memory failure: Unregistered"


def test_peer_info_is_checked_before_an_initial_exchange_sends_it():
    for bad, code in ((b"[1]", 1002), (b"{", 1002), (b'{"a":1,"a":2}', 1002), (b'{"x":"' + b"y" * 500 + b'"}', 1003)):
        assert hgtest.raises(NoobError, Peer, fresh_store("info"), bad).code == code, bad
    # A registered device sends no PeerInfo until it starts over, so its boot leaves the JSON reader unloaded;
    # a reset (back to the Initial Exchange) checks it first and keeps the association if it is bad.
    store = fresh_store("info4")
    store.put("eapnoob", bytes((0, 0, 1)) + b"4" + bytes((1, 0, len(PID))) + PID)
    peer = Peer(store, b"[1]")
    assert peer.state == 4 and peer.peer_id == "07KRU6OgqX0HIeRFldnbSW"
    hgtest.raises(NoobError, peer.reset)
    assert Peer(store, TPI).state == 4
    peer = Peer(store, TPI)
    peer.reset()
    assert peer.state == 0 and Peer(store, TPI).state == 0


class _NoRoomForQr:
    """eapnoob.qr as a heap too full for it: making the code raises MemoryError."""

    @staticmethod
    def text(url):
        raise MemoryError("injected")


def test_console_shows_the_url_when_the_qr_encoder_runs_out_of_memory():
    # At 176k on the ESP32 virtual board the QR encoder ran out of memory in Console.show(), which then showed
    # nothing (and never again: the URL counted as shown), so the OOB step could not be done from the console.
    import sys
    import eapnoob
    from eapnoob.console import Console
    peer = new_peer("oobnoroom", dirs=1, rng=Script([PRIV[1][1], NP, bytes(range(16)), bytes(range(1, 17))]))
    to_waiting(peer)
    shown = []
    saved = sys.modules.get("eapnoob.qr"), eapnoob.__dict__.get("qr")
    sys.modules["eapnoob.qr"] = eapnoob.qr = _NoRoomForQr
    try:
        url = Console(peer, display=lambda u, lines: shown.append((u, list(lines)))).show(5000)
    finally:
        if saved[0] is None:
            sys.modules.pop("eapnoob.qr", None)
        else:
            sys.modules["eapnoob.qr"] = saved[0]
        if saved[1] is None:
            del eapnoob.qr
        else:
            eapnoob.qr = saved[1]
    assert url and shown == [(url, [])], shown
