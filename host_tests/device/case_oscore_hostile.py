# OSCORE refusals on both runtimes: replays, tampering, unknown kid / ID Context, malformed OSCORE options,
# sequence number exhaustion (each refused with its section 8 code, leaving the context unchanged), and a seeded
# fuzz of unprotect where every outcome is a defined error.
import hgtest

from coap import MessageError
from coap.msg import Message, decode
from oscore import OscoreError
import oscore as C
from oscore import answer as A
from oscore.answer import EchoRequired
from oscore import client as Q
from oscore import transform as P
from oscore_common import vec, pair, get, protected, refused
MP_HEAP = "128k"  # measured: fails at 96k on the VM


def test_replays_are_refused():
    client, server = pair()
    wires = [protected(client, mid=i)[0] for i in range(40)]
    P.unprotect_request([server], decode(wires[5]))
    refused(129, "Replay detected", [server], wires[5], server)
    P.unprotect_request([server], decode(wires[39]))
    refused(129, "Replay detected", [server], wires[39], server)
    P.unprotect_request([server], decode(wires[10]))  # out of order, inside the window: accepted once
    refused(129, "Replay detected", [server], wires[10], server)
    refused(129, "Replay detected", [server], wires[7], server)  # 32 behind the newest: outside the window
    for i in range(8, 39):
        if i != 10:
            P.unprotect_request([server], decode(wires[i]))
    assert C.WINDOW >= 32


def test_tampering_and_lookup_failures():
    client, server = pair()
    wire, _ = protected(client)
    bad = bytearray(wire)
    bad[-1] ^= 1
    refused(128, "Decryption failed", [server], bytes(bad), server)
    bad = bytearray(wire)
    bad[1] = 3  # the outer code is not protected: changing it changes nothing
    inner, _ = P.unprotect_request([server], decode(bytes(bad)))
    assert inner.code == 1
    # unknown kid: the request of another client
    other, _ = pair(sid=b"\x09", rid=b"\x01")
    refused(129, "Security context not found", [server], protected(other)[0], server)
    # wrong ID Context
    c2, s2 = pair(idc=b"\x01\x02")
    refused(129, "Security context not found", [s2], protected(pair(idc=b"\x09\x09")[0])[0], s2)
    assert P.unprotect_request([s2], decode(protected(c2)[0]))[0].path() == "/x"
    # a Class I option (integrity-protected, outer) changed on the way
    ci_client, ci_server = pair(class_i=(2048,))
    ci_server.class_i = (2048,)
    out, _ = Q.protect_request(ci_client, get("/x").add(2048, b"route-a"))
    assert out.opt(2048) == b"route-a", "Class I stays outside"
    wire = bytes(out.encode())
    assert P.unprotect_request([ci_server], decode(wire))[0].opt(2048) == b"route-a"
    out, _ = Q.protect_request(ci_client, get("/x", 2).add(2048, b"route-a"))
    m = decode(out.encode())
    tampered = Message(m.type, m.code, m.mid, m.token, bytes(m.payload))
    tampered.opts = [(n, b"route-b" if n == 2048 else bytes(v)) for n, v in m.items()]
    refused(128, "Decryption failed", [ci_server], bytes(tampered.encode()), ci_server)


def test_malformed_oscore_options():
    client, server = pair()
    wire, _ = protected(client)
    m = decode(wire)
    good = bytes(m.opt(9))  # 09 00 01: PIV 0, kid 01... rebuilt below with each defect
    assert good == b"\x09\x00"
    for value in (b"\x0d", b"\x03\x00", b"\x0e\x00\x00\x00\x00\x00\x00", b"\x19\x00", b"\x19\x00\x05\x01",
                  b"\x29\x00", b"\x89\x00", b"\x00", b"", b"\x08", b"\x01\x00", b"\x01\x00\x01"):
        x = Message(m.type, m.code, m.mid, m.token, bytes(m.payload))
        x.add(9, value)
        e = refused(130, "Failed to decode COSE", [server], bytes(x.encode()), server)
        assert "OSCORE" in str(e) or "Partial IV" in str(e) or "kid" in str(e), (value, e)
    x = Message(m.type, m.code, m.mid, m.token)  # no ciphertext
    x.add(9, good)
    refused(130, "Failed to decode COSE", [server], bytes(x.encode()), server)
    with_kid_context = Message().add(9, b"\x19\x14\x08" + vec("id_context"))
    assert P.oscore_option(with_kid_context) == (b"\x14", vec("id_context"), b"", ())
    e = hgtest.raises(OscoreError, P.unprotect_request, [server], decode(get("/x").encode()))
    assert e.code == 129, "an unprotected request where OSCORE is required gets 4.01"


