"""The EAP-NOOB server core (hourglass.noob_server, on `cryptography`) against the RFC 9140 authors' transcripts,
and against our device peer (lib/eapnoob) on CPython: full Initial + OOB + Completion + Reconnect flows in both
OOB directions and both cryptosuites, and the failures the RFC names, with the error code each one produces."""
from __future__ import annotations

import pytest
from case_eapnoob_vectors import FILES, PRIV, load

from eapnoob import wire
from eapnoob.peer import Peer
from hourglass import noob_server as ns
from store import FileStore

SERVER_INFO = '{"Type":"hourglass","ServerName":"Test","ServerURL":"https://noob.example/oob"}'
PEER_INFO = b'{"Type":"sensor","Make":"Acme","Serial":"HG-1"}'


class Script:
    def __init__(self, values):
        self.values = list(values)

    def __call__(self, n):
        if n == 1:  # the EAP Identifier's random start
            return b"\x00"
        v = self.values.pop(0)
        assert len(v) == n
        return v


class Clock:
    def __init__(self, t=1_000_000.0):
        self.t = t

    def __call__(self):
        return self.t


# ---- the transcripts, server side ----------------------------------------------------------------------

def _eap_body(pkt):
    assert pkt[0] == ns.REQUEST and pkt[4] == ns.TYPE_NOOB
    return pkt[5:].decode()


@pytest.mark.parametrize("name", FILES)
def test_server_reproduces_transcript(name):
    t = load(name)
    steps, v = t["steps"], t["values"]
    msgs = [wire.Message(text.encode()) for kind, text in steps if kind in ("request", "response")]
    cs = [m.int(b"Cryptosuitep", 1, 2) for m in msgs if m.has(b"Cryptosuitep")]
    req8 = [m for m in msgs if m.has(b"Ns2")][0]
    script = [PRIV[cs[0]][0], [m for m in msgs if m.has(b"Ns")][0].b64(b"Ns", 32),
              wire.b64d(v["OOB"].split("&")[1][2:], 16)]
    km = int(v["KeyingMode"])
    if km > 1:
        script.append(PRIV[cs[1]][0])
    script.append(req8.b64(b"Ns2", 32))
    server_info = msgs[2].raw(b"ServerInfo").decode()
    server = ns.NoobServer(server_info, new_nai="noob@example.org", keying_mode=min(km, 2), rng=Script(script),
                           new_peer_id=lambda: "07KRU6OgqX0HIeRFldnbSW", reconnect_mac_nai=False)
    conv = None
    out = []
    exchange = 0
    for i, (kind, text) in enumerate(steps):
        if kind == "identity":
            if conv is not None:
                assert conv.done and conv.success == (exchange == 3)
                assert out[-1][0] == (ns.SUCCESS if exchange == 3 else ns.FAILURE)
            exchange += 1
            if exchange == 4:
                server.cryptosuites = (1, 2)
            conv = server.conversation()
            first = conv.start()
            out = conv.receive(bytes((ns.RESPONSE, first[1], 0, 5 + len(text), 1)) + text.encode())
        elif kind == "oob":
            assert server.make_oob("07KRU6OgqX0HIeRFldnbSW") == text
        elif kind == "request":
            expected = text
            if km == 1 and text.startswith('{"Type":8,'):
                expected = text.replace(',"PKs2":""', "")  # RFC 9140: left out in KeyingMode 1
            assert len(out) == 1 and _eap_body(out[0]) == expected
        else:
            body = text.encode()
            out = conv.receive(bytes((ns.RESPONSE, out[0][1], 0, 5 + len(body), ns.TYPE_NOOB)) + body)
    assert conv.success
    assert conv.keys[0] == bytes.fromhex(v["Reconnect MSK"])
    assoc = server.registry.get("07KRU6OgqX0HIeRFldnbSW")
    assert assoc.state == ns.REGISTERED
    assert assoc.kz == bytes.fromhex(v["Kz2"] if km == 3 else v["Kz"])


# ---- our server and our peer ---------------------------------------------------------------------------

def run(server, peer, now=0, tamper=None):
    """One EAP conversation; tamper(pkt, to_peer) may rewrite packets in flight. Returns the conversation."""
    conv = server.conversation()
    packets = [conv.start()]
    while packets:
        nxt = []
        for pkt in packets:
            if tamper:
                pkt = tamper(pkt, True)
            resp = peer.receive(pkt, now)
            if resp is not None:
                if tamper:
                    resp = tamper(resp, False)
                nxt = conv.receive(resp)
        packets = nxt
    assert conv.done
    return conv


