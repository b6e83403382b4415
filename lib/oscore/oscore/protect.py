# OSCORE message protection (RFC 8613 sections 4-8) over coap.msg messages, sans-IO.
#
# Client: protect_request(ctx, msg) -> (outer, binding); unprotect_response(binding, outer) -> inner.
# Server: unprotect_request(contexts, outer) -> (inner, binding); protect_response(binding, msg) -> outer.
# A binding ties responses to their request (the request's kid and Partial IV are in every response's AAD,
# section 7.1): [context, request kid, request Partial IV, request nonce (None once a response used it),
# Observe request?, Notification Number]. A list, not a class, to keep it small.
#
# Failures raise oscore.OscoreError whose code/diag say which unprotected answer section 8 gives (code 0: none,
# e.g. on the client side); oscore.EchoRequired when a context that lost its replay window needs an Echo round
# trip (Appendix B.1.2): answer it with oscore.answer.echo_response(err) (protected with the server's own Partial
# IV); oscore.answer also builds the unprotected section 8 answers and the client's Echo retry.
from coap.msg import Message, decode
from coap import MessageError
from crypto import CryptoError
from crypto.util import ct_equal

from oscore import OscoreError, EchoRequired, err
from oscore.context import _bstr

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_POST = const(2)
_FETCH = const(5)
_CHANGED = const(68)
_CONTENT = const(69)
_UNAUTHORIZED = const(129)
_OBSERVE = const(6)
_OSCORE = const(9)
_PROXY_URI = const(35)
_ECHO = const(252)

# Outer-only (Class U) options: Uri-Host, Uri-Port, Hop-Limit, Proxy-Uri, Proxy-Scheme. Every other option is
# Inner (Class E, the default for unlisted options, section 4.1); Observe is both (section 4.1.3.5). The
# options that are both E and U (Observe, Max-Age, Block*, Size*, No-Response) are hop-by-hop when outer:
# a receiver discards them with the other outer Class E options (section 8.2 step 1).
_U_ONLY = b"\x03\x07\x10\x23\x27"
_ENC0 = b"\x83\x68Encrypt0\x40"
# Options up to 39 that are plainly Inner: If-Match, ETag, If-None-Match, Location-Path, Uri-Path, Content-Format,
# Max-Age, Uri-Query, Accept, Location-Query, Block2, Block1, Size2 (the fast path of split()).
_INNER = b"\x01\x04\x05\x08\x0b\x0c\x0e\x0f\x11\x14\x17\x1b\x1c"


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


def encode_option(piv, kid_context=None, kid=None):
    f = len(piv) | (0 if kid_context is None else 0x10) | (0 if kid is None else 0x08)
    if not f:
        return b""
    out = bytearray((f,))
    out += piv
    if kid_context is not None:
        out.append(len(kid_context))
        out += kid_context
    if kid is not None:
        out += kid
    return out


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
    for x in msg.opts if msg.buf is None else msg.items():
        n = x[0]
        if n > 39 or n in _INNER:  # the common case: Class E (every unlisted option is, section 4.1)
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
        elif n in _U_ONLY or n in ci:
            outer.append(x)
        else:
            io.append(x)
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
        raise err(13)
    try:
        pt = ctx.recipient.decrypt(nonce, ct, aad(kid, piv, ci))
    except CryptoError:  # InvalidTag, or a length CCM refuses
        raise err(19)
    if not pt:
        raise err(14)
    tok = msg.token
    t = len(tok)
    mid = msg.mid
    buf = bytearray((0x40 | (msg.type << 4) | t, pt[0], mid >> 8, mid & 255))
    buf += tok
    buf += memoryview(pt)[1:]
    try:
        m = decode(buf)
    except MessageError:
        raise err(15)
    c = m.code >> 5
    if (c != 0 if request else c not in (2, 4, 5)) or not m.code:
        raise err(16)
    if m.has(_OSCORE):
        raise err(17)
    m.remote = msg.remote
    return m


