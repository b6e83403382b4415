# OSCORE (RFC 8613) with Echo (RFC 9175) freshness after a reboot. The sans-IO core:
#   oscore.context  Context: key derivation (section 3), sender sequence numbers persisted in steps through a
#                   store, the replay window, nonces.
#   oscore.protect  protect/unprotect of requests, responses and notifications over coap.msg messages.
#   oscore.answer   the unprotected section 8 error answers and the Echo challenge / retry (loaded on first use).
#   oscore.transform  OSCORE on a CoAP endpoint (the coap transform seam), both roles.
# Submodules load on first use, so importing oscore costs only this file.


class OscoreError(ValueError):
    """An OSCORE failure. code is the CoAP code of the unprotected error answer (0: none is sent), diag its
    diagnostic payload (RFC 8613 section 8)."""

    def __init__(self, msg, code=0, diag=None):
        super().__init__(msg)
        self.code = code
        self.diag = diag


class EchoRequired(OscoreError):
    """A request verified, but its context lost its replay window (a reboot): answer with
    oscore.answer.echo_response(err) (a protected 4.01 carrying only Echo) and do not process the request."""

    def __init__(self, binding, echo):
        super().__init__("Echo required")
        self.binding = binding
        self.echo = echo


def err(n):
    """The OscoreError number n of oscore.errtext (its text, code and diagnostic payload)."""
    from oscore.errtext import ERRORS
    e = ERRORS[n]
    return OscoreError(e[0], e[1], e[2])


def __getattr__(name):
    if name in ("context", "protect", "answer", "transform"):
        mod = __import__("oscore." + name, None, None, [name])
        globals()[name] = mod
        return mod
    raise AttributeError(name)
