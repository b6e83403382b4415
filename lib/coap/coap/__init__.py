# CoAP (RFC 7252) with Observe (RFC 7641) and Block-wise (RFC 7959): sans-IO cores with asyncio edges.
# Import what you use: coap.endpoint.Endpoint (both roles; coap.server.Server and coap.client.Client are thin
# conveniences over it), coap.udp.UDPTransport, coap.defs (numbers), coap.transform (the OSCORE seam). Params
# (the transmission parameters) is here, so a transport costs no extra module; coap.transport documents the
# transport interface and names Params too.
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


class Params:
    """RFC 7252 section 4.8 transmission parameters; times in milliseconds (integers, so the same maths
    runs on boards without float hardware). The derived values of section 4.8.2 are attributes too:
    max_transmit_span, max_transmit_wait, exchange_lifetime, non_lifetime."""

    def __init__(self, ack_timeout=2000, ack_random_factor=1.5, max_retransmit=4, nstart=1,
                 default_leisure=5000, probing_rate=1, max_latency=100000, processing_delay=None):
        self.ack_timeout = ack_timeout
        self.ack_random_factor = ack_random_factor
        self.ack_spread = int(ack_timeout * (ack_random_factor - 1))  # the initial timeout's random part's range
        self.max_retransmit = max_retransmit
        self.nstart = nstart
        self.default_leisure = default_leisure
        self.probing_rate = probing_rate  # bytes/second towards a peer that does not answer
        self.max_latency = max_latency
        pd = ack_timeout if processing_delay is None else processing_delay
        self.processing_delay = pd
        self.max_transmit_span = span = int(ack_timeout * ((1 << max_retransmit) - 1) * ack_random_factor)
        self.max_transmit_wait = int(ack_timeout * ((2 << max_retransmit) - 1) * ack_random_factor)
        self.exchange_lifetime = span + 2 * max_latency + pd
        self.non_lifetime = span + max_latency
