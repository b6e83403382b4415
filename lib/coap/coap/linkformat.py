# RFC 6690 link-format for /.well-known/core, with the query filtering of section 4.1. Loaded on the first
# discovery request.
from coap.msg import Message

try:
    from micropython import const  # compile time on MicroPython: no code, no RAM
except ImportError:
    from coap import const

_CONTENT = const(69)
_CONTENT_FORMAT = const(12)


def well_known(srv, req):
    """The server's answer to GET /.well-known/core (before Block2 slicing)."""
    return Message(code=_CONTENT, payload=link_format(srv.resources.values(), req.query()).encode()).add(
        _CONTENT_FORMAT, 40)



def link(r):
    s = "<" + r.path + ">"
    a = r.link
    for k in ("rt", "if_", "title"):
        v = a.get(k)
        if v is not None:
            s += ';%s="%s"' % (k.rstrip("_"), v)
    ct = a.get("ct")
    if ct is not None:
        s += ";ct=%s" % ct
    if r.observers is not None:
        s += ";obs"
    return s


def matches(r, key, value):
    """One attribute filter; a value ending in "*" is a prefix match; rt/if values are space-separated lists."""
    if key == "href":
        attr = [r.path]
    elif key == "ct":
        ct = r.link.get("ct")
        attr = [str(ct)] if ct is not None else []
    elif key in ("rt", "if", "title"):
        v = r.link.get("if_" if key == "if" else key)
        attr = v.split(" ") if v and key != "title" else ([v] if v else [])
    elif key == "obs":
        return r.observers is not None
    else:
        return False
    if value.endswith("*"):
        value = value[:-1]
        for a in attr:
            if a.startswith(value):
                return True
        return False
    return value in attr


def link_format(resources, query=()):
    """RFC 6690 body for /.well-known/core, filtered by a query like ["rt=temperature"]."""
    key = val = None
    for q in query:
        key, _, val = q.partition("=")
        break
    return ",".join(link(r) for r in resources if key is None or matches(r, key, val))
