# Shared helpers of the case_oscore*.py files (no cases of its own): the Appendix C vectors, context pairs,
# refusal checks.
import hgtest
from hgtest import unhex

from coap.msg import Message, decode
from oscore import OscoreError
import oscore as C
from oscore import client as Q
from oscore import transform as P

_V = None


def vec(name):
    global _V
    if _V is None:
        d = {}
        with open(hgtest.vector_path("oscore/appendix_c.txt")) as f:
            for line in f:
                line = line.strip()
                if line and line[0] != "#":
                    k, v = line.split()
                    d[k] = b"" if v == "-" else unhex(v)
        _V = d
    return _V[name]


def pair(salt=True, sid=b"", rid=b"\x01", idc=None, pure=False, **kw):
    s = vec("salt") if salt else b""
    client = C.Context(vec("secret"), s, sid, rid, idc, pure=pure, **kw)
    server = C.Context(vec("secret"), s, rid, sid, idc, pure=pure)
    return client, server


def state(ctx):
    return (ctx.seq, ctx.top, ctx.bits, ctx.synced, ctx.echo)


def get(path, mid=1, token=b"\x01\x02"):
    m = Message(0, 1, mid, token)
    m.set_path(path)
    return m


def protected(client, path="/x", mid=1):
    out, cb = Q.protect_request(client, get(path, mid))
    return bytes(out.encode()), cb


def refused(code, diag, contexts, wire, ctx):
    before = state(ctx)
    e = hgtest.raises(OscoreError, P.unprotect_request, contexts, decode(wire))
    assert e.code == code, (e.code, e)
    assert e.diag == diag, e.diag
    assert state(ctx) == before, "a refused request leaves the context unchanged"
    return e


