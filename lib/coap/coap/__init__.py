# CoAP (RFC 7252) with Observe (RFC 7641) and Block-wise (RFC 7959): sans-IO cores with asyncio edges.
# Import what you use: coap.endpoint.Endpoint (both roles; coap.server.Server and coap.client.Client are thin
# conveniences over it), coap.udp.UDPTransport, coap.defs (numbers), coap.transform (the OSCORE seam).
# Optional parts load on first use (coap.observe, coap.upload, coap.linkformat), so RAM goes to what runs.


try:
    from micropython import const
except ImportError:  # CPython: the submodules take this one, so only one fallback is compiled
    def const(x):
        return x


class CoapError(ValueError):
    """Base class of every CoAP failure."""


class MessageError(CoapError):
    """A malformed message (truncated, bad header, reserved option nibble, ...)."""