def test_outer_uri_path_is_discarded_not_followed():
    # A proxy (or attacker) adds an unprotected Uri-Path that contradicts the protected one: RFC 8613 section 8.2
    # step 1 discards outer Class E options, so the handler sees only the protected path.
    client, server = pair()
    out, _ = Q.protect_request(client, get("/safe"))
    m = decode(out.encode())
    x = Message(m.type, m.code, m.mid, m.token, bytes(m.payload))
    x.opts = [(n, bytes(v)) for n, v in m.items()] + [(11, b"delete-all"), (15, b"evil")]
    inner, _ = P.unprotect_request([server], decode(x.encode()))
    assert inner.path() == "/safe" and inner.query() == []


def test_error_response_shape():
    client, server = pair()
    wire = bytearray(protected(client)[0])
    wire[-2] ^= 0x40
    req = decode(bytes(wire))
    e = hgtest.raises(OscoreError, P.unprotect_request, [server], req)
    r = A.error_response(e, req)
    assert r.type == 2 and r.code == 128 and r.mid == req.mid and r.token == req.token
    assert r.payload == "Decryption failed" and r.uint(14) == 0 and not r.has(9)
    assert A.error_response(OscoreError("client side"), req) is None


def test_sequence_number_exhaustion():
    client, server = pair()
    client.seq = C.MAX_SEQ
    out, _ = Q.protect_request(client, get("/x"))
    assert P.oscore_option(out)[0] == b"\xff" * 5
    before = client.seq
    hgtest.raises(OscoreError, Q.protect_request, client, get("/x"))
    assert client.seq == before
    assert P.unprotect_request([server], decode(out.encode()))[0].path() == "/x"


def test_context_parameters_refused():
    hgtest.raises(OscoreError, C.Context, b"k" * 16, b"", b"12345678", b"\x01")
    hgtest.raises(OscoreError, C.Context, b"k" * 16, b"", b"\x01", b"\x01")
    hgtest.raises(OscoreError, C.Context, b"k" * 16, b"", b"\x00", b"\x01", b"x" * 256)
    assert "k" * 16 not in repr(C.Context(b"k" * 16, b"", b"\x00", b"\x01"))


def test_unprotected_response_to_protected_request():
    client, server = pair()
    out, cb = Q.protect_request(client, get("/x"))
    ans = Message(2, 129, 1, b"\x01\x02", b"Security context not found")
    e = hgtest.raises(OscoreError, Q.unprotect_response, cb, decode(ans.encode()))
    assert e.code == 0 and e.response.payload == b"Security context not found"


def test_fuzz_unprotect():
    rng = hgtest.Rng(8613)
    client, server = pair()
    outs = []
    for i in range(4):
        m = get("/fuzz/%d" % i, i)
        m.add(6, 0)
        m.payload = b"p" * (i * 9)
        w, cb = Q.protect_request(client, m)
        outs.append((bytes(w.encode()), cb))
    _, sb = P.unprotect_request([server], decode(outs[3][0]))
    resp = bytes(P.protect_response(sb, Message(2, 69, 3, b"\x01\x02", b"fuzzed").add(6, 1)).encode())
    outcomes = {}
    for i in range(300 if hgtest.IS_MICROPYTHON else 1500):
        base = outs[rng.below(3)][0] if i & 1 else resp
        b = bytearray(base)
        for _ in range(1 + rng.below(4)):
            k = rng.below(4)
            if k == 0:
                b[rng.below(len(b))] ^= 1 << rng.below(8)
            elif k == 1:
                b = b[:rng.below(len(b) + 1)]
            elif k == 2:
                p = rng.below(len(b) + 1)
                b[p:p] = rng.bytes(1 + rng.below(4))
            else:
                b[rng.below(len(b))] = rng.below(256)
            if not b:
                break
        try:
            m = decode(bytes(b))
        except MessageError:
            outcomes["decode"] = outcomes.get("decode", 0) + 1
            continue
        try:
            if i & 1:
                P.unprotect_request([server], m)
            else:
                Q.unprotect_response(list(outs[3][1]), m)
            outcomes["ok"] = outcomes.get("ok", 0) + 1
        except EchoRequired:
            raise AssertionError("a synced context never asks for Echo")
        except OscoreError as e:
            key = e.code
            outcomes[key] = outcomes.get(key, 0) + 1
    assert outcomes.get(128, 0) > 10 and outcomes.get(0, 0) > 10, outcomes
