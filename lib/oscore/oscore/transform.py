# OSCORE on a CoAP endpoint through its message-layer transform seam (coap/transform.py), in both roles:
#   ep.transform = Oscore(contexts=[...], client=ctx, require=("/lamp",))
# Server role: an OSCORE request is verified against `contexts` (its Recipient IDs); the handler gets the inner
# request, and context_of(req) says which context it came through. A failure is answered as section 8 says
# (unprotected 4.00/4.01/4.02, Outer Max-Age 0) and reaches no handler; a context that lost its replay window
# answers with a protected 4.01 + Echo. Responses and notifications to a protected request are protected.
# An unprotected request to a path in `require` gets 4.01.
# Client role: every request goes out through `client` (None: unprotected). A 4.01 Echo challenge is kept and
# the next request carries the Echo: Oscore.request() retries once with it.
from oscore import EchoRequired, OscoreError, err
from oscore.protect import protect_request, unprotect_request, protect_response, unprotect_response

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_OSCORE = const(9)
_UNAUTHORIZED = const(129)
_SERVER_ERROR = const(160)


def context_of(req):
    """The security context a (server-side, inner) request came through, or None if it was unprotected."""
    b = getattr(req, "oscore", None)
    return None if b is None else b[0]


class Oscore:
    def __init__(self, contexts=(), client=None, require=()):
        self.contexts = list(contexts)
        self.client = client
        self.require = require  # paths (exact, or prefixes ending in "/") that only OSCORE may reach
        self.echo = None  # client role: the Echo of the last challenge, sent with the next request

    def _required(self, path):
        for p in self.require:
            if path == p or (p[-1] == "/" and path.startswith(p)):
                return True
        return False

    # --- server role

    def incoming_request(self, ep, req):
        from coap.msg import Message
        if not req.has(_OSCORE):
            if self.require and self._required(req.path()):
                from oscore.answer import error_response
                return error_response(err(20), req)
            return req
        try:
            inner, binding = unprotect_request(self.contexts, req)
        except EchoRequired as e:
            from oscore.answer import echo_response
            return echo_response(e)
        except OscoreError as e:
            from oscore.answer import error_response
            return error_response(e, req)
        except MemoryError:
            return Message(code=_SERVER_ERROR)
        inner.oscore = binding
        return inner

    def outgoing_response(self, ep, req, resp):
        b = getattr(req, "oscore", None)
        if b is None:
            return resp
        try:
            return protect_response(b, resp)
        except OscoreError:  # the context cannot protect any more: never send the inner response in clear
            from coap.msg import Message
            return Message(code=_SERVER_ERROR)

    # --- client role

    def outgoing_request(self, ep, req):
        ctx = self.client
        if ctx is None:
            return req
        m = req
        if self.echo is not None:
            from oscore.answer import with_echo
            m = with_echo(req, self.echo)
            self.echo = None
        out, req.oscore = protect_request(ctx, m)
        return out

    def incoming_response(self, ep, req, resp):
        b = getattr(req, "oscore", None)
        if b is None:
            return resp
        try:
            inner = unprotect_response(b, resp)
        except OscoreError:
            return None
        if inner.code == _UNAUTHORIZED:  # an Echo challenge? (RFC 9175 2.4)
            from oscore.answer import echo_of
            self.echo = echo_of(inner)
        return inner

    async def request(self, client, method, remote, path, **kw):
        """client.request through OSCORE, retried once when the server answers with an Echo challenge."""
        r = await client.request(method, remote, path, **kw)
        if self.echo is not None and r.code == _UNAUTHORIZED:
            r = await client.request(method, remote, path, **kw)
        return r
