# CoAP (RFC 7252) with Observe (RFC 7641) and Block-wise (RFC 7959), sans-IO cores with asyncio edges.
# Submodules load on first use (`coap.Client`, or `from coap.client import Client`), so an application
# pays RAM only for what it touches.


class CoapError(ValueError):
    """Base class of every CoAP failure."""


class MessageError(CoapError):
    """A malformed message (truncated, bad header, reserved option nibble, ...)."""


def __getattr__(name):
    # MicroPython's `from coap import msg` asks the package first: import submodules here too.
    import sys
    mod = _LAZY.get(name)
    try:
        __import__("coap." + (mod or name))
    except ImportError:
        raise AttributeError(name)
    m = sys.modules["coap." + (mod or name)]
    return getattr(m, name) if mod else m


_LAZY = {
    "Message": "msg", "Params": "transport", "Transport": "transport", "UDPTransport": "udp",
    "Endpoint": "endpoint", "Server": "server", "Resource": "server", "Client": "client",
}
