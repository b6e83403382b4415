metadata(
    version="0.1.0",
    description="CoAP-EAP (RFC 9820) device side: EAP (EAP-NOOB) carried over the shared CoAP endpoint, cipher-suite "
    "and Recipient ID negotiation, the OSCORE context derived from the MSK, session lifetime and re-key.",
)

require("coap", library="hourglass")
require("oscore", library="hourglass")
require("cbor", library="hourglass")
require("crypto", library="hourglass")
require("store", library="hourglass")
package("coapeap")