def make_peer(tmp_path, **kw):
    kw.setdefault("dirs", 3)
    return Peer(FileStore(str(tmp_path / "peer")), PEER_INFO, **kw)


def reboot(peer, tmp_path):
    return Peer(peer.store, peer.peer_info, suites=peer.suites, dirs=peer.dirs, noob_timeout=peer.noob_timeout,
                oob_retries=peer.oob_retries)


@pytest.mark.parametrize("cs", [1, 2])
@pytest.mark.parametrize("direction", [1, 2])
def test_full_flow(tmp_path, cs, direction):
    clock = Clock()
    server = ns.NoobServer(SERVER_INFO, cryptosuites=(cs,), dirs=direction, clock=clock, keying_mode=1)
    peer = make_peer(tmp_path, suites=(cs,))
    conv = run(server, peer)
    assert not conv.success and peer.state == 1 and server.registry.get(peer.peer_id).state == 1
    assert peer.sleep_time == 60
    conv = run(server, peer)  # Waiting
    assert conv.exchange == "waiting" and not conv.success and peer.state == 1
    if direction == 1:
        url = peer.oob_message(0)
        assert url.startswith("https://noob.example/oob?P=" + peer.peer_id + "&N=")
        assert server.accept_oob(url)
        assert server.registry.get(peer.peer_id).state == 2
    else:
        assert peer.oob_message(0) is None
        assert peer.accept_oob(server.make_oob(peer.peer_id))
        assert peer.state == 2
    peer = reboot(peer, tmp_path)
    conv = run(server, peer)  # Completion
    assert conv.success and conv.exchange == "completion"
    assert peer.state == 4 and peer.keys == conv.keys
    assert server.registry.get(peer.peer_id).state == 4
    for km in (1, 2):
        server.keying_mode = km
        peer = reboot(peer, tmp_path)
        peer.rekey()
        conv = run(server, peer)
        assert conv.success and conv.s["km"] == km and peer.keys == conv.keys and peer.state == 4
    # an upgrade to the other cryptosuite: KeyingMode 3, new Kz on both sides
    other = 3 - cs
    server.cryptosuites = (other,)
    peer.suites = (other, cs)
    conv = run(server, peer)
    assert conv.success and conv.s["km"] == 3 and peer.keys == conv.keys
    assoc = server.registry.get(peer.peer_id)
    assert assoc.cryptosuitep == other and assoc.kz == peer.rec[6]
    # and the next Reconnect confirms it: the peer drops KzPrev
    peer.suites = (other,)
    server.keying_mode = 1
    assert run(server, peer).success and 7 not in reboot(peer, tmp_path).rec


def test_lost_final_response_of_an_upgrade_is_rolled_back(tmp_path):
    """RFC 9140 section 3.4.2: the server misses the peer's last Type 9 of a cryptosuite upgrade; the next
    Reconnect with the old Kz succeeds because the peer tries KzPrev."""
    server = ns.NoobServer(SERVER_INFO, cryptosuites=(1,), dirs=2)
    peer = make_peer(tmp_path, suites=(1,))
    run(server, peer)
    assert peer.accept_oob(server.make_oob(peer.peer_id))
    assert run(server, peer).success
    server.cryptosuites = (2,)
    peer.suites = (2, 1)

    def drop_type9(pkt, to_peer):
        return pkt if to_peer or b'"Type":9' not in pkt else b""
    conv = run_until_open(server, peer, drop_type9)
    assert not conv.done
    assert peer.state == 4 and peer.rec[4] == b"2"  # the peer committed to the upgrade
    assert server.registry.get(peer.peer_id).cryptosuitep == 1
    server.cryptosuites = (1,)
    peer.suites = (1,)
    conv = run(server, peer)
    assert conv.success and conv.s["km"] == 2 and peer.keys == conv.keys
    assert peer.rec[4] == b"1" and 7 not in peer.rec


def run_until_open(server, peer, tamper):
    conv = server.conversation()
    packets = [conv.start()]
    while packets and not conv.done:
        nxt = []
        for pkt in packets:
            resp = peer.receive(tamper(pkt, True))
            if resp is not None:
                resp = tamper(resp, False)
                if resp:
                    nxt = conv.receive(resp)
        packets = nxt
    return conv


