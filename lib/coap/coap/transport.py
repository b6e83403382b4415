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
from coap import Params  # noqa: F401  (defined in the package, so a transport needs no extra module)

# A transport needs no base class: any object with the five members above will do. On a board
# max_message_size is 1152 by default (RFC 7252 section 4.6: fits an unfragmented IPv6 path).
