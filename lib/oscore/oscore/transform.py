# OSCORE message protection (RFC 8613 sections 4-8) over coap.msg messages, sans-IO, and OSCORE on a CoAP endpoint
# through its message-layer transform seam (coap/transform.py). One module: what a device that serves needs (each
# module costs RAM of its own); the client role is in oscore.client (a device that only serves never loads it).
#
# Server: unprotect_request(contexts, outer) -> (inner, binding); protect_response(binding, msg) -> outer.
# Client (oscore.client): protect_request(ctx, msg) -> (outer, binding); unprotect_response(binding, outer).
# A binding ties responses to their request (the request's kid and Partial IV are in every response's AAD,
# section 7.1): [context, request kid, request Partial IV, request nonce (None once a response used it),
# Observe request?, Notification Number (, the Outer Block-wise state of oscore.outer)]. A list, not a class, to
# keep it small.
#
# Failures raise oscore.OscoreError whose code/diag say which unprotected answer section 8 gives (code 0: none,
# e.g. on the client side); oscore.answer.EchoRequired when a context that lost its replay window needs an Echo
# round trip (Appendix B.1.2); oscore.answer builds the unprotected section 8 answers, the Echo challenge and the
# client's Echo retry.
#
# On an endpoint: ep.transform = Oscore(contexts=[...], client=ctx, require=("/lamp",))
# Server role: an OSCORE request is verified against `contexts` (its Recipient IDs); the handler gets the inner
# request, and context_of(req) says which context it came through. A failure is answered as section 8 says
# (unprotected 4.00/4.01/4.02, Outer Max-Age 0) and reaches no handler; a context that lost its replay window
# answers with a protected 4.01 + Echo. Responses and notifications to a protected request are protected.
# An unprotected request to a path in `require` gets 4.01.
# Client role: every request goes out through `client`: one Context for every peer, or a dict {remote: Context}
# (a peer not in it is spoken to unprotected), None: unprotected. A 4.01 Echo challenge is kept for its context
# and that context's next request carries the Echo: oscore.client.request() retries once with it.
# A dict of contexts picks by the inner request's .remote: oscore.client.request(..., outer=True) and
# oscore.outer.observe set it; a plain client.request has it where the coap requester sets it before
# outgoing_request, and fails (OscoreError) where it does not, rather than guess the peer or send in clear.
from coap.msg import Message, decode

from oscore import OscoreError, aead, err

try:
    from micropython import const  # compile time on MicroPython: no code, no RAM
except ImportError:
    from coap import const  # CPython: coap's one fallback

_CHANGED = const(68)
_CONTENT = const(69)
_OBSERVE = const(6)
_OSCORE = const(9)
_BLOCK2 = const(23)
_BLOCK1 = const(27)
_PROXY_URI = const(35)
_SERVER_ERROR = const(160)
_WINDOW = const(32)  # oscore.WINDOW
_WINDOW_MASK = const(0xFFFFFFFF)
del const  # only the constants above use it (and a module global costs RAM)