def registered_pair(tmp_path, cs=1, **server_kw):
    server = ns.NoobServer(SERVER_INFO, cryptosuites=(cs,), dirs=2, **server_kw)
    peer = make_peer(tmp_path, suites=(cs,))
    run(server, peer)
    assert peer.accept_oob(server.make_oob(peer.peer_id))
    return server, peer


def _flip_mac(field):
    def tamper(pkt, to_peer):
        key = b'"' + field + b'":"'
        i = pkt.find(key)
        if i < 0:
            return pkt
        j = i + len(key)
        return pkt[:j] + (b"B" if pkt[j:j + 1] == b"A" else b"A") + pkt[j + 1:]
    return tamper


def test_tampered_macs_fails_without_state_change(tmp_path):
    server, peer = registered_pair(tmp_path)
    conv = run(server, peer, tamper=_flip_mac(b"MACs"))
    assert not conv.success and conv.error == (4001, "MACs verification failed", False)
    assert peer.error[:1] == (4001,)
    # no state change on either side (RFC 9140 section 3.6.5): the honest retry succeeds
    assert peer.state == 2 and server.registry.get(peer.peer_id).state == 1
    assert run(server, peer).success


def test_tampered_macp_leaves_the_mismatch_the_rfc_describes(tmp_path):
    """The peer commits when it sends its final response (RFC 9140 section 6.9); a MACp the server refuses
    leaves the peer Registered and the server Waiting: the next exchange is 2002 and the user resets the peer."""
    server, peer = registered_pair(tmp_path)
    conv = run(server, peer, tamper=_flip_mac(b"MACp"))
    assert not conv.success and conv.error[:1] == (4001,) and conv.error[2]
    assert peer.error == (4001, "MACp verification failed", False)
    assert peer.state == 4 and server.registry.get(peer.peer_id).state == 1
    conv = run(server, peer)
    assert conv.error[0] == 2002 and peer.state == 3
    peer.reset()
    assert run(server, peer).exchange == "initial" and peer.state == 1


@pytest.mark.parametrize("field", [b"MACs2", b"MACp2"])
def test_tampered_reconnect_mac(tmp_path, field):
    server, peer = registered_pair(tmp_path)
    assert run(server, peer).success
    peer.rekey()
    conv = run(server, peer, tamper=_flip_mac(field))
    assert not conv.success and conv.error[0] == 4001
    if field == b"MACs2":
        assert peer.state == 3  # the peer found it and stays Reconnecting
    assert server.registry.get(peer.peer_id).state == 3
    peer.rekey()
    assert run(server, peer).success


def test_wrong_noob_or_hoob_is_rejected_then_retries_run_out(tmp_path):
    server = ns.NoobServer(SERVER_INFO, dirs=2)
    peer = make_peer(tmp_path, oob_retries=4)
    run(server, peer)
    good = server.make_oob(peer.peer_id)
    fields = dict(kv.split("=", 1) for kv in good.split("&"))
    wrong_noob = good.replace(fields["N"], wire.b64e(bytes(16)).decode())
    wrong_hoob = good.replace(fields["H"], wire.b64e(bytes(16)).decode())
    other_peer = good.replace(fields["P"], "x" * 22)
    assert not peer.accept_oob(wrong_noob) and peer.state == 1
    assert not peer.accept_oob(wrong_hoob) and peer.state == 1
    assert not peer.accept_oob("garbage") and peer.state == 1
    assert peer.accept_oob(good) and peer.state == 2, "a good one before the limit is accepted"
    assert not peer.accept_oob(good), "no second OOB message once one is accepted"
    # a fresh peer that gets only bad ones goes back to Unregistered at the limit
    peer2 = Peer(FileStore(str(tmp_path / "p2")), PEER_INFO, dirs=2, oob_retries=3)
    run(server, peer2)
    for bad in (wrong_noob, other_peer, wrong_hoob):
        assert not peer2.accept_oob(bad)
    assert peer2.state == 0 and reboot(peer2, tmp_path).state == 0
    assert run(server, peer2).exchange == "initial"


