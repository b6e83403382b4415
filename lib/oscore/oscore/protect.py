# OSCORE message protection (RFC 8613 sections 4-8) over coap.msg messages, sans-IO: the parts both roles use
# and the server role; the client role is in oscore.client (a device that only serves never loads it).
#
# Server: unprotect_request(contexts, outer) -> (inner, binding); protect_response(binding, msg) -> outer.
# Client (oscore.client): protect_request(ctx, msg) -> (outer, binding); unprotect_response(binding, outer).
# A binding ties responses to their request (the request's kid and Partial IV are in every response's AAD,
# section 7.1): [context, request kid, request Partial IV, request nonce (None once a response used it),
# Observe request?, Notification Number]. A list, not a class, to keep it small.
#
# Failures raise oscore.OscoreError whose code/diag say which unprotected answer section 8 gives (code 0: none,
# e.g. on the client side); oscore.answer.EchoRequired when a context that lost its replay window needs an Echo round
# trip (Appendix B.1.2): answer it with oscore.answer.echo_response(err) (protected with the server's own Partial
# IV); oscore.answer also builds the unprotected section 8 answers and the client's Echo retry.
from coap.msg import Message, decode
from coap import MessageError
from crypto import CryptoError

from oscore import err
from oscore.context import aead

try:
    from micropython import const  # compile time on MicroPython: no code, no RAM
except ImportError:
    from coap import const  # CPython: coap's one fallback

_CHANGED = const(68)
_CONTENT = const(69)
_OBSERVE = const(6)
_OSCORE = const(9)
_PROXY_URI = const(35)
_WINDOW = const(32)  # oscore.context.WINDOW
_WINDOW_MASK = const(0xFFFFFFFF)

# Outer-only (Class U) options: Uri-Host, Uri-Port, Hop-Limit, Proxy-Uri, Proxy-Scheme. Every other option is
# Inner (Class E, the default for unlisted options, section 4.1); Observe is both (section 4.1.3.5). The
# options that are both E and U (Observe, Max-Age, Block*, Size*, No-Response) are hop-by-hop when outer:
# a receiver discards them with the other outer Class E options (section 8.2 step 1).
U_ONLY = b"\x03\x07\x10\x23\x27"


def parse_option(v):
    """(Partial IV, kid context or None, kid or None) from an OSCORE option value (section 6.1)."""
    if type(v) is not bytes:
        v = bytes(v)  # one copy: the slices below are then bytes
    n = len(v)
    if n == 0:
        return b"", None, None
    f = v[0]
    if f & 0xE0:
        raise err(7)
    pl = f & 7
    if pl > 5:
        raise err(8)
    p = 1 + pl
    if p > n:
        raise err(9)
    piv = v[1:p]
    kc = None
    if f & 0x10:
        if p >= n:
            raise err(10)
        s = v[p]
        p += 1
        if p + s > n:
            raise err(10)
        kc = v[p:p + s]
        p += s
    kid = None
    if f & 0x08:
        kid = v[p:]
    elif p != n:
        raise err(11)
    if not f:
        raise err(12)
    return piv, kc, kid


def aad(kid, piv, class_i=b""):
    """Enc_structure ["Encrypt0", h'', bstr .cbor [1, [10], request_kid, request_piv, options]] (section 5.4);
    class_i: the Class I options' bytes (empty, or an empty tuple: none)."""
    if not class_i:  # kid <= 7 and Partial IV <= 5 bytes: every length fits its CBOR head
        b = bytearray(b"\x83\x68Encrypt0\x40")
        b.append(0x47 + len(kid) + len(piv))
        b += b"\x85\x01\x81\x0a"
        b.append(0x40 | len(kid))
        b += kid
        b.append(0x40 | len(piv))
        b += piv
        b.append(0x40)
        return b
    from oscore import classi
    return classi.aad(kid, piv, class_i)


_plain = None  # the Message split() encodes plaintexts with, made once (split runs to its end without yielding)


def split(ctx, msg, request):
    """(plaintext, outer options, Observe value or None) of an original message (sections 4.1, 5.3)."""
    global _plain
    inner = _plain
    if inner is None:
        inner = _plain = Message()
    inner.opts = io = []
    outer = []
    observe = None
    ci = ctx.class_i
    # A built message's options are its (number, value) pairs (coap.msg): iterate them without a generator.
    for x in msg.opts if msg.buf is None else msg.items():
        n = x[0]
        # The common case, Class E (every unlisted option is, section 4.1): options above 39, and those up to 39
        # that are plainly Inner: If-Match, ETag, If-None-Match, Location-Path, Uri-Path, Content-Format, Max-Age,
        # Uri-Query, Accept, Location-Query, Block2, Block1, Size2.
        if n > 39 or n in b"\x01\x04\x05\x08\x0b\x0c\x0e\x0f\x11\x14\x17\x1b\x1c":
            if ci and n in ci:
                outer.append(x)
            else:
                io.append(x)
        elif n == _OBSERVE:
            observe = x[1]
            io.append(x if request else (n, b""))  # a notification's Inner Observe is empty (4.1.3.5.2)
            outer.append(x)
        elif n == _OSCORE:
            raise err(18)
        elif request and n == _PROXY_URI:
            from oscore.proxyuri import decompose
            decompose(x[1], io, outer)
        elif n in U_ONLY or n in ci:
            outer.append(x)
        else:
            io.append(x)
    inner.payload = msg.payload
    plain = inner.encode()
    inner.opts = inner.payload = None  # keeps nothing of msg
    plain[3] = msg.code  # code | options | 0xFF payload: the encoding after a token-less header's first 3 bytes
    return memoryview(plain)[3:], outer, observe


