# OSCORE (RFC 8613) with Echo (RFC 9175) freshness after a reboot. The sans-IO core:
#   oscore.context  Context: the keys and nonces of a security context, sender sequence numbers persisted in
#                   steps through a store, the replay window (oscore.derive derives the keys when one is made).
#   oscore.transform  protect/unprotect of requests, responses and notifications over coap.msg messages (the
#                   server role; oscore.client the client role), and OSCORE on a CoAP endpoint (the coap
#                   transform seam), both roles; oscore.outer the outer Block-wise of large protected messages
#                   (section 4.1.3.4.2).
#   oscore.answer   the unprotected section 8 error answers, the Echo challenge / retry and EchoRequired
#                   (loaded on the first failure or reboot).
#   oscore.config   a context from the board's config.json (as `hourglass oscore` writes it).
# Import the submodules themselves: importing oscore costs only this file.


class OscoreError(ValueError):
    """An OSCORE failure. code is the CoAP code of the unprotected error answer (0: none is sent), diag its
    diagnostic payload (RFC 8613 section 8); err(n) sets them (class defaults: no answer)."""
    code = 0
    diag = None


def err(n):
    """The OscoreError number n of oscore.errtext (its text, code and diagnostic payload)."""
    from oscore.errtext import ERRORS
    t = ERRORS[n]
    e = OscoreError(t[0])
    e.code = t[1]
    e.diag = t[2]
    return e
