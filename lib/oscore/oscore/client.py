# OSCORE, the client role (RFC 8613 sections 8.1 and 8.4): protect a request, verify its responses. Separate from
# oscore.protect (shared parts and the server role), so a device that only serves never loads it.
from coap.msg import Message

from oscore import OscoreError, err
from oscore.context import aead
from oscore.protect import aad, open_inner, outer_of, parse_option, split

try:
    from micropython import const  # compile time on MicroPython: no code, no RAM
except ImportError:
    from coap import const  # CPython: coap's one fallback

_POST = const(2)
_FETCH = const(5)
_OBSERVE = const(6)
_OSCORE = const(9)


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
    ct = aead(ctx.sender_key, ctx.pure).encrypt(nonce, plain, aad(kid, piv, ci))
    out = Message(msg.type, _POST if observe is None else _FETCH, msg.mid, msg.token, ct)
    outer.append((_OSCORE, encode_option(piv, ctx.id_context, kid)))
    out.opts = outer
    out.remote = msg.remote
    return out, [ctx, kid, piv, nonce, observe is not None, -1]


def unprotect_response(binding, msg):
    """The inner response of an OSCORE response to the request of binding (section 8.4). Notifications must
    carry a Partial IV above the Notification Number (7.4.1); their Observe value becomes the Partial IV's
    low three bytes, so the observer orders them by it. Raises OscoreError (code 0: nothing to answer)."""
    ctx = binding[0]
    v, keep = outer_of(msg)
    ci = b""
    if ctx.class_i:
        from oscore import classi
        keep, ci = classi.outer(msg, ctx.class_i)
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
