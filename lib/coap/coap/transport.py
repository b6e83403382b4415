# The transport interface shared by the UDP and serial (SLIP) transports, plus CoAP's transmission parameters.
#
# A transport is any object with:
#   params            -- a Params instance: retransmission timing for this link (RFC 7252 section 4.8)
#   max_message_size  -- int: the largest CoAP message (bytes) this link carries; the endpoint sizes
#                        Block-wise transfers and rejects bigger messages with it
#   async recv()      -- wait for one datagram; returns (data, remote). `data` is bytes-like and may be a
#                        memoryview into a buffer reused by the next recv(): the caller copies what it keeps.
#                        `remote` is a hashable, ==-comparable endpoint id (UDP: (host_str, port_int);
#                        serial: whatever names the line). Raises OSError when the transport is closed.
#   send(data, remote) -- queue one datagram for `remote`; never blocks for long; drops silently on
#                        congestion (CoAP retransmits), raises OSError only if the transport is unusable.
#   close()           -- release the link; a pending recv() then raises OSError.
# The endpoint (coap.endpoint.Endpoint) only uses these five members, so a server or client runs over any of them.
class Params:
    """RFC 7252 section 4.8 transmission parameters; times in milliseconds (integers, so the same maths
    runs on boards without float hardware). The derived values of section 4.8.2 are attributes too:
    max_transmit_span, max_transmit_wait, exchange_lifetime, non_lifetime."""

    def __init__(self, ack_timeout=2000, ack_random_factor=1.5, max_retransmit=4, nstart=1,
                 default_leisure=5000, probing_rate=1, max_latency=100000, processing_delay=None):
        self.ack_timeout = ack_timeout
        self.ack_random_factor = ack_random_factor
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

# A transport needs no base class: any object with the five members above will do. On a board
# max_message_size is 1152 by default (RFC 7252 section 4.6: fits an unfragmented IPv6 path).
