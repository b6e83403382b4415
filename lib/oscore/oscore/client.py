# OSCORE, the client role (RFC 8613 sections 8.1 and 8.4): protect a request, verify its responses, and the
# client side of oscore.transform.Oscore (the context per peer, the Echo retry). Separate from oscore.transform
# (shared parts and the server role), so a device that only serves never loads it.
from coap.msg import Message

from oscore import OscoreError, err
from oscore import aead
from oscore.transform import aad, open_inner, oscore_option, split

try:
    from micropython import const  # compile time on MicroPython: no code, no RAM
except ImportError:
    from coap import const  # CPython: coap's one fallback

_POST = const(2)
_FETCH = const(5)
_OBSERVE = const(6)
_OSCORE = const(9)
_BLOCK2 = const(23)
_UNAUTHORIZED = const(129)


def encode_option(piv, kid_context=None, kid=None):
    if kid_context is None:  # the usual request: flags, Partial IV, kid (one allocation)
        if kid is None:
            return bytes((len(piv),)) + piv if piv else b""
        n = len(piv) + 1
        out = bytearray(n + len(kid))
        out[0] = n + 7  # 0x08 | len(piv)
        out[1:n] = piv
        out[n:] = kid
        return out
    out = bytearray((len(piv) | 0x10 | (0 if kid is None else 0x08),))
    out += piv
    out.append(len(kid_context))
    out += kid_context
    if kid is not None:
        out += kid
    return out


def protect_request(ctx, msg):
    """The OSCORE request for msg and the binding that verifies its responses."""
    plain, outer, observe = split(ctx, msg, True)
    piv = ctx.next_piv()
    kid = ctx.sender_id
    nonce = ctx.nonce(kid, piv)
    ci = ctx.class_i
    if ci:
        from oscore import classi
        ci = classi.of(outer, ci)
    ct = aead(ctx.sender_key, ctx.pure).encrypt_in_place(nonce, plain, aad(kid, piv, ci))
    out = object.__new__(Message)  # no __init__: no options list of its own to throw away
    if msg.type:  # attributes equal to Message's class defaults stay unset: a smaller attribute table
        out.type = msg.type
    out.code = _POST if observe is None else _FETCH
    out.mid = msg.mid
    out.token = msg.token
    out.payload = ct
    outer.append((_OSCORE, encode_option(piv, ctx.id_context, kid)))
    out.opts = outer
    if msg.remote is not None:
        out.remote = msg.remote
    return out, [ctx, kid, piv, nonce, observe is not None, -1]


def unprotect_response(binding, msg):
    """The inner response of an OSCORE response to the request of binding (section 8.4). Notifications must
    carry a Partial IV above the Notification Number (7.4.1); their Observe value becomes the Partial IV's
    low three bytes, so the observer orders them by it. Raises OscoreError (code 0: nothing to answer)."""
    ctx = binding[0]
    try:
        o = oscore_option(msg)
    except OscoreError as e:
        e.code = 0
        raise
    if o is None:
        e = err(24)
        e.response = msg
        raise e
    piv = o[0]
    keep = o[3]
    ci = b""
    if ctx.class_i:
        from oscore import classi
        keep, ci = classi.outer(msg, ctx.class_i)
    nonce = ctx.nonce(ctx.recipient_id, piv) if piv else binding[3]
    if nonce is None:
        raise err(25)
    try:
        m = open_inner(ctx, msg, nonce, binding[1], binding[2], ci, False)
    except OscoreError as e:
        e.code = 0
        raise
    if m.opt(_OBSERVE) is not None:
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
    for x in keep:
        m.add(x[0], x[1])
    return m


# --- oscore.transform.Oscore, client role (tf is the Oscore object)

def peer(tf, remote):
    """The client context for remote (None: unprotected)."""
    ctx = tf.client
    if type(ctx) is dict:
        if remote is None:
            raise OscoreError("per-peer contexts: the request names no remote")
        return ctx.get(remote)
    return ctx


def echoed(tf, ctx, m):
    """m, or a copy carrying the Echo of the last challenge when it came through ctx."""
    e = tf.echo
    if e is None or e[0] is not ctx:
        return m
    from oscore.answer import with_echo
    tf.echo = None
    return with_echo(m, e[1])


def challenged(tf, ctx, inner):
    """Keep the Echo of a 4.01 challenge that came through ctx for ctx's next request."""
    if inner.code == _UNAUTHORIZED:  # an Echo challenge? (RFC 9175 2.4)
        from oscore.answer import echo_of
        e = echo_of(inner)
        tf.echo = None if e is None else (ctx, e)


def outgoing(tf, req):
    """Oscore.outgoing_request: the protected request (req itself when its peer has no context, or when
    oscore.outer protected it already)."""
    if getattr(req, "oscore_raw", False):
        return req
    ctx = peer(tf, req.remote)
    if ctx is None:
        return req
    out, req.oscore = protect_request(ctx, echoed(tf, ctx, req))
    if req.oscore[4]:  # an Observe registration: notifications in Outer Block2 blocks ask again with it
        req.oscore_out = out
    return out


def incoming(tf, ep, req, resp):
    """Oscore.incoming_response: the verified inner response, None when it does not verify (or, for the first
    Outer Block2 block of a notification, not yet: oscore.outer.notification)."""
    if resp.opt(_BLOCK2) is not None:  # never on a whole protected message: Outer Block-wise
        from oscore.outer import notification
        return notification(tf, ep, req, resp)
    b = req.oscore
    try:
        inner = unprotect_response(b, resp)
    except OscoreError:
        return None
    challenged(tf, b[0], inner)
    return inner


async def request(tf, client, method, remote, path, outer=False, **kw):
    """client.request through tf (the endpoint's oscore.transform.Oscore), retried once when the server answers
    with an Echo challenge. outer=True: the request is protected as one message, whatever its payload's size, and
    sent and answered with Outer Block-wise where it does not fit one datagram (oscore.outer.request; payload,
    options, con, szx and timeout as client.request takes them, the response body at most tf.max_body bytes
    protected)."""
    for _ in range(2):
        if outer:
            from oscore.outer import send
            r = await send(tf, client, method, remote, path, **kw)
        else:
            r = await client.request(method, remote, path, **kw)
        if tf.echo is None or r.code != _UNAUTHORIZED:
            return r
    return r