def test_server_oob_retries(tmp_path):
    server = ns.NoobServer(SERVER_INFO, dirs=1, oob_retries=2)
    peer = make_peer(tmp_path)
    run(server, peer)
    url = peer.oob_message(0)
    bad = url[:-2] + ("AA" if not url.endswith("AA") else "BA")
    assert not server.accept_oob(bad)
    assert server.registry.get(peer.peer_id).state == 1
    assert not server.accept_oob(bad)
    assert server.registry.get(peer.peer_id) is None, "OobRetries reached: back to Unregistered"
    assert not server.accept_oob(url)
    # the peer, still Waiting, is given a new PeerId in a new Initial Exchange
    old = peer.peer_id
    conv = run(server, peer)
    assert conv.exchange == "initial" and peer.peer_id != old and peer.state == 1


def test_expired_server_noob_is_refused_with_2003(tmp_path):
    clock = Clock()
    server = ns.NoobServer(SERVER_INFO, dirs=2, clock=clock)
    peer = make_peer(tmp_path)
    run(server, peer)
    assert peer.accept_oob(server.make_oob(peer.peer_id))
    clock.t += ns.NOOB_TIMEOUT + 1
    conv = run(server, peer)
    assert not conv.success and conv.error[0] == 2003
    assert peer.error[0] == 2003 and peer.state == 1, "OOB Reject: the peer goes back to Waiting for OOB"
    assert server.registry.get(peer.peer_id).state == 1
    assert peer.accept_oob(server.make_oob(peer.peer_id))
    assert run(server, peer).success


def test_expired_peer_noob_is_refused_with_2003(tmp_path):
    server = ns.NoobServer(SERVER_INFO, dirs=1)
    peer = make_peer(tmp_path)
    run(server, peer, now=0)
    assert server.accept_oob(peer.oob_message(0))
    conv = run(server, peer, now=ns.NOOB_TIMEOUT + 1)
    assert not conv.success and peer.error == (2003, "unrecognized NoobId", True)
    assert conv.error[0] == 2003 and server.registry.get(peer.peer_id).state == 1, "(B): server back to 1"
    assert peer.state == 1


