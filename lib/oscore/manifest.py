metadata(
    version="0.1.0",
    description="OSCORE (RFC 8613) for the CoAP stack: security contexts from raw key material, protect/unprotect "
    "of requests, responses and notifications, replay window, sequence numbers persisted in steps, Echo "
    "(RFC 9175) after a reboot.",
)

require("coap", library="hourglass")
require("crypto", library="hourglass")
package("oscore")
