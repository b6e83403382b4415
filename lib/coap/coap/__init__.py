# CoAP (RFC 7252) with Observe (RFC 7641) and Block-wise (RFC 7959), sans-IO cores with asyncio edges.
# Submodules load on first use (`coap.Client`, or `from coap.client import Client`), so an application
# pays RAM only for what it touches.


class CoapError(ValueError):
    """Base class of every CoAP failure."""


class MessageError(CoapError):
    """A malformed message (truncated, bad header, reserved option nibble, ...)."""


def __getattr__(name):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(name)
    return getattr(__import__("coap." + mod, None, None, (name,)), name)


_LAZY = {
    "Message": "msg", "Params": "transport", "Transport": "transport", "UDPTransport": "udp",
    "Endpoint": "endpoint", "Server": "server", "Resource": "server", "Client": "client",
}
