metadata(
    version="0.1.0",
    description="SUIT (draft-ietf-suit-manifest-37) manifest processor: COSE-authenticated envelopes, streamed "
    "and staged installs with power-cut-safe commits (bundle files, A/B slots, ESP32 OTA), encrypted payloads, "
    "reports.",
)

require("cbor", library="hourglass")
require("cose", library="hourglass")
require("crypto", library="hourglass")
require("store", library="hourglass")
require("coap", library="hourglass")  # suit.ota: the update client on the CoAP endpoint
package("suit")
