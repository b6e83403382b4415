# OSCORE (RFC 8613) with Echo (RFC 9175) freshness after a reboot. The sans-IO core:
#   oscore.context  Context: key derivation (section 3), sender sequence numbers persisted in steps through a
#                   store, the replay window, nonces.
#   oscore.protect  protect/unprotect of requests, responses and notifications over coap.msg messages.
# Submodules load on first use (oscore.context, oscore.protect), so importing oscore costs only this file.


class OscoreError(ValueError):
    """An OSCORE failure. code is the CoAP code of the unprotected error answer (0: none is sent), diag its
    diagnostic payload (RFC 8613 section 8)."""

    def __init__(self, msg, code=0, diag=None):
        super().__init__(msg)
        self.code = code
        self.diag = diag


class EchoRequired(OscoreError):
    """A request verified, but its context lost its replay window (a reboot): answer with
    oscore.protect.echo_challenge(err) (a protected 4.01 carrying only Echo) and do not process the request."""

    def __init__(self, binding, echo):
        super().__init__("freshness unknown: Echo challenge")
        self.binding = binding
        self.echo = echo


def __getattr__(name):
    if name in ("context", "protect"):
        mod = __import__("oscore." + name, None, None, [name])
        globals()[name] = mod
        return mod
    raise AttributeError(name)
