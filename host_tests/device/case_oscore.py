# OSCORE core (lib/oscore) on both runtimes: RFC 8613 Appendix C vectors (C.1-C.8, with cryptolib and with the
# pure AES of the nRF52840), the option classes and outer code, Proxy-Uri, notifications.
import hgtest

from coap.msg import Message, decode
# The pure AES (and its viper code) compiled from source now, while the heap is not yet fragmented: compiled late
# its transient needs more contiguous heap than 128k keeps after the other cases (a board has it as .mpy).
from crypto.aes import PureAES  # noqa: F401
from oscore import OscoreError
import oscore as C
from oscore import derive as D
from oscore import client as Q
from oscore import transform as P
from oscore_common import vec, pair, get
MP_HEAP = "128k"  # measured: fails at 96k on the VM


def test_key_derivation_c1_c2_c3():
    secret = vec("secret")
    assert D.info(b"", None, "Key", 16) == vec("c1.info_sender")
    assert D.info(b"\x01", None, "Key", 16) == vec("c1.info_recipient")
    assert D.info(b"", None, "IV", 13) == vec("c1.info_iv")
    assert D.info(b"\x00", None, "Key", 16) == vec("c2.info_sender")
    assert D.info(b"", vec("id_context"), "Key", 16) == vec("c3.info_sender")
    assert D.info(b"\x01", vec("id_context"), "Key", 16) == vec("c3.info_recipient")
    assert D.info(b"", vec("id_context"), "IV", 13) == vec("c3.info_iv")
    for tag, salt, sid, rid, idc in (("c1", vec("salt"), b"", b"\x01", None), ("c2", b"", b"\x00", b"\x01", None),
                                     ("c3", vec("salt"), b"", b"\x01", vec("id_context"))):
        sk, rk, iv = D.derive(secret, salt, sid, rid, idc)
        assert sk == vec(tag + ".sender_key"), tag
        assert rk == vec(tag + ".recipient_key"), tag
        assert iv == vec(tag + ".common_iv"), tag
        # the server's half is the mirror image (C.1.2, C.2.2, C.3.2)
        assert D.derive(secret, salt, rid, sid, idc)[:2] == (rk, sk)
        ctx = C.Context(secret, salt, sid, rid, idc)
        assert bytes(ctx.nonce(sid, b"\x00")) == vec(tag + ".client_sender_nonce0"), tag
        assert bytes(ctx.nonce(rid, b"\x00")) == vec(tag + ".client_recipient_nonce0"), tag
    assert D.derive(secret, None, b"\x00", b"\x01")[0] == vec("c2.sender_key"), "absent salt = empty salt"


def _request_vector(tag, pure):
    sid = b"\x00" if tag == "c5" else b""
    client, server = pair(salt=tag != "c5", sid=sid, idc=vec("id_context") if tag == "c6" else None, pure=pure)
    client.seq = 20
    orig = vec(tag + ".unprotected")
    out, binding = Q.protect_request(client, decode(orig))
    assert bytes(out.encode()) == vec(tag + ".protected"), tag
    assert out.opt(9) == vec(tag + ".option")
    assert bytes(binding[3]) == vec(tag + ".nonce")
    assert P.aad(binding[1], binding[2], b"") == vec(tag + ".aad")
    assert client.seq == 21
    inner, sb = P.unprotect_request([server], decode(vec(tag + ".protected")))
    assert bytes(inner.encode()) == orig, tag
    assert inner.path() == "/tv1" and inner.opt(3) == b"localhost"
    assert server.top == 20
    return client, server, binding, sb


def test_request_vectors_c4_c5_c6():
    for tag in ("c4", "c5", "c6"):
        _request_vector(tag, False)


def test_response_vectors_c7_c8():
    client, server, cb, sb = _request_vector("c4", False)
    resp = decode(vec("c7.unprotected"))
    out = P.protect_response(list(sb), resp)  # a copy: C.8 answers the same request
    assert bytes(out.encode()) == vec("c7.protected")
    assert server.seq == 0, "a response that reuses the request nonce uses no sequence number"
    inner = Q.unprotect_response(list(cb), decode(vec("c7.protected")))
    assert bytes(inner.encode()) == vec("c7.unprotected") and inner.payload == b"Hello World!"
    out = P.protect_response(sb, decode(vec("c8.unprotected")), own_piv=True)
    assert bytes(out.encode()) == vec("c8.protected")
    assert out.opt(9) == vec("c8.option") and server.seq == 1
    inner = Q.unprotect_response(cb, decode(vec("c8.protected")))
    assert bytes(inner.encode()) == vec("c8.unprotected")


def test_vectors_with_pure_aes():
    # the nRF52840 has no cryptolib: the same bytes through the pure AES fallback
    for tag in ("c6", "c4"):
        client, server, cb, sb = _request_vector(tag, True)
    out = P.protect_response(sb, decode(vec("c8.unprotected")), own_piv=True)
    assert bytes(out.encode()) == vec("c8.protected")