def find(contexts, kid, kid_context=None):
    """The context whose Recipient ID is kid (and ID Context kid_context when one is given), or None."""
    for c in contexts:
        if c.recipient_id == kid and (kid_context is None or c.id_context == kid_context):
            return c
    return None


def protect_request(ctx, msg):
    """The OSCORE request for msg and the binding that verifies its responses."""
    plain, outer, observe = split(ctx, msg, True)
    piv = ctx.next_piv()
    kid = ctx.sender_id
    nonce = ctx.nonce(kid, piv)
    ct = ctx.sender.encrypt(nonce, plain, aad(kid, piv, class_i_of(ctx, outer)))
    out = Message(msg.type, _POST if observe is None else _FETCH, msg.mid, msg.token, ct)
    outer.append((_OSCORE, encode_option(piv, ctx.id_context, kid)))
    out.opts = outer
    out.remote = msg.remote
    return out, [ctx, kid, piv, nonce, observe is not None, -1]


def unprotect_request(contexts, msg):
    """(inner request, binding) of an OSCORE request (section 8.2). Raises OscoreError (answer with
    error_response) or EchoRequired (answer with echo_response); either way the request is not processed and
    the replay window is unchanged."""
    v, keep, ci = outer_of(msg, ())
    if v is None:
        raise err(20)
    piv, kc, kid = parse_option(v)
    if not piv or kid is None:
        raise err(21)
    ctx = find(contexts, kid, kc)
    if ctx is None:
        raise err(22)
    seq = int.from_bytes(piv, "big")
    if ctx.synced and not ctx.fresh(seq):
        raise err(23)
    if ctx.class_i:
        keep, ci = outer_of(msg, ctx.class_i)[1:]
    nonce = ctx.nonce(kid, piv)
    m = open_inner(ctx, msg, nonce, kid, piv, ci, True)
    binding = [ctx, kid, piv, nonce, m.has(_OBSERVE), -1]
    if ctx.synced:
        ctx.accept(seq)
    else:
        e = m.opt(_ECHO)
        if e is None or ctx.echo is None or not ct_equal(e, ctx.echo):
            x = EchoRequired(binding, ctx.challenge())
            x.request = m
            raise x
        ctx.resync(seq)
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
    ct = ctx.sender.encrypt(nonce, plain, aad(binding[1], binding[2], class_i_of(ctx, outer)))
    out = Message(msg.type, _CHANGED if observe is None else _CONTENT, msg.mid, msg.token, ct)
    outer.append((_OSCORE, encode_option(piv)))
    out.opts = outer
    out.remote = msg.remote
    return out


def unprotect_response(binding, msg):
    """The inner response of an OSCORE response to the request of binding (section 8.4). Notifications must
    carry a Partial IV above the Notification Number (7.4.1); their Observe value becomes the Partial IV's
    low three bytes, so the observer orders them by it. Raises OscoreError (code 0: nothing to answer)."""
    ctx = binding[0]
    v, keep, ci = outer_of(msg, ctx.class_i)
    if v is None:
        e = err(24)
        e.response = msg
        raise e
    try:
        piv = parse_option(v)[0]
    except OscoreError as e:
        e.code = 0
        raise
    nonce = ctx.nonce(ctx.recipient_id, piv) if piv else binding[3]
    if nonce is None:
        raise err(25)
    try:
        m = open_inner(ctx, msg, nonce, binding[1], binding[2], ci, False)
    except OscoreError as e:
        e.code = 0
        raise
    if m.has(_OBSERVE):
        if not binding[4]:
            raise err(26)
        if piv:
            seq = int.from_bytes(piv, "big")
            if seq <= binding[5]:
                raise err(27)
            binding[5] = seq
            m.opts = [x for x in m.items() if x[0] != _OBSERVE]
            m.buf = None
            m.add(_OBSERVE, seq & 0xFFFFFF)
    if not piv:
        binding[3] = None
    for n, v in keep:
        m.add(n, v)
    return m
