# OSCORE freshness across reboots on both runtimes: sequence numbers persisted in steps of K through the store
# (never a reused nonce), and the Echo round trip of a server that lost its replay window (RFC 8613 B.1).
import os

import hgtest

from coap.msg import Message, decode
from oscore import OscoreError
import oscore as C
from oscore import answer as A
from oscore.answer import EchoRequired
from oscore import client as Q
from oscore import transform as P
from oscore_common import vec, get, protected, refused
from store import FileStore
MP_HEAP = "128k"  # measured: fails at 96k on the VM


class CountingStore(FileStore):
    def __init__(self, root):
        super().__init__(root)
        self.puts = 0

    def put(self, name, data):
        self.puts += 1
        super().put(name, data)


def _fresh_store(sub):
    root = "build/test-oscore-" + hgtest.RUNTIME + "/" + sub
    try:
        for name in os.listdir(root):
            os.remove(root + "/" + name)
    except OSError:
        pass
    return CountingStore(root)


def test_sequence_numbers_persisted_every_k():
    st = _fresh_store("seq")
    ctx = C.Context(vec("secret"), b"", b"\x01", b"\x02", store=st, name="c1", k=16)
    assert st.puts == 1 and ctx.synced, "a new context writes its first bound and needs no Echo"
    pivs = set()
    for i in range(50):
        pivs.add(ctx.next_piv())
    assert st.puts == 1 + 3, st.puts  # bounds 16, 32, 48, 64: one write per K numbers
    assert int.from_bytes(st.get("c1"), "big") == 64
    last = ctx.seq - 1
    for boot in range(3):  # reboots, each without a clean shutdown
        ctx = C.Context(vec("secret"), b"", b"\x01", b"\x02", store=st, name="c1", k=16)
        assert not ctx.synced and ctx.seq > last
        for i in range(5):
            piv = ctx.next_piv()
            assert piv not in pivs, "no sequence number (so no nonce) is ever used twice"
            pivs.add(piv)
        last = ctx.seq - 1
    # a failed write leaves the number unused: protect refuses rather than risk a reuse
    ctx = C.Context(vec("secret"), b"", b"\x01", b"\x02", store=st, name="c1", k=1)
    ctx.next_piv()  # the last number the stored bound covers
    seq = ctx.seq

    def broken(name, data):
        raise OSError(28)
    ctx.store = type("Broken", (), {"put": staticmethod(broken)})()
    hgtest.raises(OSError, ctx.next_piv)
    assert ctx.seq == seq
    st.put("bad", b"\x01")
    hgtest.raises(OscoreError, C.Context, vec("secret"), b"", b"\x01", b"\x02", store=st, name="bad")


def test_a_bound_reached_loads_neither_derivation_nor_kdf():
    # A device drops oscore.derive and crypto.kdf once its contexts are made; the bound stored every K
    # messages must not bring them back for the rest of its life (it did: store_bound lived in derive).
    import sys
    st = _fresh_store("bound")
    ctx = C.Context(vec("secret"), b"", b"\x01", b"\x02", store=st, name="c2", k=4)
    kept = {n: sys.modules.pop(n) for n in ("oscore.derive", "crypto.kdf") if n in sys.modules}
    try:
        for i in range(9):  # two bounds reached
            ctx.next_piv()
        assert st.puts == 3, st.puts
        assert "oscore.derive" not in sys.modules and "crypto.kdf" not in sys.modules
    finally:
        sys.modules.update(kept)


def test_echo_round_trip_after_reboot():
    st = _fresh_store("echo")
    client = C.Context(vec("secret"), b"", b"\x01", b"\x02")
    server = C.Context(vec("secret"), b"", b"\x02", b"\x01", store=st, name="srv", k=4)
    old = [protected(client, mid=i)[0] for i in range(3)]
    for w in old:
        P.unprotect_request([server], decode(w))
    used = server.seq
    server = C.Context(vec("secret"), b"", b"\x02", b"\x01", store=st, name="srv", k=4)  # reboot
    assert not server.synced and server.seq >= used
    # a replay of a request from before the reboot is not processed: it is challenged
    e = hgtest.raises(EchoRequired, P.unprotect_request, [server], decode(old[1]))
    assert len(e.echo) == 8 and server.top == -1
    req = get("/lamp", 50)
    req.payload = b"on"
    out, cb = Q.protect_request(client, req)
    e = hgtest.raises(EchoRequired, P.unprotect_request, [server], decode(out.encode()))
    ch = A.echo_response(e)
    assert ch.code == 68 and ch.type == 2 and ch.mid == 50
    piv = P.oscore_option(ch)[0]
    assert piv, "the challenge carries the server's own Partial IV (B.1.2)"
    inner = Q.unprotect_response(cb, decode(ch.encode()))
    echo = A.echo_of(inner)
    assert inner.code == 129 and echo == e.echo and inner.payload == b""
    retry, cb2 = Q.protect_request(client, A.with_echo(req, echo))
    inner, sb = P.unprotect_request([server], decode(retry.encode()))
    assert inner.path() == "/lamp" and inner.payload == b"on" and server.synced
    # the retried request, and everything before it, is now a replay
    refused(129, "Replay detected", [server], bytes(retry.encode()), server)
    refused(129, "Replay detected", [server], old[2], server)
    refused(129, "Replay detected", [server], bytes(out.encode()), server)
    resp = P.protect_response(sb, Message(2, 68, 51, inner.token))
    assert Q.unprotect_response(cb2, decode(resp.encode())).code == 68
    assert A.echo_of(Message(2, 69)) is None
    # a request with a wrong Echo is challenged again
    server = C.Context(vec("secret"), b"", b"\x02", b"\x01", store=st, name="srv", k=4)
    out, _ = Q.protect_request(client, A.with_echo(get("/x"), b"guessed!"))
    hgtest.raises(EchoRequired, P.unprotect_request, [server], decode(out.encode()))
    assert not server.synced


