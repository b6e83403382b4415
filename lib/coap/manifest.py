metadata(version="0.1.0",
         description="CoAP (RFC 7252) client and server with Observe, Block-wise, link-format discovery; UDP and "
                     "serial (SLIP) transports.")

package("coap")