def test_peer_noob_interval_and_expiry(tmp_path):
    server = ns.NoobServer(SERVER_INFO, dirs=1)
    peer = make_peer(tmp_path)
    run(server, peer)
    first = peer.oob_message(0)
    assert peer.oob_message(100) == first, "the same Noob within NoobInterval"
    second = peer.oob_message(ns.NOOB_TIMEOUT // 2)
    assert second != first
    assert server.accept_oob(first), "an older, unexpired Noob still completes"
    assert run(server, peer, now=ns.NOOB_TIMEOUT // 2 + 10).success


def test_unknown_peer_id_and_state_mismatch(tmp_path):
    server, peer = registered_pair(tmp_path)
    assert run(server, peer).success
    stranger = ns.NoobServer(SERVER_INFO, dirs=2)  # a server that lost its database
    peer.rekey()
    conv = run(stranger, peer)
    assert conv.error[0] == 2002 and peer.error[0] == 2002 and peer.state == 3, "never dropped in-band"
    assert run(server, peer).success


def test_wrong_peer_id_in_a_response(tmp_path):
    server, peer = registered_pair(tmp_path)

    def swap_id(pkt, to_peer):
        if to_peer or b'"Type":5' not in pkt:
            return pkt
        body = pkt[5:].replace(peer.peer_id.encode(), b"A" * len(peer.peer_id))
        return pkt[:5] + body
    conv = run(server, peer, tamper=swap_id)
    assert conv.error[0] == 2004 and peer.state == 2


def test_replayed_messages_are_ignored(tmp_path):
    server, peer = registered_pair(tmp_path)
    conv = server.conversation()
    pkt = conv.start()
    resp = peer.receive(pkt)
    assert peer.receive(pkt) == resp, "a retransmitted request gets the same response"
    req = conv.receive(resp)[0]
    assert conv.receive(resp) == [], "a duplicate response (stale Identifier) is discarded"
    resp1 = peer.receive(req)
    assert peer.receive(req) == resp1
    packets = conv.receive(resp1)
    while packets:
        nxt = []
        for p in packets:
            r = peer.receive(p)
            if r:
                nxt = conv.receive(r)
        packets = nxt
    assert conv.success


def test_server_rejects_malformed_responses():
    server = ns.NoobServer(SERVER_INFO)
    for body, code in [(b"{", 1002), (b'{"Type":1,"PeerState":0,"X":1}', 1002), (b'{"Type":1}', 1002),
                       (b'{"Type":1,"PeerState":9}', 1003), (b'{"Type":3,"PeerId":"a","PKp":{},"Np":""}', 1004),
                       (b'{"Type":1,"PeerState":0,"PeerState":0}', 1002),
                       (b'{"Type":1,"PeerState":' + b"[" * 600 + b"]" * 600 + b"}", 1003),
                       (b'{"Type":1,"PeerState":NaN}', 1002), (b'{"Type":1,"PeerState":1.0}', 1003)]:
        conv = server.conversation()
        first = conv.start()
        req = conv.receive(bytes((2, first[1], 0, 5 + 4, 1)) + b"@x.y")[0]
        out = conv.receive(bytes((2, req[1], (5 + len(body)) >> 8, (5 + len(body)) & 255, 56)) + body)
        assert conv.error[0] == code, body[:40]
        assert out[-1][0] == ns.FAILURE and b'"ErrorCode":%d' % code in out[0]
    conv = server.conversation()
    first = conv.start()
    assert conv.receive(bytes((2, first[1], 0x10, 0, 1)) + b"a" * 4100) == [], "oversized: discarded"
    assert conv.receive(bytes((2, first[1], 0, 200, 1)) + b"short") == [], "Length beyond the packet"
    assert conv.receive(bytes((2, (first[1] + 1) & 255, 0, 9, 1)) + b"@x.y") == [], "stale Identifier"
    assert not conv.done


def test_hostile_bytes_never_break_the_peer(tmp_path):
    """Random mutations of every request of a full flow: the peer answers with a well-formed EAP packet or
    nothing, never raises, and the untouched flow still completes afterwards."""
    import random
    rnd = random.Random(7)
    server = ns.NoobServer(SERVER_INFO, dirs=2)
    peer = make_peer(tmp_path)
    run(server, peer)
    assert peer.accept_oob(server.make_oob(peer.peer_id))

    def mutate(pkt, to_peer):
        if not to_peer or rnd.random() < 0.3:
            return pkt
        b = bytearray(pkt)
        for _ in range(rnd.randint(1, 4)):
            op = rnd.random()
            if op < 0.4 and b:
                b[rnd.randrange(len(b))] = rnd.randrange(256)
            elif op < 0.7 and b:
                del b[rnd.randrange(len(b)):]
            else:
                b[rnd.randrange(len(b) + 1):0] = rnd.choice([b"{", b'"', b"\\", b"\x00", b"[[[[", b"9" * 30])
        return bytes(b)
    for _ in range(60):
        conv = server.conversation()
        packets = [conv.start()]
        for _ in range(12):
            if not packets or conv.done:
                break
            nxt = []
            for p in packets:
                r = peer.receive(mutate(p, True))
                if r is not None:
                    code, _, typ, data = wire.parse(r)
                    assert code == wire.RESPONSE
                    if typ == wire.TYPE_NOOB:
                        wire.Message(data)  # our own responses are always valid JSON
                    nxt = conv.receive(r)
            packets = nxt
        assert peer.state in (2, 3, 4)  # OOB Received, then Registered; a broken Reconnect leaves 3
    if peer.state == 2:
        assert run(server, peer).success
    peer.rekey()
    assert run(server, peer).success


def _steps(conv, peer, packets, n):
    """Deliver n rounds of a conversation; returns the packets the server sends next."""
    for _ in range(n):
        resp = None
        for p in packets:
            resp = peer.receive(p) or resp
        packets = conv.receive(resp)
    return packets


@pytest.mark.parametrize("direction", [1, 2])
def test_server_restart_mid_exchange(tmp_path, direction):
    """The server process dies in the middle of the Completion and the Reconnect Exchanges: a new server over
    the same registry runs the next conversation to success, with no corrupted state on either side."""
    registry = ns.MemoryRegistry()
    server = ns.NoobServer(SERVER_INFO, dirs=direction, registry=registry)
    peer = make_peer(tmp_path)
    run(server, peer)
    if direction == 1:
        assert server.accept_oob(peer.oob_message(0))
    else:
        assert peer.accept_oob(server.make_oob(peer.peer_id))
    conv = server.conversation()
    _steps(conv, peer, [conv.start()], 2)  # Identity, Type 1: the next request is Type 5 or 6
    server = ns.NoobServer(SERVER_INFO, dirs=direction, registry=registry)
    assert peer.state == (1 if direction == 1 else 2)
    assert run(server, peer).success and peer.state == 4
    peer.rekey()
    conv = server.conversation()
    _steps(conv, peer, [conv.start()], 3)  # ... Type 7 answered, Type 8 pending
    server = ns.NoobServer(SERVER_INFO, dirs=direction, registry=registry)
    assert run(server, peer).success


def test_peer_reboot_mid_exchange(tmp_path):
    server = ns.NoobServer(SERVER_INFO, dirs=2)
    peer = make_peer(tmp_path)
    run(server, peer)
    assert peer.accept_oob(server.make_oob(peer.peer_id))
    conv = server.conversation()
    packets = _steps(conv, peer, [conv.start()], 3)  # Type 5 answered, Type 6 pending
    peer = reboot(peer, tmp_path)
    resp = peer.receive(packets[0])
    out = conv.receive(resp)
    assert conv.error[:1] == (1004,) and not conv.error[2], "the rebooted peer has no open exchange: 1004"
    assert out[-1][0] == ns.FAILURE
    assert peer.state == 2 and server.registry.get(peer.peer_id).state == 1
    assert run(server, peer).success


def test_old_conversation_messages_replayed_into_a_new_one(tmp_path):
    server, peer = registered_pair(tmp_path)
    recorded = []

    def record(pkt, to_peer):
        if not to_peer:
            recorded.append(pkt)
        return pkt
    assert run(server, peer, tamper=record).success
    final = recorded[-1]  # the peer's Type 6 with MACp
    peer.rekey()
    conv = server.conversation()
    packets = _steps(conv, peer, [conv.start()], 2)
    if final[1] != packets[0][1]:  # Identifiers start at random: they may coincide
        assert conv.receive(final) == [], "its old Identifier: discarded"
    out = conv.receive(bytes((2, packets[0][1])) + final[2:])  # the same message under the current Identifier
    assert conv.error[0] == 1004 and out[-1][0] == ns.FAILURE
    assert server.registry.get(peer.peer_id).state == 3, "a failed Reconnect leaves Reconnecting (3)"
    peer.rekey()
    assert run(server, peer).success


@pytest.mark.parametrize("nai,ok", [("@noob.eap.arpa", True), ("noob@eap-noob.arpa", True),
                                    ("noob@example.org", True), ("", False), ("a b@x", False),
                                    ("a@b@c", False), ("user@", False), ("x" * 254, False)])
def test_server_accepts_both_noob_nais_and_refuses_bad_ones(nai, ok):
    """RFC 9965's @noob.eap.arpa and RFC 9140's noob@eap-noob.arpa (deprecated, still accepted); 1001 for an
    NAI that is not one (RFC 9140 section 3.6.1)."""
    conv = ns.NoobServer(SERVER_INFO).conversation()
    first = conv.start()
    body = nai.encode()
    out = conv.receive(bytes((ns.RESPONSE, first[1])) + (5 + len(body)).to_bytes(2, "big") + b"\x01" + body)
    if ok:
        assert out == [out[0]] and out[0][5:] == b'{"Type":1}'
    else:
        assert conv.error[0] == 1001 and out[-1][0] == ns.FAILURE


def test_oob_accepted_during_a_waiting_exchange_is_kept(tmp_path):
    """The user confirms the device's OOB message while a Waiting Exchange is under way (the device announced
    again after a restart): the exchange's end must not write back the association it read before, which put
    the server back to Waiting for ever (the device never got its Completion Exchange)."""
    from hourglass.noob_db import Database
    server = ns.NoobServer(SERVER_INFO, cryptosuites=(1,), dirs=1, clock=Clock(), keying_mode=1,
                           registry=Database(tmp_path / "noob.sqlite"))  # each get() a fresh copy, as in serve
    peer = make_peer(tmp_path, suites=(1,), dirs=1)
    run(server, peer)  # Initial
    url = peer.oob_message(0)
    conv = server.conversation()
    packets = [conv.start()]
    accepted = False
    while packets:
        nxt = []
        for pkt in packets:
            resp = peer.receive(pkt, 0)
            if resp is not None:
                if not accepted and conv.exchange == "waiting":
                    assert server.accept_oob(url)  # between the server's Type 4 request and the peer's answer
                    accepted = True
                nxt = conv.receive(resp)
        packets = nxt
    assert accepted and conv.exchange == "waiting" and not conv.success
    assert server.registry.get(peer.peer_id).state == 2, "OOB Received, not Waiting again"
    conv = run(server, reboot(peer, tmp_path))
    assert conv.success and conv.exchange == "completion"
