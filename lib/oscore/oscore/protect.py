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
# trip (Appendix B.1.2): answer it with echo_response(err), which is protected with the server's own Partial IV.
from coap.msg import Message
from crypto.util import ct_equal

from oscore import OscoreError, EchoRequired
from oscore.wire import bad, split, class_i_of, outer_of, open_inner, with_outer, encode_option, aad, parse_option

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_CON = const(0)
_ACK = const(2)
_NON = const(1)
_POST = const(2)
_FETCH = const(5)
_CHANGED = const(68)
_CONTENT = const(69)
_UNAUTHORIZED = const(129)
_OBSERVE = const(6)
_OSCORE = const(9)
_MAX_AGE = const(14)
_ECHO = const(252)


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
        raise OscoreError("not an OSCORE request", _UNAUTHORIZED, "OSCORE required")
    piv, kc, kid = parse_option(v)
    if not piv or kid is None:
        raise bad("OSCORE request without Partial IV or kid")
    ctx = find(contexts, kid, kc)
    if ctx is None:
        raise OscoreError("no security context for this kid", _UNAUTHORIZED, "Security context not found")
    seq = int.from_bytes(piv, "big")
    if ctx.synced and not ctx.fresh(seq):
        raise OscoreError("replayed request", _UNAUTHORIZED, "Replay detected")
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
            err = EchoRequired(binding, ctx.challenge())
            err.request = m
            raise err
        ctx.resync(seq)
    return with_outer(m, keep), binding


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
        e = OscoreError("response is not OSCORE-protected (code %d.%02d)" % (msg.code >> 5, msg.code & 31))
        e.response = msg
        raise e
    try:
        piv = parse_option(v)[0]
    except OscoreError as e:
        e.code = 0
        raise
    nonce = ctx.nonce(ctx.recipient_id, piv) if piv else binding[3]
    if nonce is None:
        raise OscoreError("a second response without Partial IV")
    try:
        m = open_inner(ctx, msg, nonce, binding[1], binding[2], ci, False)
    except OscoreError as e:
        e.code = 0
        raise
    if m.has(_OBSERVE):
        if not binding[4]:
            raise OscoreError("Observe in a response to a request without Observe")
        if piv:
            seq = int.from_bytes(piv, "big")
            if seq <= binding[5]:
                raise OscoreError("replayed or stale notification")
            binding[5] = seq
            m.opts = [x for x in m.items() if x[0] != _OBSERVE]
            m.buf = None
            m.add(_OBSERVE, seq & 0xFFFFFF)
    if not piv:
        binding[3] = None
    return with_outer(m, keep)


def error_response(err, request):
    """The unprotected answer section 8 gives for err (None when err.code is 0): the code, Outer Max-Age 0 and
    the diagnostic payload, as an ACK to a CON (or NON to a NON) request."""
    if not err.code:
        return None
    t = _ACK if request.type == _CON else _NON
    m = Message(t, err.code, request.mid, request.token, err.diag or b"")
    m.add(_MAX_AGE, 0)
    m.remote = request.remote
    return m


def echo_response(err, mtype=None, mid=None):
    """The protected 4.01 that carries only Echo (RFC 8613 B.1.2, RFC 9175 2.4), with the server's own Partial
    IV, for an EchoRequired from unprotect_request."""
    req = err.request
    if mtype is None:
        mtype = _ACK if req.type == _CON else _NON
    m = Message(mtype, _UNAUTHORIZED, req.mid if mid is None else mid, req.token)
    m.add(_ECHO, err.echo)
    m.remote = req.remote
    return protect_response(err.binding, m, own_piv=True)


def echo_of(inner):
    """The Echo value of a 4.01 challenge (client side), or None."""
    if inner.code != _UNAUTHORIZED:
        return None
    e = inner.opt(_ECHO)
    return None if e is None else bytes(e)


def with_echo(msg, echo):
    """A copy of request msg with its Echo option set to echo, for the one retry a challenge allows."""
    m = Message(msg.type, msg.code, msg.mid, msg.token, msg.payload)
    m.opts = [x for x in msg.items() if x[0] != _ECHO]
    m.opts.append((_ECHO, echo))
    m.remote = msg.remote
    return m
