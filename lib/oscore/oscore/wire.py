# OSCORE's message encoding (RFC 8613 sections 4-6), shared by oscore.protect: the OSCORE option, the AAD,
# the split of an original message into plaintext and outer options, and the inner message of a plaintext.
from coap.msg import Message, decode
from coap import MessageError
from crypto import CryptoError

from oscore import OscoreError
from oscore.context import _bstr

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_BAD_REQUEST = const(128)
_BAD_OPTION = const(130)
_OBSERVE = const(6)
_OSCORE = const(9)
_PROXY_URI = const(35)
# Outer-only (Class U) options: Uri-Host, Uri-Port, Hop-Limit, Proxy-Uri, Proxy-Scheme. Every other option is
# Inner (Class E, the default for unlisted options, section 4.1); Observe is both (section 4.1.3.5). The
# options that are both E and U (Observe, Max-Age, Block*, Size*, No-Response) are hop-by-hop when outer:
# a receiver discards them with the other outer Class E options (section 8.2 step 1).
_U_ONLY = b"\x03\x07\x10\x23\x27"
_ENC0 = b"\x83\x68Encrypt0\x40"
# Options up to 39 that are plainly Inner: If-Match, ETag, If-None-Match, Location-Path, Uri-Path, Content-Format,
# Max-Age, Uri-Query, Accept, Location-Query, Block2, Block1, Size2 (the fast path of split()).
_INNER = b"\x01\x04\x05\x08\x0b\x0c\x0e\x0f\x11\x14\x17\x1b\x1c"



def bad(why):
    return OscoreError(why, _BAD_OPTION, "Failed to decode COSE")


def parse_option(v):
    """(Partial IV, kid context or None, kid or None) from an OSCORE option value (section 6.1)."""
    v = bytes(v)  # one copy: the slices below are then bytes
    n = len(v)
    if n == 0:
        return b"", None, None
    f = v[0]
    if f & 0xE0:
        raise bad("OSCORE option: reserved flag bits set")
    pl = f & 7
    if pl > 5:
        raise bad("OSCORE option: reserved Partial IV length")
    p = 1 + pl
    if p > n:
        raise bad("OSCORE option: truncated Partial IV")
    piv = v[1:p]
    kc = None
    if f & 0x10:
        if p >= n:
            raise bad("OSCORE option: truncated kid context")
        s = v[p]
        p += 1
        if p + s > n:
            raise bad("OSCORE option: truncated kid context")
        kc = v[p:p + s]
        p += s
    kid = None
    if f & 0x08:
        kid = v[p:]
    elif p != n:
        raise bad("OSCORE option: trailing bytes")
    if not f:
        raise bad("OSCORE option: flags 0 must be sent as an empty value")
    return piv, kc, kid


def encode_option(piv, kid_context=None, kid=None):
    f = len(piv)
    parts = [b"", piv]
    if kid_context is not None:
        f |= 0x10
        parts.append(bytes((len(kid_context),)))
        parts.append(kid_context)
    if kid is not None:
        f |= 0x08
        parts.append(kid)
    if not f:
        return b""
    parts[0] = bytes((f,))
    return b"".join(parts)


def aad(kid, piv, class_i=b""):
    """Enc_structure ["Encrypt0", h'', bstr .cbor [1, [10], request_kid, request_piv, options]] (section 5.4)."""
    if not class_i:  # kid <= 7 and Partial IV <= 5 bytes: every length fits its CBOR head
        b = bytearray(_ENC0)
        b.append(0x47 + len(kid) + len(piv))
        b += b"\x85\x01\x81\x0a"
        b.append(0x40 | len(kid))
        b += kid
        b.append(0x40 | len(piv))
        b += piv
        b.append(0x40)
        return b
    arr = b"".join((b"\x85\x01\x81\x0a", _bstr(kid), _bstr(piv), _bstr(class_i)))
    return _ENC0 + _bstr(arr)


def class_i_bytes(opts):
    # The Class I options as CoAP would encode them (delta from 0): a token-less message's bytes after the header.
    m = Message()
    m.opts = opts
    return bytes(m.encode()[4:])


def split(ctx, msg, request):
    """(plaintext, outer options, Observe value or None) of an original message (sections 4.1, 5.3)."""
    inner = Message()
    io = inner.opts
    outer = []
    observe = None
    ci = ctx.class_i
    # A built message's options are its (number, value) pairs (coap.msg): iterate them without a generator.
    for n, v in msg.opts if msg.buf is None else msg.items():
        if n > 39 or n in _INNER:  # the common case: Class E (every unlisted option is, section 4.1)
            if ci and n in ci:
                outer.append((n, v))
            else:
                io.append((n, v))
        elif n == _OBSERVE:
            observe = v
            io.append((n, v if request else b""))  # a notification's Inner Observe is empty (4.1.3.5.2)
            outer.append((n, v))
        elif n == _OSCORE:
            raise OscoreError("message is already OSCORE-protected")
        elif request and n == _PROXY_URI:
            from oscore.proxyuri import decompose
            decompose(v, io, outer)
        elif n in _U_ONLY or n in ci:
            outer.append((n, v))
        else:
            io.append((n, v))
    inner.payload = msg.payload
    plain = inner.encode()
    plain[3] = msg.code  # code | options | 0xFF payload: the encoding after a token-less header's first 3 bytes
    return memoryview(plain)[3:], outer, observe


def class_i_of(ctx, opts):
    ci = ctx.class_i
    return class_i_bytes([x for x in opts if x[0] in ci]) if ci else b""


def outer_of(msg, ci):
    """In one pass over a received message: the OSCORE option value (None: absent), the outer options a receiver
    keeps (Class U and the Class I numbers ci), and the Class I bytes for the AAD."""
    osc = None
    keep = []
    cis = None
    for n, v in msg.items():
        if n == _OSCORE:
            osc = v
        elif n < 256 and n in _U_ONLY:
            keep.append((n, v))
        elif n in ci:
            keep.append((n, v))
            if cis is None:
                cis = []
            cis.append((n, v))
    return osc, keep, class_i_bytes(cis) if cis else b""


def open_inner(ctx, msg, nonce, kid, piv, ci, request):
    ct = msg.payload
    if not ct:
        raise bad("OSCORE message without a COSE ciphertext")
    try:
        pt = ctx.recipient.decrypt(nonce, ct, aad(kid, piv, ci))
    except CryptoError:  # InvalidTag, or a length CCM refuses
        raise OscoreError("decryption failed", _BAD_REQUEST, "Decryption failed")
    if not pt:
        raise bad("empty plaintext")
    tok = msg.token
    t = len(tok)
    mid = msg.mid
    buf = bytearray((0x40 | (msg.type << 4) | t, pt[0], mid >> 8, mid & 255))
    buf += tok
    buf += memoryview(pt)[1:]
    try:
        m = decode(buf)
    except MessageError:
        raise bad("malformed inner message")
    c = m.code >> 5
    if (c != 0 if request else c not in (2, 4, 5)) or not m.code:
        raise bad("inner code of the wrong class")
    if m.has(_OSCORE):
        raise bad("nested OSCORE")
    m.remote = msg.remote
    return m


def with_outer(m, keep):
    for n, v in keep:
        m.add(n, v)
    return m