def test_option_classes_and_outer_code():
    client, server = pair()
    m = get("/a/b?x=1&y", token=b"\x07")
    m.add(3, "example.org").add(7, 61616).add(12, 0).add(6, 0).add(17, 60).add(14, 30).add(1, b"\xaa")
    m.add(23, 0x02).add(39, "coap").add(16, 16).add(5, b"").add(60, 1000).add(2000, b"opaque")
    m.payload = b"body"
    out, cb = Q.protect_request(client, m)
    assert out.code == 5, "a request with Observe goes out as FETCH"
    nums = [n for n, _ in decode(out.encode()).items()]
    assert nums == [3, 6, 7, 9, 16, 39], nums  # only Class U (and outer Observe) outside
    assert out.opt(6) == b"", "outer Observe carries the registration value (0)"
    assert b"body" not in bytes(out.payload) and out.token == b"\x07" and out.mid == 1
    inner, sb = P.unprotect_request([server], decode(out.encode()))
    assert inner.code == 1 and inner.path() == "/a/b" and inner.query() == ["x=1", "y"]
    assert inner.payload == b"body"
    for n in (1, 3, 5, 6, 7, 12, 14, 16, 17, 23, 39, 60, 2000):
        assert inner.all(n) == m.all(n), n
    assert sb[4], "the binding knows the request observes"
    plain = Message(0, 1)
    out, _ = Q.protect_request(client, plain.add(11, "x"))
    assert out.code == 2 and [n for n, _ in decode(out.encode()).items()] == [9]
    hgtest.raises(OscoreError, Q.protect_request, client, Message(0, 1).add(9, b""))


def test_proxy_uri_decomposition():
    client, server = pair()
    m = Message(0, 3, 2, b"")
    m.add(35, "coap://example.com:5684/a%20b/c/?q=%41&r")
    out, _ = Q.protect_request(client, m)
    assert out.opt(35) == b"coap://example.com:5684"
    assert out.opt(11) is None and out.opt(15) is None
    inner, _ = P.unprotect_request([server], decode(out.encode()))
    assert inner.all(11) == [b"a b", b"c", b""] and inner.all(15) == [b"q=A", b"r"]
    assert inner.opt(35) == b"coap://example.com:5684" and inner.code == 3
    out, _ = Q.protect_request(client, Message(0, 1).add(35, "coap://h/"))
    inner, _ = P.unprotect_request([server], decode(out.encode()))
    assert inner.opt(11) is None and inner.opt(35) == b"coap://h"
    hgtest.raises(OscoreError, Q.protect_request, client, Message(0, 1).add(35, "no-scheme"))
    hgtest.raises(OscoreError, Q.protect_request, client, Message(0, 1).add(35, "coap://h/%zz"))


def _notify(server, sb, n, payload):
    m = Message(1, 69, 100 + n, b"\x05")
    m.add(6, n).add(12, 0)
    m.payload = payload
    return P.protect_response(sb, m)


def test_observe_notifications_each_with_own_partial_iv():
    client, server = pair()
    reg = Message(0, 1, 9, b"\x05").add(6, 0)
    reg.set_path("/temp")
    out, cb = Q.protect_request(client, reg)
    inner, sb = P.unprotect_request([server], decode(out.encode()))
    assert inner.uint(6) == 0
    wires = []
    for n in range(2, 8):
        w = _notify(server, sb, n, b"t=%d" % n)
        assert w.code == 69 and w.opt(6) == bytes((n,)), "outer Observe for proxies, code 2.05"
        assert P.oscore_option(w)[0], "every notification carries its own Partial IV"
        wires.append(bytes(w.encode()))
    assert server.seq == 6
    seen = []
    for w in wires[:3] + wires[4:]:
        inner = Q.unprotect_response(cb, decode(w))
        assert inner.code == 69 and inner.opt(12) == b""
        seen.append(inner.uint(6))
    assert seen == sorted(seen) and len(set(seen)) == 5, "Observe values follow the Partial IVs"
    for w in (wires[5], wires[3], wires[0]):  # a replay, and older ones: below the Notification Number
        before = list(cb)
        hgtest.raises(OscoreError, Q.unprotect_response, cb, decode(w))
        assert cb == before
    # the inner Observe of a notification is empty; a response to a non-Observe request must not have one
    out, cb2 = Q.protect_request(client, get("/x", 10, b"\x06"))
    _, sb2 = P.unprotect_request([server], decode(out.encode()))
    w = _notify(server, sb2, 2, b"x")
    e = hgtest.raises(OscoreError, Q.unprotect_response, cb2, decode(w.encode()))
    assert e.code == 0


def test_second_response_never_reuses_the_request_nonce():
    client, server = pair()
    out, cb = Q.protect_request(client, get("/x"))
    _, sb = P.unprotect_request([server], decode(out.encode()))
    r1 = P.protect_response(sb, Message(2, 69, 1, b"\x01\x02", b"one"))
    r2 = P.protect_response(sb, Message(2, 69, 1, b"\x01\x02", b"two"))
    assert r1.opt(9) == b"" and P.oscore_option(r2)[0] == b"\x00"
    assert Q.unprotect_response(cb, decode(r1.encode())).payload == b"one"
    hgtest.raises(OscoreError, Q.unprotect_response, cb, decode(r1.encode()))  # at most one without PIV
    assert Q.unprotect_response(cb, decode(r2.encode())).payload == b"two"


