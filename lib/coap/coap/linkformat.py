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



def link_format(resources, query=()):
    """RFC 6690 body for /.well-known/core, filtered by a query like ["rt=temperature"] (one filter: its value
    ending in "*" is a prefix match; rt/if values are space-separated lists)."""
    key = None
    for q in query:
        key, _, value = q.partition("=")
        if value.endswith("*"):
            value = value[:-1]
            prefix = True
        else:
            prefix = False
        break
    out = []
    for r in resources:
        a = r.link
        if key is not None:
            if key == "href":
                attr = [r.path]
            elif key == "ct":
                ct = a.get("ct")
                attr = [str(ct)] if ct is not None else []
            elif key in ("rt", "if", "title"):
                v = a.get("if_" if key == "if" else key)
                attr = v.split(" ") if v and key != "title" else ([v] if v else [])
            elif key == "obs":
                attr = [value] if r.observers is not None else []
            else:
                attr = []
            for x in attr:
                if x.startswith(value) if prefix else x == value:
                    break
            else:
                continue
        s = "<" + r.path + ">"
        for k in ("rt", "if_", "title"):
            v = a.get(k)
            if v is not None:
                s += ';%s="%s"' % (k.rstrip("_"), v)
        ct = a.get("ct")
        if ct is not None:
            s += ";ct=%s" % ct
        if r.observers is not None:
            s += ";obs"
        out.append(s)
    return ",".join(out)
