# The answers OSCORE gives besides protected responses: the unprotected error responses of RFC 8613 section 8,
# the protected 4.01 Echo challenge of Appendix B.1.2 (RFC 9175 section 2.4), and the client's side of it (the
# challenge's Echo value, the one retry that carries it), and the context's side of the challenge. Loaded on
# first use: the failure and reboot paths.
from coap.msg import Message
from crypto.util import ct_equal

from oscore import OscoreError
from oscore import WINDOW
from oscore.transform import protect_response

try:
    from micropython import const  # compile time on MicroPython: no code, no RAM
except ImportError:
    from coap import const  # CPython: coap's one fallback

_CON = const(0)
_NON = const(1)
_ACK = const(2)
_UNAUTHORIZED = const(129)
_SERVER_ERROR = const(160)
_MAX_AGE = const(14)
_ECHO = const(252)
_ECHO_LEN = const(8)


class EchoRequired(OscoreError):
    """A request verified, but its context lost its replay window (a reboot): answer with echo_response(err)
    (a protected 4.01 carrying only Echo) and do not process the request."""

    def __init__(self, binding, echo):
        super().__init__("Echo required")
        self.binding = binding
        self.echo = echo


def challenge(ctx):
    """The Echo value for a challenge of ctx (made once, kept until a request returns it)."""
    if ctx.echo is None:
        from crypto.util import random_bytes
        ctx.echo = random_bytes(_ECHO_LEN)
    return ctx.echo


def resync(ctx, m, binding, seq):
    """A verified request m to a context that lost its replay window: if it returns the challenge's Echo, its
    sequence number becomes the window's lower limit; else EchoRequired (a challenge to answer with)."""
    e = m.opt(_ECHO)
    if e is None or ctx.echo is None or not ct_equal(e, ctx.echo):
        x = EchoRequired(binding, challenge(ctx))
        x.request = m
        raise x
    ctx.top = seq
    ctx.bits = (1 << WINDOW) - 1
    ctx.synced = True
    ctx.echo = None


def unprotected(tf, req):
    """Oscore.incoming_request of an unprotected request when some paths require OSCORE: req, or the 4.01."""
    path = req.path()
    for p in tf.require:  # exact paths, or prefixes ending in "/"
        if path == p or (p[-1] == "/" and path.startswith(p)):
            from oscore import err
            return error_response(err(20), req)
    return req


def refusal(e, req):
    """The answer to a protected request that failed verification with e: the Echo challenge of an EchoRequired,
    5.00 when it ran out of memory, else the unprotected section 8 answer (None: no answer)."""
    if isinstance(e, MemoryError):
        return Message(code=_SERVER_ERROR)
    return echo_response(e) if isinstance(e, EchoRequired) else error_response(e, req)


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


def echo_response(err):
    """The protected 4.01 that carries only Echo (RFC 8613 B.1.2, RFC 9175 2.4), with the server's own Partial
    IV, for an EchoRequired from unprotect_request."""
    req = err.request
    m = Message(_ACK if req.type == _CON else _NON, _UNAUTHORIZED, req.mid, req.token)
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