def outer_of(msg):
    """In one pass over a received message: the OSCORE option value (None: absent) and the Class U options a
    receiver keeps (oscore.classi.outer adds a context's Class I options)."""
    osc = None
    keep = []
    o = msg.opts
    b = msg.buf
    if b is None:  # a built message: (number, value) pairs
        for x in o:
            n = x[0]
            if n == _OSCORE:
                osc = x[1]
            elif n < 256 and n in U_ONLY:
                keep.append(x)
    else:  # a decoded one: the flat [number, start, end, ...] index into its datagram (coap.msg)
        for i in range(0, len(o), 3):
            n = o[i]
            if n == _OSCORE:
                osc = b[o[i + 1]:o[i + 2]]
            elif n < 256 and n in U_ONLY:
                keep.append((n, b[o[i + 1]:o[i + 2]]))
    return osc, keep


def open_inner(ctx, msg, nonce, kid, piv, class_i, request):
    ct = msg.payload
    if not ct:
        raise err(13)
    try:
        pt = aead(ctx.recipient_key, ctx.pure).decrypt(nonce, ct, aad(kid, piv, class_i))
    except CryptoError:  # InvalidTag, or a length CCM refuses
        raise err(19)
    if not pt:
        raise err(14)
    buf = bytearray(len(pt) + 3)  # the inner message's datagram, token-less: header, then pt after its code
    buf[0] = 0x40 | (msg.type << 4)
    buf[1] = pt[0]
    buf[4:] = memoryview(pt)[1:]
    try:
        m = decode(buf)
    except MessageError:
        raise err(15)
    c = m.code >> 5
    if (c != 0 if request else c not in (2, 4, 5)) or not m.code:
        raise err(16)
    m.mid = msg.mid
    m.token = msg.token
    m.remote = msg.remote
    o = m.opts  # decoded: the flat [number, start, end, ...] index, numbers ascending (coap.msg)
    observe = False
    for i in range(0, len(o), 3):
        n = o[i]
        if n > _OSCORE:
            break
        if n == _OSCORE:
            raise err(17)
        if n == _OBSERVE:
            observe = True
    return m, observe


def unprotect_request(contexts, msg):
    """(inner request, binding) of an OSCORE request (section 8.2). Raises OscoreError (answer with
    error_response) or EchoRequired (answer with echo_response); either way the request is not processed and
    the replay window is unchanged."""
    v, keep = outer_of(msg)
    if v is None:
        raise err(20)
    piv, kc, kid = parse_option(v)
    if not piv or kid is None:
        raise err(21)
    for ctx in contexts:  # the context whose Recipient ID is kid (and ID Context kc when one is given)
        if ctx.recipient_id == kid and (kc is None or ctx.id_context == kc):
            break
    else:
        raise err(22)
    seq = int.from_bytes(piv, "big")
    synced = ctx.synced
    if synced:  # a replay (section 7.4)?
        d = ctx.top - seq
        if d >= 0 and (d >= _WINDOW or (ctx.bits >> d) & 1):
            raise err(23)
    ci = b""
    if ctx.class_i:
        from oscore import classi
        keep, ci = classi.outer(msg, ctx.class_i)
    nonce = ctx.nonce(kid, piv)
    m, observe = open_inner(ctx, msg, nonce, kid, piv, ci, True)
    binding = [ctx, kid, piv, nonce, observe, -1]
    if synced:  # mark seq received (section 7.4): bit d of bits is top - d
        d = seq - ctx.top
        if d > 0:
            ctx.bits = ((ctx.bits << d) | 1) & _WINDOW_MASK if d < _WINDOW else 1
            ctx.top = seq
        else:
            ctx.bits |= 1 << -d
    else:
        from oscore.answer import resync
        resync(ctx, m, binding, seq)  # raises EchoRequired unless m returns the challenge's Echo
    for n, v in keep:
        m.add(n, v)
    return m, binding


def protect_response(binding, msg, own_piv=False):
    """The OSCORE response for msg. Notifications (Observe) and own_piv=True carry the server's own Partial IV;
    other responses reuse the request's nonce, once (a second response on the same binding gets its own)."""
    ctx = binding[0]
    plain, outer, observe = split(ctx, msg, False)
    nonce = binding[3]
    if observe is not None or own_piv or nonce is None:
        piv = ctx.next_piv()
        nonce = ctx.nonce(ctx.sender_id, piv)
    else:
        piv = b""
        binding[3] = None
    ci = ctx.class_i
    if ci:
        from oscore import classi
        ci = classi.of(outer, ci)
    ct = aead(ctx.sender_key, ctx.pure).encrypt(nonce, plain, aad(binding[1], binding[2], ci))
    out = Message(msg.type, _CHANGED if observe is None else _CONTENT, msg.mid, msg.token, ct)
    outer.append((_OSCORE, bytes((len(piv),)) + piv if piv else b""))  # flags: the Partial IV's length only
    out.opts = outer
    out.remote = msg.remote
    return out
