# OSCORE on a CoAP endpoint through its message-layer transform seam (coap/transform.py), in both roles:
#   ep.transform = Oscore(contexts=[...], client=ctx, require=("/lamp",))
# Server role: an OSCORE request is verified against `contexts` (its Recipient IDs); the handler gets the inner
# request, and context_of(req) says which context it came through. A failure is answered as section 8 says
# (unprotected 4.00/4.01/4.02, Outer Max-Age 0) and reaches no handler; a context that lost its replay window
# answers with a protected 4.01 + Echo. Responses and notifications to a protected request are protected.
# An unprotected request to a path in `require` gets 4.01.
# Client role: every request goes out through `client`: one Context for every peer, or a dict {remote: Context}
# (a peer not in it is spoken to unprotected), None: unprotected. A 4.01 Echo challenge is kept for its context
# and that context's next request carries the Echo: Oscore.request() retries once with it.
# A dict of contexts picks by the inner request's .remote: Oscore.request(..., outer=True) and
# oscore.outer.observe set it; a plain client.request has it where the coap requester sets it before
# outgoing_request, and fails (OscoreError) where it does not, rather than guess the peer or send in clear.
from oscore import OscoreError
from oscore.protect import unprotect_request, protect_response

try:
    from micropython import const  # compile time on MicroPython: no code, no RAM
except ImportError:
    from coap import const  # CPython: coap's one fallback

_OSCORE = const(9)
_BLOCK2 = const(23)
_BLOCK1 = const(27)
_SERVER_ERROR = const(160)


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
            ob = getattr(req, "oscore_outer", None)
        try:
            inner, binding = unprotect_request(self.contexts, req)
        except OscoreError as e:  # the section 8 answer, or the Echo challenge (answer.EchoRequired)
            from oscore.answer import refusal
            return refusal(e, req)
        except MemoryError:
            from coap.msg import Message
            return Message(code=_SERVER_ERROR)
        inner.oscore = binding
        if ob is not None:
            inner.oscore_outer = ob
        return inner

    def outgoing_response(self, ep, req, resp):
        b = getattr(req, "oscore", None)
        if b is None:
            return resp
        try:
            out = protect_response(b, resp)
        except OscoreError:  # the context cannot protect any more: never send the inner response in clear
            from coap.msg import Message
            return Message(code=_SERVER_ERROR)
        if len(out.payload) + 64 > ep.t.max_message_size or getattr(req, "oscore_outer", None) is not None:
            from oscore.outer import outgoing
            return outgoing(self, ep, req, out)
        return out

    # --- client role

    def outgoing_request(self, ep, req):
        if self.client is None or getattr(req, "oscore_raw", False):  # oscore.outer protected it itself
            return req
        from oscore.client import outgoing
        return outgoing(self, req)

    def incoming_response(self, ep, req, resp):
        if getattr(req, "oscore", None) is None:
            return resp
        from oscore.client import incoming
        return incoming(self, ep, req, resp)

    async def request(self, client, method, remote, path, outer=False, **kw):
        """client.request through OSCORE, retried once when the server answers with an Echo challenge.
        outer=True: the request is protected as one message, whatever its payload's size, and sent and answered
        with Outer Block-wise where it does not fit one datagram (oscore.outer.request; payload, options, con,
        szx and timeout as client.request takes them, the response body at most max_body bytes protected)."""
        from oscore.client import request
        return await request(self, client, method, remote, path, outer, kw)
