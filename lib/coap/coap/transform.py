# The message-layer transform seam: how a layer such as OSCORE (RFC 8613) sits between the codec and the
# request/response handling of an endpoint, in both roles, without touching the endpoint's internals.
#
# Set `endpoint.transform = obj` (None, the default, costs nothing). `obj` has the four methods below; the
# endpoint calls them with decoded Message objects. Subclass Transform to take the pass-through ones.
#
# What stays outside: the message layer. Type, Message ID, Token and the remote are the endpoint's (RFC 8613
# leaves them unprotected): deduplication and retransmission work on the outer (protected) message, so a
# duplicate is answered from the cache without calling the transform again, and a retransmission resends
# the same protected bytes. Empty ACK/RST/ping are never transformed. The endpoint copies type, mid, token
# and remote from the outer message onto the inner one the transform returns, and back onto the outer
# message the transform returns for sending, so a transform need not copy them.
#
# Server role (requests that come in, their answers):
#   incoming_request(ep, req) -> Message or None
#       `req` is the outer request as received (after deduplication). Return the inner request: the endpoint
#       routes it to the resource (Block-wise, Observe and critical-option checks see only the inner one). To
#       refuse it, return either a response Message (code >= 64, e.g. 4.01 Unauthorized): it is sent as the
#       answer as it is (outgoing_response is not called) and no handler runs; or None: the request is
#       rejected at the message layer (a CON gets RST, a NON is dropped) and no handler runs.
#   outgoing_response(ep, req, resp) -> Message
#       `req` is the inner request incoming_request returned, the same object: a transform keeps its
#       per-exchange state on it (e.g. `req.oscore = (context, nonce)`) and finds it here. `resp` is the inner
#       response after Block2 slicing and Observe/Max-Age options. Return the outer response. Called for
#       piggybacked, separate and NON responses and for every Observe notification; for a notification
#       `req` is the registration request and `resp` carries the Observe option.
#
# Client role (requests that go out, their answers):
#   outgoing_request(ep, req) -> Message
#       `req` is the inner request (token chosen, `req.remote` the peer it goes to, no MID yet): a transform
#       picks its per-peer state by it (e.g. the OSCORE context of that peer). Return the outer request; the
#       endpoint sends and retransmits that. Called once per request message (each block of a Block-wise transfer, the
#       Observe registration and its cancellation).
#   incoming_response(ep, req, resp) -> Message or None
#       `req` is the inner request given to outgoing_request, the same object (per-exchange state, as
#       above); for a notification it is the Observe registration. `resp` is the outer response routed by
#       token. Return the inner response, or None to refuse it: the request then raises
#       coap.endpoint.RefusedError, a refused notification is dropped (the message layer acknowledges it
#       all the same). For a request's own answer (not a notification) it may instead return an awaitable
#       of either, when the answer needs more exchanges before it can be verified (e.g. the rest of an OSCORE
#       Outer Block2 body); the request awaits it.
#
# A transform must not modify the message it is given, apart from attributes it adds for its own state.


class Transform:
    """Pass-through base: override the directions a transform changes."""

    def incoming_request(self, ep, req):
        return req

    def outgoing_response(self, ep, req, resp):
        return resp

    def outgoing_request(self, ep, req):
        return req

    def incoming_response(self, ep, req, resp):
        return resp


# The endpoint's side of the seam (imported only when an endpoint has a transform).

def request_in(ep, req):
    # Server role: the inner request, or None when the transform refused it (answered here).
    inner = ep.transform.incoming_request(ep, req)
    if inner is None:  # rejected at the message layer
        if req.type == 0:  # CON
            ep.serve.ack(ep, req, 3)  # RST
        return None
    _outer_fields(req, inner)
    if inner.code >= 64:  # refused with an answer, sent as it is
        ep.serve.reply(ep, req, inner, False, True)
        return None
    return inner


def request_out(ep, inner):
    # Client role: the outer request to send for inner.
    m = ep.transform.outgoing_request(ep, inner)
    m.type = inner.type
    m.token = inner.token
    m.remote = inner.remote
    return m


def response_in(ep, req, resp):
    # Client role: the inner response, or None (refused).
    r = ep.transform.incoming_response(ep, req, resp)
    if r is not None and type(r) is not type(resp):  # an awaitable (exchange awaits it)
        return r
    if r is not None:
        _outer_fields(resp, r)
    return r


def _outer_fields(outer, inner):
    if inner is not outer:
        inner.type = outer.type
        inner.mid = outer.mid
        inner.token = outer.token
        inner.remote = outer.remote