# The class of each option number below 40 (section 4.1): 1 Outer only (Class U: Uri-Host, Uri-Port, Hop-Limit,
# Proxy-Uri, Proxy-Scheme), 2 Observe (both Inner and Outer, section 4.1.3.5), 3 OSCORE; 0, and every number
# from 40 on, Inner (Class E, the default for unlisted options). The options that are both E and U (Observe,
# Max-Age, Block*, Size*, No-Response) are hop-by-hop when outer: a receiver discards them with the other outer
# Class E options (section 8.2 step 1).
OPTION_CLASS = (b"\x00\x00\x00\x01\x00\x00\x02\x01\x00\x03\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00"
                b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x01")


def oscore_option(msg):
    """(Partial IV, kid context or None, kid or None, the Class U options a receiver keeps) of a received message,
    in one pass over its options; None when it has no OSCORE option (section 6.1; oscore.classi.outer adds a
    context's Class I options)."""
    v = None
    keep = ()  # a tuple: no allocation unless the message has some
    o = msg.opts
    b = msg.buf
    if b is None:  # a built message: (number, value) pairs
        for x in o:
            n = x[0]
            if n == _OSCORE:
                v = x[1]
            elif n < 40 and OPTION_CLASS[n] == 1:
                keep += (x,)
    else:  # a decoded one: the flat [number, start, end, ...] index into its datagram (coap.msg)
        for i in range(0, len(o), 3):
            n = o[i]
            if n == _OSCORE:
                v = b[o[i + 1]:o[i + 2]]
            elif n < 40 and OPTION_CLASS[n] == 1:
                keep += ((n, b[o[i + 1]:o[i + 2]]),)
    if v is None:
        return None
    if type(v) is not bytes:
        v = bytes(v)  # one copy: the slices below are then bytes
    n = len(v)
    piv = v
    kc = kid = None
    if n:
        f = v[0]
        if f & 0xE0:
            raise err(7)
        p = 1 + (f & 7)
        if p > 6:
            raise err(8)
        if p > n:
            raise err(9)
        piv = v[1:p]
        if f & 0x10:
            if p >= n:
                raise err(10)
            s = v[p]
            p += 1
            if p + s > n:
                raise err(10)
            kc = v[p:p + s]
            p += s
        if f & 0x08:
            kid = v[p:]
        elif p != n:
            raise err(11)
        if not f:
            raise err(12)
    return piv, kc, kid, keep


def aad(kid, piv, class_i):
    """Enc_structure ["Encrypt0", h'', bstr .cbor [1, [10], request_kid, request_piv, options]] (section 5.4);
    class_i: the Class I options' bytes (empty, or an empty tuple: none)."""
    if class_i:
        from oscore import classi
        return classi.aad(kid, piv, class_i)
    # kid <= 7 and Partial IV <= 5 bytes: every length fits its CBOR head
    b = bytearray(b"\x83\x68Encrypt0\x40\x47\x85\x01\x81\x0a")
    b[11] += len(kid) + len(piv)
    b.append(0x40 | len(kid))
    b += kid
    b.append(0x40 | len(piv))
    b += piv
    b.append(0x40)
    return b


def split(ctx, msg, request):
    """(plaintext, outer options, Observe value or None) of an original message (sections 4.1, 5.3)."""
    ci = ctx.class_i
    opts = msg.opts if msg.buf is None else list(msg.items())  # (number, value) pairs
    for x in opts:
        n = x[0]
        if (n < 40 and OPTION_CLASS[n]) or (ci and n in ci):
            break
    else:  # the common case, every option Class E: the message's own encoding after its token is the plaintext
        plain = msg.encode()
        i = 3 + len(msg.token)
        plain[:i] = b""  # in place: code | options | 0xFF payload
        plain[0] = msg.code
        return plain, [], None
    inner = Message()
    inner.opts = io = []
    outer = []
    observe = None
    for x in opts:
        n = x[0]
        k = OPTION_CLASS[n] if n < 40 else 0
        if not k:
            (outer if ci and n in ci else io).append(x)
        elif k == 2:
            observe = x[1]
            io.append(x if request else (n, b""))  # a notification's Inner Observe is empty (4.1.3.5.2)
            outer.append(x)
        elif k == 3:
            raise err(18)
        elif request and n == _PROXY_URI:
            from oscore.proxyuri import decompose
            decompose(x[1], io, outer)
        else:
            outer.append(x)
    inner.payload = msg.payload
    plain = inner.encode()
    plain[:3] = b""  # in place: the encoding after a token-less header's first 3 bytes
    plain[0] = msg.code
    return plain, outer, observe


def open_inner(ctx, msg, nonce, kid, piv, class_i, request):
    ct = msg.payload
    if not ct:
        raise err(13)
    # the inner message's datagram, token-less: a 4-byte header whose last byte is the plaintext's first (its
    # code), so the plaintext is decrypted straight into it (the tag is 8 bytes)
    buf = bytearray(len(ct) - 5 if len(ct) > 8 else 3)
    try:
        n = aead(ctx.recipient_key, ctx.pure).decrypt_into(nonce, ct, aad(kid, piv, class_i), buf, 3)
    except ValueError:  # crypto.CryptoError: InvalidTag, or a length CCM refuses
        raise err(19)
    if not n:
        raise err(14)
    buf[0] = 0x40 | (msg.type << 4)
    buf[1] = buf[3]
    try:
        m = decode(buf)
    except ValueError:  # coap.MessageError
        raise err(15)
    c = m.code
    if (c >= 32 if request else c < 64 or c >= 192 or 96 <= c < 128) or not c:
        raise err(16)
    o = m.opts  # the decoded index is in option order: an OSCORE option would come before any above 9
    if o and o[0] <= _OSCORE and m.opt(_OSCORE) is not None:
        raise err(17)
    m.mid = msg.mid
    m.token = msg.token
    if msg.remote is not None:  # else Message's class default, with no attribute of its own
        m.remote = msg.remote
    return m


def unprotect_request(contexts, msg):
    """(inner request, binding) of an OSCORE request (section 8.2). Raises OscoreError (answer with
    error_response) or EchoRequired (answer with echo_response); either way the request is not processed and
    the replay window is unchanged."""
    o = oscore_option(msg)
    if o is None:
        raise err(20)
    piv, kc, kid, keep = o
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
    m = open_inner(ctx, msg, nonce, kid, piv, ci, True)
    binding = [ctx, kid, piv, nonce, m.opt(_OBSERVE) is not None, -1]
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
    for x in keep:
        m.add(x[0], x[1])
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
        o = bytes((len(piv),)) + piv  # flags: the Partial IV's length only
    else:
        o = b""
        binding[3] = None
    ci = ctx.class_i
    if ci:
        from oscore import classi
        ci = classi.of(outer, ci)
    ct = aead(ctx.sender_key, ctx.pure).encrypt_in_place(nonce, plain, aad(binding[1], binding[2], ci))
    out = object.__new__(Message)  # no __init__: no options list of its own to throw away
    if msg.type:  # attributes equal to Message's class defaults stay unset: a smaller attribute table
        out.type = msg.type
    out.code = _CHANGED if observe is None else _CONTENT
    out.mid = msg.mid
    out.token = msg.token
    out.payload = ct
    outer.append((_OSCORE, o))
    out.opts = outer
    if msg.remote is not None:
        out.remote = msg.remote
    return out


def context_of(req):
    """The security context a (server-side, inner) request came through, or None if it was unprotected."""
    b = getattr(req, "oscore", None)
    return None if b is None else b[0]


class Oscore:
    def __init__(self, contexts=(), client=None, require=(), max_body=4096):
        self.contexts = list(contexts)
        self.client = client
        self.require = require  # paths (exact, or prefixes ending in "/") that only OSCORE may reach
        self.echo = None  # client role: (context, Echo) of the last challenge, sent with its next request
        self.max_body = max_body  # the largest protected message put together from Outer Block-wise blocks
        self.blocks = None  # oscore.outer.Blocks, made on the first Outer Block-wise transfer

    # --- server role (the rare paths, refusals and Outer Block-wise, are in oscore.answer and oscore.outer)

    def incoming_request(self, ep, req):
        osc = req.opt(_OSCORE)
        if osc is None:
            if self.require:
                from oscore.answer import unprotected
                return unprotected(self, req)
            return req
        ob = None
        if req.opt(_BLOCK1) is not None or req.opt(_BLOCK2) is not None:  # Outer Block-wise (4.1.3.4.2)
            from oscore.outer import incoming
            req = incoming(self, req, osc)  # an answer, or the whole protected request
            if req.code >= 64:
                return req
            ob = req.oscore_outer
        try:
            inner, binding = unprotect_request(self.contexts, req)
        except (OscoreError, MemoryError) as e:  # the section 8 answer, the Echo challenge (answer.EchoRequired), 5.00
            from oscore.answer import refusal
            return refusal(e, req)
        inner.oscore = binding
        if ob is not None:
            binding.append(ob)  # binding[6]: the Outer Block-wise state for the response (oscore.outer)
        return inner

    def outgoing_response(self, ep, req, resp):
        b = getattr(req, "oscore", None)
        if b is None:
            return resp
        try:
            out = protect_response(b, resp)
        except OscoreError:  # the context cannot protect any more: never send the inner response in clear
            return Message(code=_SERVER_ERROR)
        if len(out.payload) + 64 > ep.t.max_message_size or len(b) > 6:
            from oscore.outer import outgoing
            return outgoing(self, ep, req, out)
        return out

    # --- client role (oscore.client)

    def outgoing_request(self, ep, req):
        if self.client is None:
            return req
        from oscore.client import outgoing
        return outgoing(self, req)

    def incoming_response(self, ep, req, resp):
        if getattr(req, "oscore", None) is None:  # sent unprotected, or protected by oscore.outer itself
            return resp
        from oscore.client import incoming
        return incoming(self, ep, req, resp)
