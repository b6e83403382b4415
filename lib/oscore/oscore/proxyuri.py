# Proxy-Uri decomposition for OSCORE (RFC 8613 section 4.1.3.3), loaded only by a request that carries one.
from oscore import OscoreError

_URI_PATH = 11
_URI_QUERY = 15
_PROXY_URI = 35


def _pct(seg):
    if "%" not in seg:
        return seg.encode()
    out = bytearray()
    i = 0
    try:
        while i < len(seg):
            c = seg[i]
            if c == "%":
                out.append(int(seg[i + 1:i + 3], 16))
                i += 3
            else:
                out += c.encode()
                i += 1
    except ValueError:
        raise OscoreError("Proxy-Uri: bad percent-encoding")
    return bytes(out)


def decompose(uri, inner, outer):
    # Section 4.1.3.3: path and query become Inner Uri-Path/Uri-Query; scheme://authority stays an outer Proxy-Uri.
    s = str(uri, "utf-8")
    i = s.find("://")
    if i < 1:
        raise OscoreError("Proxy-Uri without a scheme")
    j = i + 3
    while j < len(s) and s[j] not in "/?#":
        j += 1
    outer.append((_PROXY_URI, s[:j].encode()))
    path, _, q = s[j:].partition("#")[0].partition("?")
    if path and path != "/":
        for seg in path.split("/")[1:]:
            inner.append((_URI_PATH, _pct(seg)))
    if q:
        for seg in q.split("&"):
            inner.append((_URI_QUERY, _pct(seg)))
